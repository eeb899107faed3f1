//! {{name}}: a Sluice aggregator. Counts each key's records and totals
//! their `amount`; a record whose value has no numeric `amount` is
//! rejected (the pipeline's `rejected` policy applies) and leaves the
//! aggregate as it was. Build: `sluice plugin build .`; test: `cargo test`.
use serde::{Deserialize, Serialize};
use sluice_sdk::{Aggregator, Config, Error, Record};

/// One key's aggregate, stored (and sent downstream) as JSON.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub count: u64,
    pub total: f64,
}

/// What the aggregator reads of a record's value (other fields are ignored).
#[derive(Deserialize)]
struct Amount {
    amount: f64,
}

pub struct SumAmounts;

impl Aggregator for SumAmounts {
    type Aggregate = Totals;

    fn init(_config: &Config) -> Result<Self, Error> {
        Ok(SumAmounts)
    }

    fn initial(&self, _key: Option<&[u8]>) -> Totals {
        Totals::default()
    }

    fn add(&mut self, totals: Totals, record: Record<'_>) -> Result<Totals, Error> {
        let Amount { amount } = record.json().map_err(|_| {
            Error::new("bad-amount", "the value is not JSON with a numeric `amount`")
        })?;
        Ok(Totals {
            count: totals.count + 1,
            total: totals.total + amount,
        })
    }

    /// Session windows merge two sessions of a key when a record bridges them.
    fn merge(&mut self, _key: Option<&[u8]>, a: Totals, b: Totals) -> Result<Totals, Error> {
        Ok(Totals {
            count: a.count + b.count,
            total: a.total + b.total,
        })
    }
}

sluice_sdk::export_aggregator!(type SumAmounts);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::run_aggregator;

    #[test]
    fn counts_and_totals_each_key_and_rejects_a_value_without_amount() {
        let r = |k: &str, v: &str| Record::new(Some(k), Some(v));
        let out = run_aggregator::<SumAmounts>(
            &[],
            vec![r("a", r#"{"amount": 2.5}"#), r("a", "oops"), r("a", r#"{"amount": 1}"#)],
        )
        .unwrap();
        assert_eq!(out[0].as_ref().unwrap(), &Totals { count: 1, total: 2.5 });
        assert_eq!(out[1].as_ref().unwrap_err().code, "bad-amount");
        assert_eq!(out[2].as_ref().unwrap(), &Totals { count: 2, total: 3.5 });
    }

    #[test]
    fn merging_adds_counts_and_totals() {
        let a = Totals { count: 1, total: 2.0 };
        let b = Totals { count: 2, total: 3.0 };
        let merged = SumAmounts.merge(None, a, b).unwrap();
        assert_eq!(merged, Totals { count: 3, total: 5.0 });
    }
}
