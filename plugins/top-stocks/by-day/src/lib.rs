//! Top stocks, between the phases: a ticker's closed day (key =
//! `<ticker>@<start>/<end>`, value = `{open, close}`, the window's start
//! also in `sluice.window.start`)
//! becomes that day's change, keyed by the day. The key changes, so the
//! records must move to the task of their day: the pipeline repartitions
//! them onto one partition, where the top 10 of each day are kept.

use serde::{Deserialize, Serialize};
use sluice_sdk::{Emitter, Error, Record};

#[derive(Deserialize)]
struct Day {
    open: f64,
    close: f64,
}

/// A ticker's change over a day, in percent.
#[derive(Serialize)]
struct Change<'a> {
    ticker: &'a str,
    change: f64,
}

/// The civil date (`YYYY-MM-DD`, UTC) of `ms` since the epoch.
pub fn date(ms: i64) -> String {
    // Howard Hinnant's days-to-civil.
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn by_day(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
    // A windowed aggregate's key is `<ticker>@<start>/<end>`.
    let key = record
        .key
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let ticker = key.split('@').next().unwrap_or_default().to_owned();
    let start: i64 = record
        .header("sluice.window.start")
        .and_then(|h| std::str::from_utf8(h).ok()?.parse().ok())
        .ok_or_else(|| Error::new("no-window", "a daily change carries its window's start"))?;
    let day: Day = record.json()?;
    let change = ((day.close - day.open) / day.open * 10_000.0).round() / 100.0;
    let value = Change {
        ticker: &ticker,
        change,
    };
    out.emit(record.with_key(date(start)).with_json_value(&value)?);
    Ok(())
}

sluice_sdk::export_processor!(by_day);

#[cfg(test)]
mod tests {
    use super::date;

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_767_225_600_000), "2026-01-01");
        assert_eq!(date(1_767_311_999_999), "2026-01-01");
        assert_eq!(date(951_782_400_000), "2000-02-29");
    }
}
