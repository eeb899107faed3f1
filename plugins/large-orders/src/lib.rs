//! The seed's first example: read an online shop's orders (JSON) and pass
//! on only those over $10,000 (`min.amount`), re-keyed by customer.
use serde::Deserialize;
use sluice_sdk::{Config, Emitter, Error, Processor, Record};

#[derive(Deserialize)]
struct Order {
    customer_id: String,
    amount: f64,
}

pub struct LargeOrders {
    min_amount: f64,
}

impl Processor for LargeOrders {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(LargeOrders {
            min_amount: config.parse_or("min.amount", 10_000.0)?,
        })
    }

    fn process(&mut self, record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
        let order: Order = record.json()?; // malformed JSON rejects the record
        if order.amount > self.min_amount {
            out.emit(record.with_key(order.customer_id));
        }
        Ok(())
    }
}

sluice_sdk::export_processor!(type LargeOrders);

#[cfg(test)]
mod tests {
    use super::LargeOrders;
    use sluice_sdk::{Record, testing::run_processor};

    fn order(amount: &str) -> Record<'static> {
        let value = format!(r#"{{"order_id":"o1","customer_id":"c-9","amount":{amount}}}"#);
        Record::new(Some("o1"), Some(value)).with_timestamp(5)
    }

    #[test]
    fn passes_only_orders_over_the_threshold_rekeyed_by_customer() {
        let out =
            run_processor::<LargeOrders>(&[], vec![order("10000.01"), order("10000"), order("9")])
                .unwrap();
        let passed = out[0].as_ref().unwrap();
        assert_eq!(passed.len(), 1);
        assert_eq!(passed[0].key.as_deref(), Some(&b"c-9"[..]));
        assert_eq!(passed[0].value, order("10000.01").value);
        assert!(
            out[1].as_ref().unwrap().is_empty(),
            "exactly 10000 is not over"
        );
        assert!(out[2].as_ref().unwrap().is_empty());
    }

    #[test]
    fn malformed_json_is_rejected_and_threshold_is_configurable() {
        let out = run_processor::<LargeOrders>(
            &[("min.amount", "5")],
            vec![Record::new(Some("k"), Some("{oops")), order("9")],
        )
        .unwrap();
        assert_eq!(out[0].as_ref().unwrap_err().code, "bad-json");
        assert_eq!(out[1].as_ref().unwrap().len(), 1);
        assert!(run_processor::<LargeOrders>(&[("min.amount", "lots")], vec![]).is_err());
    }
}
