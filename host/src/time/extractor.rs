//! Timestamp extraction: where a source record's event time comes from.
//!
//! All times inside Sluice are UTC milliseconds since the epoch.
//!
//! - `record`: the record's timestamp as the producer set it (CreateTime),
//!   or as the broker set it for a topic with
//!   `message.timestamp.type=LogAppendTime`;
//! - `log-append`: the broker's append time; a CreateTime record is
//!   invalid under this extractor;
//! - `wall-clock`: processing time, when the task sees the record;
//! - `field`: a dotted path into a JSON value (`event.time`): a number
//!   (milliseconds) or an RFC 3339 string (`2026-01-01T00:00:00Z`,
//!   `…+02:00`).
//!
//! A record without a valid timestamp (absent, negative, after the year
//! 9999, not a number, a missing field) meets the source's
//! `invalid-timestamp` policy.

use serde_json::Value;

pub use crate::record::TimestampKind;

/// How a source's event time is found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Extractor {
    /// The record timestamp, whoever set it.
    #[default]
    Record,
    /// The broker's append time only.
    LogAppend,
    /// Processing time.
    WallClock,
    /// A dotted path into the JSON value.
    Field(Vec<String>),
    /// A timestamp-extractor plugin, called once per call batch by the
    /// task (not through [`Extractor::extract`]).
    Plugin(crate::plugin::reference::PluginRef),
}

impl Extractor {
    /// Parses the pipeline file's `timestamp` (and `timestamp-field`).
    pub fn parse(kind: &str, field: Option<&str>) -> Result<Extractor, String> {
        let extractor = match kind {
            "record" => Extractor::Record,
            "log-append" => Extractor::LogAppend,
            "wall-clock" => Extractor::WallClock,
            "field" => {
                let path = field.ok_or(
                    "`timestamp = \"field\"` needs `timestamp-field`, a dotted path into the JSON value",
                )?;
                let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
                if parts.iter().any(String::is_empty) {
                    return Err(format!(
                        "`timestamp-field` = {path:?} has an empty part; write a dotted path such as `event.time`"
                    ));
                }
                Extractor::Field(parts)
            }
            other => {
                return Err(format!(
                    "`timestamp` = {other:?} is not one of record, log-append, wall-clock, field, plugin"
                ));
            }
        };
        if field.is_some() && !matches!(extractor, Extractor::Field(_)) {
            return Err("`timestamp-field` is only read with `timestamp = \"field\"`".into());
        }
        Ok(extractor)
    }

