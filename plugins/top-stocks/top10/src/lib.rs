//! Top stocks, phase 2 (on one partition): the ten tickers of each day
//! with the largest change, best first. Every day's changes meet here,
//! keyed by the day, after the repartition onto one partition.

use serde::{Deserialize, Serialize};
use sluice_sdk::{Aggregator, Config, Error, Record};

/// One ticker's change over the day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub ticker: String,
    pub change: f64,
}

pub struct Top10;

impl Aggregator for Top10 {
    type Aggregate = Vec<Change>;

    fn init(_: &Config) -> Result<Self, Error> {
        Ok(Top10)
    }

    fn initial(&self, _day: Option<&[u8]>) -> Vec<Change> {
        Vec::new()
    }

    fn add(&mut self, mut top: Vec<Change>, record: Record<'_>) -> Result<Vec<Change>, Error> {
        let c: Change = record.json()?;
        top.retain(|t| t.ticker != c.ticker);
        top.push(c);
        // Largest change first; ties by ticker, so the order is the same
        // whatever order the changes came in.
        top.sort_by(|a, b| {
            b.change
                .total_cmp(&a.change)
                .then_with(|| a.ticker.cmp(&b.ticker))
        });
        top.truncate(10);
        Ok(top)
    }
}

sluice_sdk::export_aggregator!(type Top10);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::run_aggregator;

    #[test]
    fn keeps_the_ten_largest_changes() {
        let change = |t: &str, c: f64| {
            Record::new(
                Some("2026-01-01"),
                Some(format!(r#"{{"ticker":"{t}","change":{c}}}"#)),
            )
        };
        let records: Vec<_> = (0..12)
            .map(|i| change(&format!("T{i:02}"), i as f64))
            .collect();
        let out = run_aggregator::<Top10>(&[], records).unwrap();
        let top = out.last().unwrap().as_ref().unwrap();
        assert_eq!(top.len(), 10);
        assert_eq!(
            (top[0].ticker.as_str(), top[9].ticker.as_str()),
            ("T11", "T02")
        );
    }
}
