//! Drops repeated records: the first record of each key passes, later ones
//! with the same key are dropped. The keys seen are kept in the task's
//! state store `seen` (declared in the pipeline file), so a restart or a
//! rebalance does not let a repeat through.
//!
//! Config: `store` (default `seen`).

use sluice_sdk::state::Store;
use sluice_sdk::{Config, Emitter, Error, Processor, Record};

pub struct Dedup {
    store: String,
}

impl Processor for Dedup {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Dedup {
            store: config.get("store").unwrap_or("seen").to_owned(),
        })
    }

    fn process(&mut self, record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
        let Some(key) = record.key.clone() else {
            return Err(Error::new("null-key", "dedup needs a key"));
        };
        let seen = Store::new(&self.store);
        if seen.get(&key)?.is_none() {
            seen.put(&key, b"")?;
            out.emit(record);
        }
        Ok(())
    }
}

sluice_sdk::export_processor!(type Dedup);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::{clear_state, run_processor};

    #[test]
    fn first_of_each_key_passes_repeats_are_dropped() {
        clear_state();
        let out = run_processor::<Dedup>(
            &[],
            vec![
                Record::new(Some("a"), Some("1")),
                Record::new(Some("b"), Some("2")),
                Record::new(Some("a"), Some("3")),
                Record::new(None::<&str>, Some("4")),
            ],
        )
        .unwrap();
        let passed: Vec<usize> = out.iter().map(|r| r.as_ref().map_or(9, Vec::len)).collect();
        assert_eq!(passed, [1, 1, 0, 9]);
        assert_eq!(out[3].as_ref().unwrap_err().code, "null-key");
    }
}
