//! Records, errors, configuration and the output emitter.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use sluice_frame::{RecordRef, Writer};

/// A record header: a name and an optional value.
pub type Header<'a> = (Cow<'a, str>, Option<Cow<'a, [u8]>>);

/// One Kafka record as a plugin sees it.
///
/// Fields borrow from the call batch until they are replaced, so passing a
/// record through unchanged copies nothing until it is written out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record<'a> {
    /// The key; `None` is a null key.
    pub key: Option<Cow<'a, [u8]>>,
    /// The value; `None` is a tombstone.
    pub value: Option<Cow<'a, [u8]>>,
    /// Event time in UTC milliseconds. On output, `None` keeps the input
    /// record's timestamp.
    pub timestamp: Option<i64>,
    /// Headers in order; names may repeat.
    pub headers: Vec<Header<'a>>,
}

impl<'a> Record<'a> {
    /// A record with this key and value, no headers, and the input's timestamp.
    pub fn new(
        key: Option<impl Into<Vec<u8>>>,
        value: Option<impl Into<Vec<u8>>>,
    ) -> Record<'static> {
        Record {
            key: key.map(|k| Cow::Owned(k.into())),
            value: value.map(|v| Cow::Owned(v.into())),
            timestamp: None,
            headers: Vec::new(),
        }
    }

    pub(crate) fn from_frame(r: &RecordRef<'a>) -> Result<Self, Error> {
        let headers = r
            .headers()
            .map(|h| {
                h.map(|(name, value)| (Cow::Borrowed(name), value.map(Cow::Borrowed)))
                    .map_err(|e| Error::new("bad-frame", e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Record {
            key: r.key.map(Cow::Borrowed),
            value: r.value.map(Cow::Borrowed),
            timestamp: r.timestamp,
            headers,
        })
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.record(
            self.key.as_deref(),
            self.value.as_deref(),
            self.timestamp,
            self.headers.iter().map(|(n, v)| (n.as_ref(), v.as_deref())),
        );
    }

    /// Replaces the key.
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(Cow::Owned(key.into()));
        self
    }

    /// Replaces the value.
    pub fn with_value(mut self, value: impl Into<Vec<u8>>) -> Self {
        self.value = Some(Cow::Owned(value.into()));
        self
    }

    /// Sets the event time (UTC milliseconds).
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers
            .push((Cow::Owned(name.into()), Some(Cow::Owned(value.into()))));
        self
    }

    /// The value of the last header with this name, if any.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// The value as UTF-8 text; a null or non-UTF-8 value is an error.
    pub fn value_str(&self) -> Result<&str, Error> {
        let value = self
            .value
            .as_deref()
            .ok_or_else(|| Error::new("null-value", "the record has no value"))?;
        std::str::from_utf8(value).map_err(|e| Error::new("bad-utf8", e.to_string()))
    }

    /// The value parsed as JSON into `T`; a null or malformed value is an
    /// error with code `bad-json`.
    #[cfg(feature = "json")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        let value = self
            .value
            .as_deref()
            .ok_or_else(|| Error::new("bad-json", "the record has no value"))?;
        serde_json::from_slice(value).map_err(Error::from)
    }

    /// Replaces the value with `value` serialized as JSON.
    #[cfg(feature = "json")]
    pub fn with_json_value<T: serde::Serialize>(self, value: &T) -> Result<Self, Error> {
        Ok(self.with_value(serde_json::to_vec(value)?))
    }

    /// Detaches the record from the call batch.
    pub fn into_owned(self) -> Record<'static> {
        Record {
            key: self.key.map(|k| Cow::Owned(k.into_owned())),
            value: self.value.map(|v| Cow::Owned(v.into_owned())),
            timestamp: self.timestamp,
            headers: self
                .headers
                .into_iter()
                .map(|(n, v)| {
                    (
                        Cow::Owned(n.into_owned()),
                        v.map(|v| Cow::Owned(v.into_owned())),
                    )
                })
                .collect(),
        }
    }
}

/// A plugin's refusal of one record. The pipeline's `rejected` policy
/// decides what happens to the record (skip, dead-letter topic, or fail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// A short machine-readable code, for example `bad-json`.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

impl Error {
    /// An error with a code and a message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Error {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(feature = "json")]
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new("bad-json", e.to_string())
    }
}

/// Where a processor puts its output records.
#[derive(Debug)]
pub struct Emitter<'w> {
    pub(crate) writer: &'w mut Writer,
}

impl Emitter<'_> {
    /// Emits one output record.
    pub fn emit(&mut self, record: Record<'_>) {
        record.write(self.writer);
    }
}

/// A step's `config` table from the pipeline file: string keys and values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config(pub Vec<(String, String)>);

impl Config {
    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key` parsed as `T`, or `default` when absent; a value that does
    /// not parse is an error naming the key.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| Error::new("bad-config", format!("config `{key}` = {raw:?}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_builders_and_accessors() {
        let r = Record::new(Some("k"), Some("{\"a\":1}"))
            .with_header("h", "1")
            .with_header("h", "2")
            .with_timestamp(42);
        assert_eq!(r.header("h"), Some(&b"2"[..]));
        assert_eq!(r.header("missing"), None);
        assert_eq!(r.timestamp, Some(42));
        assert_eq!(r.value_str().unwrap(), "{\"a\":1}");
        #[derive(serde::Deserialize, Debug)]
        struct A {
            a: u32,
        }
        assert_eq!(r.json::<A>().unwrap().a, 1);
        let bad = Record::new(Some("k"), Some("{oops"));
        assert_eq!(bad.json::<A>().unwrap_err().code, "bad-json");
        let tomb = Record::new(Some("k"), None::<Vec<u8>>);
        assert_eq!(tomb.value_str().unwrap_err().code, "null-value");
    }

    #[test]
    fn config_parses_with_defaults_and_names_bad_keys() {
        let c = Config(vec![("n".into(), "5".into()), ("x".into(), "five".into())]);
        assert_eq!(c.parse_or("n", 1u32).unwrap(), 5);
        assert_eq!(c.parse_or("absent", 7u32).unwrap(), 7);
        let e = c.parse_or("x", 0u32).unwrap_err();
        assert!(e.message.contains("`x`"), "{e}");
    }
}
