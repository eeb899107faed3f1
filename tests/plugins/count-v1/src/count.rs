// The code of both versions; `VERSION` is defined by the including crate.
use serde::{Deserialize, Serialize};
use sluice_sdk::{Aggregator, Config, Error, Record};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Count {
    pub count: u64,
    pub by: String,
}

pub struct Counter;

impl Aggregator for Counter {
    type Aggregate = Count;

    fn init(_: &Config) -> Result<Self, Error> {
        Ok(Counter)
    }

    fn initial(&self, _key: Option<&[u8]>) -> Count {
        Count::default()
    }

    fn add(&mut self, c: Count, _record: Record<'_>) -> Result<Count, Error> {
        Ok(Count {
            count: c.count + 1,
            by: VERSION.into(),
        })
    }
}

sluice_sdk::export_aggregator!(type Counter);
