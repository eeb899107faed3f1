//! Test plugin for repartitioning: each record comes out keyed by the
//! value of the JSON field `field` (config; default `customer`), as text:
//! a string as it is, any other JSON value as written. A record without
//! the field comes out with no key (the host drops or dead-letters it
//! before a repartition); a value that is not JSON is rejected.

use sluice_sdk::{Config, Emitter, Error, Processor, Record};

pub struct KeyByField {
    field: String,
}

impl Processor for KeyByField {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(KeyByField {
            field: config.get("field").unwrap_or("customer").to_owned(),
        })
    }

    fn process(&mut self, record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
        let value: serde_json::Value = record.json()?;
        let key = match value.get(&self.field) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone().into_bytes()),
            Some(other) => Some(other.to_string().into_bytes()),
        };
        let mut record = record;
        record.key = key.map(std::borrow::Cow::Owned);
        out.emit(record);
        Ok(())
    }
}

sluice_sdk::export_processor!(type KeyByField);

#[cfg(test)]
mod tests {
    use super::KeyByField;
    use sluice_sdk::{Record, testing::run_processor};

    fn rec(value: &str) -> Record<'static> {
        Record::new(Some("o1"), Some(value)).with_timestamp(5)
    }

    #[test]
    fn keys_by_the_field_or_by_nothing() {
        let out = run_processor::<KeyByField>(
            &[],
            vec![
                rec(r#"{"customer":"c-1"}"#),
                rec(r#"{"customer":7}"#),
                rec(r#"{"other":1}"#),
                rec("not json"),
            ],
        )
        .unwrap();
        let key = |i: usize| out[i].as_ref().unwrap()[0].key.clone();
        assert_eq!(key(0).as_deref(), Some(&b"c-1"[..]));
        assert_eq!(key(1).as_deref(), Some(&b"7"[..]));
        assert_eq!(key(2), None);
        assert!(out[3].is_err());
        let by_id = run_processor::<KeyByField>(
            &[("field", "id")],
            vec![rec(r#"{"id":"x","customer":"c"}"#)],
        )
        .unwrap();
        assert_eq!(
            by_id[0].as_ref().unwrap()[0].key.as_deref(),
            Some(&b"x"[..])
        );
    }
}
