//! An in-memory store: the same contract as RocksDB, for tests and the
//! test driver.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use super::memory_budget::{ENTRY_OVERHEAD, MemoryBudget};
use super::store::{Entries, KeyValueStore, WriteBatch};
use crate::error::StateError;

/// A `BTreeMap` behind the [`KeyValueStore`] trait.
#[derive(Debug)]
pub struct MemoryStore {
    name: String,
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    meta: HashMap<String, Vec<u8>>,
    /// The pipeline's budget its entries are counted against, if any.
    budget: Option<Arc<MemoryBudget>>,
    /// Bytes its entries take, as counted ([`ENTRY_OVERHEAD`] each).
    bytes: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(name: &str) -> Self {
        MemoryStore {
            name: name.to_owned(),
            data: BTreeMap::new(),
            meta: HashMap::new(),
            budget: None,
            bytes: 0,
        }
    }

    /// An empty store whose entries count against `budget`: a write that
    /// would pass it fails, and changes nothing.
    pub fn with_budget(name: &str, budget: Arc<MemoryBudget>) -> Self {
        let mut store = MemoryStore::new(name);
        store.budget = Some(budget);
        store
    }

    /// Bytes its entries take, as counted against a budget.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// What applying `batch` adds to and frees from the store's bytes.
    fn cost_of(&self, batch: &WriteBatch) -> (u64, u64) {
        let cost = |k: &[u8], v: &[u8]| (k.len() + v.len()) as u64 + ENTRY_OVERHEAD;
        // A key written twice in one batch: its cost so far in the batch.
        let mut seen: HashMap<&[u8], u64> = HashMap::new();
        let (mut grow, mut shrink) = (0, 0);
        for (k, v) in batch.data() {
            let before = match seen.get(k.as_slice()) {
                Some(&c) => c,
                None => self.data.get(k).map_or(0, |old| cost(k, old)),
            };
            let after = v.as_ref().map_or(0, |v| cost(k, v));
            shrink += before;
            grow += after;
            seen.insert(k, after);
        }
        (grow, shrink)
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.bytes);
        }
    }
}

impl KeyValueStore for MemoryStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.data.get(key).cloned())
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Result<Entries<'_>, StateError> {
        let lower = from.map_or(Bound::Unbounded, Bound::Included);
        let upper = to.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(Box::new(
            self.data
                .range::<[u8], _>((lower, upper))
                .map(|(k, v)| Ok((k.clone(), v.clone()))),
        ))
    }

    fn write(&mut self, batch: &WriteBatch) -> Result<(), StateError> {
        let (grow, shrink) = self.cost_of(batch);
        if let Some(budget) = &self.budget {
            budget.reserve(&self.name, grow, shrink)?;
        }
        self.bytes = (self.bytes + grow).saturating_sub(shrink);
        for (k, v) in batch.data() {
            match v {
                Some(v) => self.data.insert(k.clone(), v.clone()),
                None => self.data.remove(k),
            };
        }
        for (k, v) in batch.meta() {
            self.meta.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.meta.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_store_keeps_the_store_contract() {
        super::super::store::check_store_contract(&mut super::MemoryStore::new("m"));
    }

    #[test]
    fn a_write_past_the_pipelines_budget_fails_and_changes_nothing() {
        use super::*;
        let budget = Arc::new(MemoryBudget::new(10_000));
        let mut store = MemoryStore::with_budget("counts", Arc::clone(&budget));
        let mut batch = WriteBatch::default();
        for i in 0..50u32 {
            batch.put(&i.to_be_bytes(), &[0; 100]);
        }
        // 50 x (4 + 100 + 64) = 8,400 bytes: within.
        store.write(&batch).unwrap();
        assert_eq!((store.bytes(), budget.in_memory()), (8_400, 8_400));
        // Overwriting the same keys costs nothing more.
        store.write(&batch).unwrap();
        assert_eq!(budget.in_memory(), 8_400);
        let mut more = WriteBatch::default();
        for i in 50..100u32 {
            more.put(&i.to_be_bytes(), &[0; 100]);
        }
        let e = store.write(&more).unwrap_err();
        assert!(matches!(e, StateError::MemoryFull { .. }), "{e}");
        assert_eq!(store.get(&60u32.to_be_bytes()).unwrap(), None);
        assert_eq!(budget.in_memory(), 8_400);
        // Deleting frees, within one batch too.
        let mut delete = WriteBatch::default();
        for i in 0..50u32 {
            delete.put(&i.to_be_bytes(), &[1; 10]);
            delete.delete(&i.to_be_bytes());
        }
        store.write(&delete).unwrap();
        assert_eq!((store.bytes(), budget.in_memory()), (0, 0));
        store.write(&more).unwrap();
        drop(store);
        assert_eq!(
            budget.in_memory(),
            0,
            "a dropped store gives its bytes back"
        );
    }
}