    /// The event time of a record, or why it has none. `now` is the wall
    /// clock, read once per batch by the caller.
    pub fn extract(
        &self,
        timestamp: Option<i64>,
        kind: TimestampKind,
        value: Option<&[u8]>,
        now: i64,
    ) -> Result<i64, String> {
        let valid = |t: i64, what: &str| super::event_time(t, what);
        match self {
            Extractor::Record => match timestamp {
                Some(t) => valid(t, "the record timestamp"),
                None => Err("the record has no timestamp".into()),
            },
            Extractor::LogAppend => match (kind, timestamp) {
                (TimestampKind::LogAppendTime, Some(t)) => valid(t, "the log-append time"),
                _ => Err(
                    "the record has no log-append time (is the topic's message.timestamp.type LogAppendTime?)"
                        .into(),
                ),
            },
            Extractor::WallClock => Ok(now),
            Extractor::Plugin(_) => Err("a plugin extractor is called per batch by the task".into()),
            Extractor::Field(path) => {
                let value = value.ok_or("the record has no value to read a timestamp from")?;
                let json: Value = serde_json::from_slice(value)
                    .map_err(|e| format!("the value is not JSON ({e})"))?;
                let mut at = &json;
                for part in path {
                    at = at.get(part).ok_or_else(|| {
                        format!("the value has no `{}`", path.join("."))
                    })?;
                }
                match at {
                    Value::Number(n) => match n.as_i64() {
                        Some(t) => valid(t, &format!("`{}`", path.join("."))),
                        None => Err(format!(
                            "`{}` = {n} is not a whole number of milliseconds",
                            path.join(".")
                        )),
                    },
                    Value::String(s) => parse_rfc3339(s)
                        .ok_or_else(|| format!("`{}` = {s:?} is not an RFC 3339 time", path.join(".")))
                        .and_then(|t| valid(t, &format!("`{}`", path.join(".")))),
                    other => Err(format!(
                        "`{}` is {}, not a time",
                        path.join("."),
                        match other {
                            Value::Null => "null",
                            Value::Bool(_) => "a boolean",
                            Value::Array(_) => "an array",
                            _ => "an object",
                        }
                    )),
                }
            }
        }
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)` into UTC milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        // Milliseconds: the first three digits, padded.
        let digits = &s[start..i.min(start + 3)];
        millis = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second.min(59) - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_become_utc_milliseconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00Z"),
            Some(1_767_225_600_000)
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T02:00:00.5+02:00"),
            Some(1_767_225_600_500)
        );
        assert_eq!(
            parse_rfc3339("2025-12-31T19:00:00.123456-05:00"),
            Some(1_767_225_600_123)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00Z"),
            Some(1_709_208_000_000)
        );
        for bad in [
            "2025-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01 00:00:00",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T24:00:00Z",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_extractor_finds_its_time_or_says_why_not() {
        let value = br#"{"event":{"time":"2026-01-01T00:00:01Z","ms":1767225600002},"n":1.5}"#;
        let create = TimestampKind::CreateTime;
        let t = |e: &Extractor, ts, kind, v: Option<&[u8]>| e.extract(ts, kind, v, 42);
        assert_eq!(t(&Extractor::Record, Some(7), create, None), Ok(7));
        assert!(
            t(&Extractor::Record, None, create, None)
                .unwrap_err()
                .contains("no timestamp")
        );
        assert!(
            t(&Extractor::Record, Some(-1), create, None)
                .unwrap_err()
                .contains("negative")
        );
        // Near i64::MAX a window's end would overflow: such a time is
        // invalid, and meets the source's policy.
        for huge in [i64::MAX, super::super::MAX_EVENT_TIME + 1] {
            assert!(
                t(&Extractor::Record, Some(huge), create, None)
                    .unwrap_err()
                    .contains("after the year 9999")
            );
        }
        assert_eq!(
            t(
                &Extractor::Record,
                Some(super::super::MAX_EVENT_TIME),
                create,
                None
            ),
            Ok(super::super::MAX_EVENT_TIME)
        );
        assert!(
            t(&Extractor::LogAppend, Some(7), create, None)
                .unwrap_err()
                .contains("LogAppendTime")
        );
        assert_eq!(
            t(
                &Extractor::LogAppend,
                Some(7),
                TimestampKind::LogAppendTime,
                None
            ),
            Ok(7)
        );
        assert_eq!(t(&Extractor::WallClock, None, create, None), Ok(42));
        let field = |p: &str| Extractor::parse("field", Some(p)).unwrap();
        assert_eq!(
            t(&field("event.time"), None, create, Some(value)),
            Ok(1_767_225_601_000)
        );
        assert_eq!(
            t(&field("event.ms"), None, create, Some(value)),
            Ok(1_767_225_600_002)
        );
        assert!(
            t(&field("event.nope"), None, create, Some(value))
                .unwrap_err()
                .contains("no `event.nope`")
        );
        assert!(
            t(&field("n"), None, create, Some(value))
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            t(&field("event"), None, create, Some(value))
                .unwrap_err()
                .contains("an object")
        );
        assert!(
            t(&field("x"), None, create, Some(b"nope"))
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn the_pipeline_settings_are_checked() {
        assert_eq!(Extractor::parse("record", None), Ok(Extractor::Record));
        assert!(
            Extractor::parse("field", None)
                .unwrap_err()
                .contains("needs `timestamp-field`")
        );
        assert!(
            Extractor::parse("field", Some("a..b"))
                .unwrap_err()
                .contains("empty part")
        );
        assert!(
            Extractor::parse("record", Some("a"))
                .unwrap_err()
                .contains("only read with")
        );
        assert!(
            Extractor::parse("event", None)
                .unwrap_err()
                .contains("not one of")
        );
    }
}
