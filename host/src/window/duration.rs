//! Durations in pipeline files: a whole number of milliseconds, or a
//! number with a unit: `250ms`, `30s`, `5m`, `2h`, `7d`.

/// Parses a duration into milliseconds.
pub fn parse(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a duration; write a whole number with a unit: 250ms, 30s, 5m, 2h, 7d"
        ));
    }
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is too large a duration"))?;
    let scale = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "{text:?} has the unit {other:?}; use ms, s, m, h or d"
            ));
        }
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large a duration"))
}

/// Milliseconds as a duration a person reads: `1h`, `90s`, `2.5d`.
pub fn format(ms: i64) -> String {
    const UNITS: [(&str, i64); 5] = [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let magnitude = ms.unsigned_abs();
    let (unit, scale) = UNITS
        .into_iter()
        .find(|&(_, scale)| magnitude >= scale as u64)
        .unwrap_or(("ms", 1));
    if ms % scale == 0 {
        format!("{}{unit}", ms / scale)
    } else {
        format!("{:.1}{unit}", ms as f64 / scale as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::{format, parse};

    #[test]
    fn durations_format_in_their_largest_unit() {
        assert_eq!(format(3_600_000), "1h");
        assert_eq!(format(90_000), "1.5m");
        assert_eq!(format(120_000), "2m");
        assert_eq!(format(216_000_000), "2.5d");
        assert_eq!(format(250), "250ms");
        assert_eq!(format(0), "0ms");
        assert_eq!(format(i64::MAX), "106751991167.3d");
    }

    #[test]
    fn durations_take_units_and_refuse_what_they_cannot_read() {
        assert_eq!(parse("250"), Ok(250));
        assert_eq!(parse("250ms"), Ok(250));
        assert_eq!(parse("30s"), Ok(30_000));
        assert_eq!(parse("5m"), Ok(300_000));
        assert_eq!(parse(" 2h "), Ok(7_200_000));
        assert_eq!(parse("7d"), Ok(604_800_000));
        assert!(parse("1.5s").unwrap_err().contains("unit"));
        assert!(parse("m").unwrap_err().contains("not a duration"));
        assert!(parse("-5s").unwrap_err().contains("not a duration"));
        assert!(
            parse("5 weeks")
                .unwrap_err()
                .contains("use ms, s, m, h or d")
        );
        assert!(
            parse("99999999999999999999")
                .unwrap_err()
                .contains("too large")
        );
    }
}
