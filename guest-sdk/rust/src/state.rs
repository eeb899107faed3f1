//! Task-local state for processors that keep their own: the stores a step
//! declares in the pipeline file (`stores = ["seen"]`).
//!
//! Sluice keeps each store per task (partition), backs it with a changelog
//! topic and commits its writes with the input offsets, so a processor's
//! state survives restarts and follows its partition. Writes are kept only
//! if the call batch succeeds.
//!
//! ```
//! use sluice_sdk::{state::Store, Emitter, Error, Record};
//!
//! /// Passes on the first record of each key, drops repeats.
//! fn dedup(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
//!     let seen = Store::new("seen");
//!     let key = record.key.clone().unwrap_or_default();
//!     if seen.get(&key)?.is_none() {
//!         seen.put(&key, b"1")?;
//!         out.emit(record);
//!     }
//!     Ok(())
//! }
//!
//! # fn main() {
//! use sluice_sdk::testing::run;
//! assert_eq!(run(dedup, Record::new(Some("k"), Some("a"))).unwrap().len(), 1);
//! assert_eq!(run(dedup, Record::new(Some("k"), Some("b"))).unwrap().len(), 0);
//! # }
//! ```
//!
//! In native unit tests (not wasm32) every store exists, in memory, per
//! thread; [`crate::testing::clear_state`] empties them.

use crate::Error;

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A store the step declared.
#[derive(Debug, Clone, Copy)]
pub struct Store<'a> {
    name: &'a str,
}

impl<'a> Store<'a> {
    /// The store `name` (as declared in the step's `stores`).
    pub fn new(name: &'a str) -> Self {
        Store { name }
    }

    /// The value of `key`, or `None`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        imp::get(self.name, key)
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        imp::put(self.name, key, value)
    }

    /// Removes `key`.
    pub fn delete(&self, key: &[u8]) -> Result<(), Error> {
        imp::delete(self.name, key)
    }

    /// Entries with `start <= key < end` (`None` is open), in key order,
    /// at most `limit`.
    pub fn range(
        &self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: u32,
    ) -> Result<Vec<Entry>, Error> {
        imp::range(self.name, start, end, limit)
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::Entry;
    use crate::Error;
    use crate::bindings::sluice::plugin::state as wit;

    fn lift<T>(r: Result<T, wit::Error>) -> Result<T, Error> {
        r.map_err(|e| Error::new(e.code, e.message))
    }

    pub fn get(store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        lift(wit::get(store, key))
    }

    pub fn put(store: &str, key: &[u8], value: &[u8]) -> Result<(), Error> {
        lift(wit::put(store, key, value))
    }

    pub fn delete(store: &str, key: &[u8]) -> Result<(), Error> {
        lift(wit::delete(store, key))
    }

    pub fn range(
        store: &str,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: u32,
    ) -> Result<Vec<Entry>, Error> {
        lift(wit::range(store, start, end, limit))
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod imp {
    use super::Entry;
    use std::cell::RefCell;
    use std::collections::{BTreeMap, HashMap};
    use std::ops::Bound;

    use crate::Error;

    type Stores = HashMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

    thread_local! {
        pub(crate) static STORES: RefCell<Stores> = RefCell::new(HashMap::new());
    }

    pub fn get(store: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(STORES.with(|s| s.borrow().get(store).and_then(|m| m.get(key).cloned())))
    }

    pub fn put(store: &str, key: &[u8], value: &[u8]) -> Result<(), Error> {
        STORES.with(|s| {
            s.borrow_mut()
                .entry(store.to_owned())
                .or_default()
                .insert(key.to_vec(), value.to_vec())
        });
        Ok(())
    }

    pub fn delete(store: &str, key: &[u8]) -> Result<(), Error> {
        STORES.with(|s| s.borrow_mut().get_mut(store).map(|m| m.remove(key)));
        Ok(())
    }

    pub fn range(
        store: &str,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: u32,
    ) -> Result<Vec<Entry>, Error> {
        let lower = start.map_or(Bound::Unbounded, Bound::Included);
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(STORES.with(|s| {
            s.borrow()
                .get(store)
                .map(|m| {
                    m.range::<[u8], _>((lower, upper))
                        .take(limit as usize)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default()
        }))
    }
}
