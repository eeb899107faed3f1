//! Change data capture: what a table record does to its table. A plain
//! record's value is the row; a Debezium change event (in Kafka Connect's
//! JSON converter's envelope or not) leaves the row it names. Tables
//! (`operator/table.rs`) and global tables (`state/global_table.rs`) read
//! their records so.

use serde_json::Value;

/// Why a table record cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// A short code: `null-key` or `bad-change-event`.
    pub code: &'static str,
    /// What was wrong.
    pub message: String,
}

/// What a table record with `key` and `value` does: its key and the row
/// the key now has (`None`: deleted, by a tombstone or a Debezium `d`),
/// reading `value` as a Debezium change event when `debezium`.
pub fn table_change<'k>(
    key: Option<&'k [u8]>,
    value: Option<&[u8]>,
    debezium: bool,
) -> Result<(&'k [u8], Option<Vec<u8>>), Unreadable> {
    let key = key.ok_or_else(|| Unreadable {
        code: "null-key",
        message: "a table is keyed, and this record has a null key".into(),
    })?;
    let row = match (debezium, value) {
        (_, None) => None,
        (false, Some(v)) => Some(v.to_vec()),
        (true, Some(v)) => debezium_row(v).map_err(|message| Unreadable {
            code: "bad-change-event",
            message,
        })?,
    };
    Ok((key, row))
}

/// The row a Debezium change event leaves: `Some(after)`, or `None` for a
/// deletion. An error says why the event cannot be read.
pub fn debezium_row(value: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let v: Value =
        serde_json::from_slice(value).map_err(|e| format!("the change event is not JSON: {e}"))?;
    let event = match (v.get("schema"), v.get("payload")) {
        (Some(_), Some(payload)) if payload.is_object() => payload,
        _ => &v,
    };
    let op = event
        .get("op")
        .and_then(Value::as_str)
        .ok_or("the change event has no string `op` (expected c, r, u or d)")?;
    match op {
        "c" | "r" | "u" => match event.get("after") {
            Some(after) if !after.is_null() => Ok(Some(
                serde_json::to_vec(after).expect("a JSON value serializes"),
            )),
            _ => Err(format!("op `{op}` without an `after` row")),
        },
        "d" => Ok(None),
        other => Err(format!(
            "op `{other}` is not a row change (expected c, r, u or d)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{debezium_row, table_change};

    #[test]
    fn a_table_record_sets_or_deletes_its_key_or_says_why_it_cannot() {
        let event = br#"{"before":null,"after":{"n":1},"op":"c"}"#;
        assert_eq!(
            table_change(Some(b"k"), Some(b"row"), false),
            Ok((&b"k"[..], Some(b"row".to_vec())))
        );
        assert_eq!(table_change(Some(b"k"), None, true), Ok((&b"k"[..], None)));
        assert_eq!(
            table_change(Some(b"k"), Some(event), true),
            Ok((&b"k"[..], Some(br#"{"n":1}"#.to_vec())))
        );
        assert_eq!(
            table_change(None, Some(b"row"), false).unwrap_err().code,
            "null-key"
        );
        let bad = table_change(Some(b"k"), Some(b"row"), true).unwrap_err();
        assert_eq!(bad.code, "bad-change-event");
        assert!(bad.message.contains("not JSON"), "{}", bad.message);
    }

    #[test]
    fn debezium_events_become_rows_or_deletions_and_bad_ones_say_why() {
        let row = |s: &str| debezium_row(s.as_bytes());
        assert_eq!(
            row(r#"{"before":null,"after":{"id":1,"name":"a"},"op":"c"}"#).unwrap(),
            Some(br#"{"id":1,"name":"a"}"#.to_vec())
        );
        assert_eq!(
            row(r#"{"schema":{"type":"struct"},"payload":{"before":{"id":1},"after":{"id":1,"v":2},"op":"u"}}"#)
                .unwrap(),
            Some(br#"{"id":1,"v":2}"#.to_vec()),
            "unwrapped from Kafka Connect's {{schema, payload}}"
        );
        assert_eq!(
            row(r#"{"before":{"id":1},"after":null,"op":"d"}"#).unwrap(),
            None
        );
        assert!(
            row(r#"{"after":{"id":1},"op":"r"}"#).unwrap().is_some(),
            "snapshot rows"
        );
        assert!(row("nope").unwrap_err().contains("not JSON"));
        assert!(
            row(r#"{"after":{}}"#)
                .unwrap_err()
                .contains("no string `op`")
        );
        assert!(
            row(r#"{"after":null,"op":"u"}"#)
                .unwrap_err()
                .contains("without an `after`")
        );
        assert!(row(r#"{"op":"t"}"#).unwrap_err().contains("op `t`"));
    }
}
