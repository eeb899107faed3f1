//! The built-in joiners, which need no plugin: `merge` and `pair`.
//!
//! Both read the values as JSON. A tombstone (a present record with a null
//! value) counts as an absent side.
//!
//! - `merge`: both values JSON objects → one object with the fields of
//!   both; on a field both have, the right value's wins. An absent side
//!   contributes nothing. The merge is shallow (a field of the right
//!   replaces the left's whole field), and the fields come out in name
//!   order.
//! - `pair`: `{"left": <left value>, "right": <right value>}`, `null` for
//!   an absent side; each value is copied as it came.
//!
//! A value that is not JSON (or, for `merge`, not a JSON object) rejects
//! the pair, with a message naming the side: guessing an encoding for
//! bytes that are not JSON would make `"abc"` and `abc` one value.

use serde_json::{Map, Value};

/// A joiner built into the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltIn {
    /// The fields of two JSON objects in one object; the right's win.
    Merge,
    /// `{"left": …, "right": …}`.
    Pair,
}

/// Why a built-in refused a pair: a code and a message, as a plugin's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `not-json` or `not-an-object`.
    pub code: &'static str,
    /// What was wrong, naming the side.
    pub message: String,
}

impl BuiltIn {
    /// Every built-in.
    pub const ALL: [BuiltIn; 2] = [BuiltIn::Merge, BuiltIn::Pair];

    /// Its name in a pipeline file (`joiner = "merge"`).
    pub fn name(self) -> &'static str {
        match self {
            BuiltIn::Merge => "merge",
            BuiltIn::Pair => "pair",
        }
    }

    /// The built-in named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<BuiltIn> {
        BuiltIn::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The joined value of a pair's values (`None`: the side is absent or
    /// a tombstone).
    pub fn join(self, left: Option<&[u8]>, right: Option<&[u8]>) -> Result<Vec<u8>, Refusal> {
        match self {
            BuiltIn::Merge => merge(left, right),
            BuiltIn::Pair => pair(left, right),
        }
    }
}

fn merge(left: Option<&[u8]>, right: Option<&[u8]>) -> Result<Vec<u8>, Refusal> {
    let mut merged = object("left", left)?;
    merged.extend(object("right", right)?);
    Ok(serde_json::to_vec(&merged).expect("a JSON map serializes"))
}

/// The fields of a side's value; none for an absent side.
fn object(side: &str, value: Option<&[u8]>) -> Result<Map<String, Value>, Refusal> {
    let Some(bytes) = value else {
        return Ok(Map::new());
    };
    match serde_json::from_slice::<Value>(bytes).map_err(|e| not_json("merge", side, &e))? {
        Value::Object(fields) => Ok(fields),
        other => Err(Refusal {
            code: "not-an-object",
            message: format!(
                "the built-in joiner `merge` joins JSON objects, and the {side} value is {}",
                kind_of(&other)
            ),
        }),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn not_json(joiner: &str, side: &str, e: &serde_json::Error) -> Refusal {
    Refusal {
        code: "not-json",
        message: format!(
            "the built-in joiner `{joiner}` reads JSON values, and the {side} value is not JSON: {e}"
        ),
    }
}

fn pair(left: Option<&[u8]>, right: Option<&[u8]>) -> Result<Vec<u8>, Refusal> {
    let (left, right) = (raw_json("left", left)?, raw_json("right", right)?);
    let mut out = Vec::with_capacity(left.len() + right.len() + 20);
    out.extend_from_slice(b"{\"left\":");
    out.extend_from_slice(left);
    out.extend_from_slice(b",\"right\":");
    out.extend_from_slice(right);
    out.push(b'}');
    Ok(out)
}

/// A side's value, checked to be JSON, as it came (`null` when absent).
fn raw_json<'v>(side: &str, value: Option<&'v [u8]>) -> Result<&'v [u8], Refusal> {
    let Some(bytes) = value else {
        return Ok(b"null");
    };
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map_err(|e| not_json("pair", side, &e))?;
    Ok(bytes.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(left: Option<&str>, right: Option<&str>) -> Result<String, Refusal> {
        BuiltIn::Merge
            .join(left.map(str::as_bytes), right.map(str::as_bytes))
            .map(|v| String::from_utf8(v).unwrap())
    }

    fn paired(left: Option<&str>, right: Option<&str>) -> Result<String, Refusal> {
        BuiltIn::Pair
            .join(left.map(str::as_bytes), right.map(str::as_bytes))
            .map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn merge_keeps_both_sides_fields_and_the_right_wins_a_collision() {
        let out = merged(
            Some(r#"{"id":1,"name":"left","tags":{"a":1}}"#),
            Some(r#"{"name":"right","city":"Oslo","tags":{"b":2}}"#),
        );
        assert_eq!(
            out.unwrap(),
            r#"{"city":"Oslo","id":1,"name":"right","tags":{"b":2}}"#
        );
    }

    #[test]
    fn merge_of_one_side_is_that_side_and_of_none_is_empty() {
        assert_eq!(merged(Some(r#"{"a":1}"#), None).unwrap(), r#"{"a":1}"#);
        assert_eq!(merged(None, Some(r#"{"b":2}"#)).unwrap(), r#"{"b":2}"#);
        assert_eq!(merged(None, None).unwrap(), "{}");
    }

    #[test]
    fn merge_refuses_a_value_that_is_not_an_object_naming_its_side() {
        let e = merged(Some(r#"{"a":1}"#), Some("[1,2]")).unwrap_err();
        assert_eq!(e.code, "not-an-object");
        assert!(
            e.message.contains("the right value is an array"),
            "{}",
            e.message
        );
        let e = merged(Some("7"), Some(r#"{"a":1}"#)).unwrap_err();
        assert!(
            e.message.contains("the left value is a number"),
            "{}",
            e.message
        );
        let e = merged(Some("{oops"), None).unwrap_err();
        assert_eq!(e.code, "not-json");
        assert!(
            e.message.contains("the left value is not JSON"),
            "{}",
            e.message
        );
    }

    #[test]
    fn pair_holds_both_values_as_they_came_and_null_for_an_absent_side() {
        assert_eq!(
            paired(Some(r#"{"a": 1.50}"#), Some(" [true] ")).unwrap(),
            r#"{"left":{"a": 1.50},"right":[true]}"#
        );
        assert_eq!(
            paired(Some(r#""x""#), None).unwrap(),
            r#"{"left":"x","right":null}"#
        );
        assert_eq!(
            paired(None, Some("3")).unwrap(),
            r#"{"left":null,"right":3}"#
        );
        let out: Value = serde_json::from_str(&paired(None, Some("3")).unwrap()).unwrap();
        assert_eq!(out["right"], 3);
    }

    #[test]
    fn pair_refuses_a_value_that_is_not_json_naming_its_side() {
        let e = paired(Some("{}"), Some("plain text")).unwrap_err();
        assert_eq!(e.code, "not-json");
        assert!(e.message.contains("`pair`"), "{}", e.message);
        assert!(
            e.message.contains("the right value is not JSON"),
            "{}",
            e.message
        );
    }

    #[test]
    fn names_read_back() {
        for b in BuiltIn::ALL {
            assert_eq!(BuiltIn::from_name(b.name()), Some(b));
        }
        assert_eq!(BuiltIn::from_name("Merge"), None);
    }
}
