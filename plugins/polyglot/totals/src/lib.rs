//! Per-account totals, the last step of the polyglot pipeline: payments
//! (key = account, value = `{"amount": 12.5, ...}`) in, `{count, total}`
//! per account out. Amounts are added in whole cents, so totals are exact.
use serde::{Deserialize, Serialize};
use sluice_sdk::{Aggregator, Config, Error, Record};

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub count: u64,
    pub total: f64,
}

#[derive(Deserialize)]
struct Payment {
    amount: f64,
}

pub struct AccountTotals;

impl Aggregator for AccountTotals {
    type Aggregate = Totals;

    fn init(_: &Config) -> Result<Self, Error> {
        Ok(AccountTotals)
    }

    fn initial(&self, _account: Option<&[u8]>) -> Totals {
        Totals::default()
    }

    fn add(&mut self, totals: Totals, payment: Record<'_>) -> Result<Totals, Error> {
        let cents = |amount: f64| (amount * 100.0).round() as i64;
        let sum = cents(totals.total) + cents(payment.json::<Payment>()?.amount);
        Ok(Totals {
            count: totals.count + 1,
            total: sum as f64 / 100.0,
        })
    }
}

sluice_sdk::export_aggregator!(type AccountTotals);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::run_aggregator;

    #[test]
    fn counts_and_adds_in_cents() {
        let records = ["0.1", "0.2", "12.5"]
            .map(|a| Record::new(Some("acct-1"), Some(format!(r#"{{"amount":{a}}}"#))));
        let out = run_aggregator::<AccountTotals>(&[], records.to_vec()).unwrap();
        let last = out.last().unwrap().as_ref().unwrap();
        assert_eq!(
            last,
            &Totals {
                count: 3,
                total: 12.8
            }
        );
    }

    #[test]
    fn a_payment_without_an_amount_is_rejected() {
        let out = run_aggregator::<AccountTotals>(
            &[],
            vec![Record::new(Some("acct-1"), Some(r#"{"txn":"t-1"}"#))],
        )
        .unwrap();
        assert!(out[0].is_err());
    }
}
