//! Per-ticker trade statistics: trades (key = ticker, value =
//! `{"price": 123.45, ...}`) in, `{min, max, avg, count}` per ticker out.
//! Sluice keeps each ticker's statistics in a state store; this plugin only
//! says how one trade changes them.

use serde::{Deserialize, Serialize};
use sluice_sdk::{Aggregator, Config, Error, Record};

/// The statistics of one ticker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub min: f64,
    pub max: f64,
    pub avg: f64,
    pub count: u64,
}

#[derive(Deserialize)]
struct Trade {
    price: f64,
}

pub struct StockStats;

impl Aggregator for StockStats {
    type Aggregate = Option<Stats>;

    fn init(_: &Config) -> Result<Self, Error> {
        Ok(StockStats)
    }

    fn initial(&self, _ticker: Option<&[u8]>) -> Option<Stats> {
        None
    }

    fn add(&mut self, stats: Option<Stats>, trade: Record<'_>) -> Result<Option<Stats>, Error> {
        let price = trade.json::<Trade>()?.price;
        if !price.is_finite() || price <= 0.0 {
            return Err(Error::new(
                "bad-price",
                format!("price {price} is not a positive number"),
            ));
        }
        Ok(Some(match stats {
            None => Stats {
                min: price,
                max: price,
                avg: price,
                count: 1,
            },
            Some(s) => {
                let count = s.count + 1;
                Stats {
                    min: s.min.min(price),
                    max: s.max.max(price),
                    // A running mean: exact enough, and never overflows.
                    avg: s.avg + (price - s.avg) / count as f64,
                    count,
                }
            }
        }))
    }
}

sluice_sdk::export_aggregator!(type StockStats);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::run_aggregator;

    fn trade(ticker: &str, value: &str) -> Record<'static> {
        Record::new(Some(ticker), Some(value))
    }

    #[test]
    fn keeps_min_max_avg_count_per_ticker_and_rejects_bad_trades() {
        let out = run_aggregator::<StockStats>(
            &[],
            vec![
                trade("ACME", r#"{"price": 10.0}"#),
                trade("INIT", r#"{"price": 5.5}"#),
                trade("ACME", r#"{"price": 20.0, "qty": 3}"#),
                trade("ACME", r#"{"price": "cheap"}"#),
                trade("ACME", r#"{"price": -1}"#),
                trade("ACME", r#"{"price": 30.0}"#),
            ],
        )
        .unwrap();
        assert_eq!(
            out[5].as_ref().unwrap(),
            &Some(Stats {
                min: 10.0,
                max: 30.0,
                avg: 20.0,
                count: 3
            })
        );
        assert_eq!(
            out[1].as_ref().unwrap(),
            &Some(Stats {
                min: 5.5,
                max: 5.5,
                avg: 5.5,
                count: 1
            })
        );
        assert_eq!(out[3].as_ref().unwrap_err().code, "bad-json");
        assert_eq!(out[4].as_ref().unwrap_err().code, "bad-price");
    }
}
