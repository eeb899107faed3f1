//! Test plugin: a timestamp extractor. A value `t=1500;rest` has the event
//! time 1500 (the prefix comes from the source's `timestamp-config.prefix`,
//! default `t=`); any other value has none.

use sluice_sdk::{Config, Error, Record, TimestampExtractor};

pub struct TextTime {
    prefix: String,
}

impl TimestampExtractor for TextTime {
    fn init(config: &Config) -> Result<Self, Error> {
        Ok(TextTime {
            prefix: config.get("prefix").unwrap_or("t=").to_owned(),
        })
    }

    fn extract(&mut self, record: &Record<'_>) -> Option<i64> {
        let text = record
            .value_str()
            .ok()?
            .strip_prefix(self.prefix.as_str())?;
        text.split(';').next()?.parse().ok()
    }
}

sluice_sdk::export_extractor!(type TextTime);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::run_extractor;

    #[test]
    fn reads_the_prefixed_time_or_finds_none() {
        let v = |s: &str| Record::new(Some("k"), Some(s));
        let times = run_extractor::<TextTime>(
            &[("prefix", "at=")],
            vec![v("at=1500;x"), v("at=-3"), v("t=1"), v("at=soon")],
        )
        .unwrap();
        assert_eq!(times, vec![Some(1500), None, None, None]);
    }
}
