//! Change data capture: the change events of Debezium (and Kafka
//! Connect's JSON converter around them), read into the row they leave.
//! Tables (`format = "debezium"`) and global tables read their records so.

use serde_json::Value;

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
    use super::debezium_row;

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
