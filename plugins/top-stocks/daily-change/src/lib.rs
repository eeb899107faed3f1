//! Top stocks, phase 1 (local state): a ticker's first and last price of
//! a day. Sluice keeps one aggregate per ticker and day (a tumbling window
//! of one day) and emits it once the day has closed.

use serde::{Deserialize, Serialize};
use sluice_sdk::{Aggregator, Config, Error, Record};

/// A ticker's day so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Day {
    pub open: f64,
    pub close: f64,
}

#[derive(Deserialize)]
struct Trade {
    price: f64,
}

pub struct DailyChange;

impl Aggregator for DailyChange {
    type Aggregate = Option<Day>;

    fn init(_: &Config) -> Result<Self, Error> {
        Ok(DailyChange)
    }

    fn initial(&self, _ticker: Option<&[u8]>) -> Option<Day> {
        None
    }

    fn add(&mut self, day: Option<Day>, trade: Record<'_>) -> Result<Option<Day>, Error> {
        let price = trade.json::<Trade>()?.price;
        if !price.is_finite() || price <= 0.0 {
            return Err(Error::new(
                "bad-price",
                format!("price {price} is not a positive number"),
            ));
        }
        Ok(Some(match day {
            None => Day {
                open: price,
                close: price,
            },
            Some(d) => Day {
                open: d.open,
                close: price,
            },
        }))
    }
}

sluice_sdk::export_aggregator!(type DailyChange);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::run_aggregator;

    #[test]
    fn keeps_the_first_and_the_last_price() {
        let trade = |p: &str| Record::new(Some("ACME"), Some(format!(r#"{{"price":{p}}}"#)));
        let out = run_aggregator::<DailyChange>(&[], vec![trade("10"), trade("12"), trade("11")])
            .unwrap();
        let last = out.last().unwrap().as_ref().unwrap();
        assert_eq!(
            last,
            &Some(Day {
                open: 10.0,
                close: 11.0
            })
        );
    }
}
