//! {{name}}: a Sluice timestamp extractor. A record's event time is the
//! number of milliseconds in its value's `at` field (another field with
//! the source's `timestamp-config = { field = "..." }`); a record without
//! one has no valid time, and the source's `invalid-timestamp` policy
//! applies. Build: `sluice plugin build .`; test: `cargo test`.
use sluice_sdk::{Config, Error, Record, TimestampExtractor};

pub struct FieldTime {
    field: String,
}

impl TimestampExtractor for FieldTime {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(FieldTime {
            field: config.get("field").unwrap_or("at").to_owned(),
        })
    }

    fn extract(&mut self, record: &Record<'_>) -> Option<i64> {
        let value: serde_json::Value = record.json().ok()?;
        value.get(&self.field)?.as_i64()
    }
}

sluice_sdk::export_extractor!(type FieldTime);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::run_extractor;

    #[test]
    fn reads_the_field_or_finds_no_time() {
        let v = |s: &str| Record::new(Some("k"), Some(s));
        let times = run_extractor::<FieldTime>(
            &[("field", "when")],
            vec![v(r#"{"when": 1500}"#), v(r#"{"at": 1500}"#), v("not json")],
        )
        .unwrap();
        assert_eq!(times, vec![Some(1500), None, None]);
    }
}
