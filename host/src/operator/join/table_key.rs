//! The key a record looks a table up by (a global table's, or a
//! foreign-key join's right table): its own key, or the text of a field of
//! its JSON value; or, when the record cannot give one, why not.

use serde_json::Value;

use crate::record::RecordRef;
use crate::topology::GlobalKey;

/// The table key of a record: a key, none (a null key), or why the record
/// has no usable key.
#[derive(Debug, PartialEq, Eq)]
pub enum TableKey {
    /// The key to look up.
    Key(Vec<u8>),
    /// A null key: it matches nothing.
    Null,
    /// The record cannot give a key: what is wrong.
    Missing(String),
}

/// The table key `key` takes from `record`: its key, or the text of the
/// JSON field at `path` of its value (a string as it is; a number or a
/// boolean as JSON writes it).
pub fn table_key(key: &GlobalKey, record: &RecordRef<'_>) -> TableKey {
    let path = match key {
        GlobalKey::RecordKey => {
            return record
                .key
                .map_or(TableKey::Null, |k| TableKey::Key(k.to_vec()));
        }
        GlobalKey::Field(path) => path,
        GlobalKey::Plugin(_) => unreachable!("a key plugin's keys come from its calls"),
    };
    let dotted = path.join(".");
    let Some(value) = record.value else {
        return TableKey::Null;
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(value) else {
        return TableKey::Missing(format!(
            "the value is not JSON, so it has no `key-field` `{dotted}`"
        ));
    };
    for part in path {
        v = match v {
            Value::Object(mut fields) => match fields.remove(part) {
                Some(inner) => inner,
                None => {
                    return TableKey::Missing(format!(
                        "the value has no field `{dotted}` (the join's `key-field`)"
                    ));
                }
            },
            _ => {
                return TableKey::Missing(format!(
                    "the value has no field `{dotted}` (the join's `key-field`): `{part}`'s parent is not an object"
                ));
            }
        };
    }
    match v {
        Value::Null => TableKey::Null,
        Value::String(s) => TableKey::Key(s.into_bytes()),
        Value::Number(n) => TableKey::Key(n.to_string().into_bytes()),
        Value::Bool(b) => TableKey::Key(b.to_string().into_bytes()),
        Value::Array(_) | Value::Object(_) => TableKey::Missing(format!(
            "the join's `key-field` `{dotted}` is an array or an object, not a key"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_keys_come_from_the_record_key_or_a_json_field() {
        let value = br#"{"a":{"s":"x","n":12,"b":true,"z":null,"o":{}}}"#;
        let r = RecordRef {
            key: Some(b"k"),
            value: Some(value),
            ..RecordRef::EMPTY
        };
        let field = |p: &str| GlobalKey::Field(p.split('.').map(str::to_owned).collect());
        assert_eq!(
            table_key(&GlobalKey::RecordKey, &r),
            TableKey::Key(b"k".to_vec())
        );
        assert_eq!(table_key(&field("a.s"), &r), TableKey::Key(b"x".to_vec()));
        assert_eq!(table_key(&field("a.n"), &r), TableKey::Key(b"12".to_vec()));
        assert_eq!(
            table_key(&field("a.b"), &r),
            TableKey::Key(b"true".to_vec())
        );
        assert_eq!(table_key(&field("a.z"), &r), TableKey::Null);
        assert!(
            matches!(table_key(&field("a.o"), &r), TableKey::Missing(m) if m.contains("object"))
        );
        assert!(
            matches!(table_key(&field("a.q"), &r), TableKey::Missing(m) if m.contains("no field `a.q`"))
        );
        assert!(matches!(
            table_key(&field("a.s.t"), &r),
            TableKey::Missing(_)
        ));
    }
}
