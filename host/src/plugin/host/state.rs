//! `sluice:plugin/state`: the task stores a step declares (`stores = [...]`),
//! lent to its instance for the length of one call. Reads and writes go
//! through the task's buffer, so they commit with the task's offsets; a
//! table's store is read-only. A store the step did not declare is a
//! sandbox violation: the call fails as a trap, whatever the plugin made of
//! the error it was given.

use super::super::bindings::sluice::plugin::{state, types};
use super::super::instance::HostState;
use crate::state::StoreBuffer;

/// A task store lent to an instance for the length of one call.
pub struct LentStore {
    /// The store's name, as the plugin asks for it.
    pub name: String,
    /// The task's buffer over the store.
    pub buffer: StoreBuffer,
    /// False for a table's store.
    pub writable: bool,
}

fn state_error(code: &str, message: String) -> types::Error {
    types::Error {
        code: code.to_owned(),
        message,
    }
}

impl HostState {
    fn lent(&mut self, store: &str, write: bool) -> Result<&mut StoreBuffer, types::Error> {
        let declared: Vec<String> = self.stores.iter().map(|s| s.name.clone()).collect();
        match self.stores.iter_mut().find(|s| s.name == store) {
            Some(s) if write && !s.writable => Err(state_error(
                "read-only",
                format!("store `{store}` is a table's store; it can be read, not written"),
            )),
            Some(s) => Ok(&mut s.buffer),
            None => {
                let message = format!(
                    "store `{store}` is not declared by this step (declared: {})",
                    if declared.is_empty() {
                        "none; add `stores = [...]` to the step".to_owned()
                    } else {
                        declared.join(", ")
                    }
                );
                self.violation = Some(message.clone());
                Err(state_error("unknown-store", message))
            }
        }
    }
}

impl state::Host for HostState {
    fn get(&mut self, store: String, key: Vec<u8>) -> Result<Option<Vec<u8>>, types::Error> {
        self.lent(&store, false)?
            .get(&key)
            .map_err(|e| state_error("state", e.to_string()))
    }

    fn put(&mut self, store: String, key: Vec<u8>, value: Vec<u8>) -> Result<(), types::Error> {
        self.lent(&store, true)?.put(&key, &value);
        Ok(())
    }

    fn delete(&mut self, store: String, key: Vec<u8>) -> Result<(), types::Error> {
        self.lent(&store, true)?.delete(&key);
        Ok(())
    }

    fn range(
        &mut self,
        store: String,
        start: Option<Vec<u8>>,
        end: Option<Vec<u8>>,
        limit: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, types::Error> {
        self.lent(&store, false)?
            .range_limited(start.as_deref(), end.as_deref(), limit as usize)
            .map_err(|e| state_error("state", e.to_string()))
    }
}
