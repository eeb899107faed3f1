//! An in-memory store: the same contract as RocksDB, for tests and the
//! test driver.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use super::store::{Entries, KeyValueStore, WriteBatch};
use crate::error::StateError;

/// A `BTreeMap` behind the [`KeyValueStore`] trait.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    name: String,
    data: BTreeMap<Vec<u8>, Vec<u8>>,
    meta: HashMap<String, Vec<u8>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(name: &str) -> Self {
        MemoryStore {
            name: name.to_owned(),
            ..Default::default()
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
}
