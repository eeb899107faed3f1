//! The value joiner of a join: what value each matched pair of records
//! makes.
//!
//! Every join (stream–table, table–table, stream–stream, foreign key)
//! calls one for the pairs it matched, a call batch at a time:
//!
//! - [`ValueJoiner`]: a built-in ([`BuiltIn`]: `merge`, `pair`) or a plugin
//!   of the `value-joiner` world, behind one [`ValueJoiner::join`];
//! - [`JoinPair`]: one matched pair, borrowed; either side may be absent
//!   (left and outer joins), not both;
//! - [`Joined`]: per pair, the joined value with the headers of both
//!   sides (the left's, then the right's), or a rejection;
//!
//! A join sets the joined record's key and timestamp itself
//! ([`JoinedValue::into_record`]). A plugin that traps fails the call
//! ([`JoinError::Trap`]) and its instance is dropped;
//! [`ValueJoiner::join_each`] replays such a call one pair at a time, so
//! that only the pair it traps on meets the `trap` policy.

use bytes::Bytes;
use sluice_frame::{Reader, Sides, Status, Writer};

use super::built_in::BuiltIn;
use crate::error::PluginError;
use crate::operator::call::PluginStep;
use crate::plugin::{Plugin, PluginKind, Trap};
use crate::record::{Record, RecordRef};

/// One matched pair: the left and the right record, either absent.
#[derive(Debug, Clone, Copy)]
pub struct JoinPair<'a> {
    /// The left record (the stream's, in a stream–table join).
    pub left: Option<RecordRef<'a>>,
    /// The right record.
    pub right: Option<RecordRef<'a>>,
}

impl JoinPair<'_> {
    /// The headers of both sides: the left's, then the right's, in order.
    pub fn headers(&self) -> Vec<(String, Option<Bytes>)> {
        [self.left, self.right]
            .iter()
            .flatten()
            .flat_map(|r| r.headers.iter())
            .map(|(name, value)| (name.to_owned(), value.map(Bytes::copy_from_slice)))
            .collect()
    }

    fn sides(&self) -> Sides {
        assert!(
            self.left.is_some() || self.right.is_some(),
            "a join pair has at least one side"
        );
        Sides {
            left: self.left.is_some(),
            right: self.right.is_some(),
        }
    }
}

/// The joined value of a pair, with its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinedValue {
    /// The value; `None` (a plugin may return a null value) is a tombstone.
    pub value: Option<Bytes>,
    /// The left record's headers, then the right record's.
    pub headers: Vec<(String, Option<Bytes>)>,
}

impl JoinedValue {
    /// The joined record, with the join's `key` and `timestamp`.
    pub fn into_record(self, key: Option<Bytes>, timestamp: Option<i64>) -> Record {
        Record {
            key,
            value: self.value,
            timestamp,
            headers: self.headers,
        }
    }
}

/// What the joiner made of one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// The joined value.
    Value(JoinedValue),
    /// The joiner refused the pair: the `rejected` policy applies.
    Rejected {
        /// Machine-readable reason.
        code: String,
        /// Human-readable reason.
        message: String,
    },
}

/// A joiner call that failed as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The plugin trapped; its instance was dropped, and the next call
    /// gets a fresh one.
    #[error("the joiner trapped: {0}")]
    Trap(Trap),
    /// A fresh instance of the plugin could not be made.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The plugin broke the call protocol (`wit/FRAME.md`): the pipeline
    /// stops rather than guess.
    #[error("the joiner broke the call protocol: {0}")]
    Protocol(String),
}

/// Joins pairs: a built-in, or a joiner plugin's instance.
pub struct ValueJoiner {
    logic: Logic,
}

enum Logic {
    BuiltIn(BuiltIn),
    Plugin(Box<PluginJoiner>),
}

/// A joiner plugin with its instance, and its call's buffers, reused.
struct PluginJoiner {
    name: String,
    step: PluginStep,
    left: Vec<u8>,
    right: Vec<u8>,
    sides: Vec<u8>,
}

impl std::fmt::Debug for ValueJoiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.logic {
            Logic::BuiltIn(b) => f.debug_tuple("ValueJoiner").field(b).finish(),
            Logic::Plugin(p) => f.debug_tuple("ValueJoiner").field(&p.name).finish(),
        }
    }
}

impl From<BuiltIn> for ValueJoiner {
    fn from(built_in: BuiltIn) -> ValueJoiner {
        ValueJoiner {
            logic: Logic::BuiltIn(built_in),
        }
    }
}

impl ValueJoiner {
    /// A joiner plugin, instantiated with the step's `config` (a plugin
    /// that cannot start fails here, not at the first call).
    pub fn plugin(plugin: Plugin, config: Vec<(String, String)>) -> Result<Self, PluginError> {
        if plugin.kind() != PluginKind::Joiner {
            return Err(PluginError::WrongWorld {
                plugin: plugin.name().to_owned(),
                expected: PluginKind::Joiner.interface().to_owned(),
                found: format!("it exports `{}`", plugin.kind().interface()),
            });
        }
        let name = plugin.name().to_owned();
        Ok(ValueJoiner {
            logic: Logic::Plugin(Box::new(PluginJoiner {
                name,
                step: PluginStep::new(plugin, config)?,
                left: Vec::new(),
                right: Vec::new(),
                sides: Vec::new(),
            })),
        })
    }

    /// The built-in it is, if it is one.
    pub fn as_built_in(&self) -> Option<BuiltIn> {
        match self.logic {
            Logic::BuiltIn(b) => Some(b),
            Logic::Plugin(_) => None,
        }
    }

    /// The digest of its plugin, for dead letters (`built-in` without one).
    pub fn digest(&self) -> &str {
        match &self.logic {
            Logic::BuiltIn(_) => "built-in",
            Logic::Plugin(p) => p.step.digest(),
        }
    }

    /// Hot swap: the next call goes to a fresh instance of `plugin`.
    ///
    /// # Panics
    /// If it is a built-in (it has no plugin to swap).
    pub fn swap_plugin(&mut self, plugin: Plugin) {
        match &mut self.logic {
            Logic::Plugin(p) => {
                p.name = plugin.name().to_owned();
                p.step.swap(plugin);
            }
            Logic::BuiltIn(b) => {
                panic!("the built-in joiner `{}` has no plugin to swap", b.name())
            }
        }
    }

    /// Joins one call batch of pairs: one [`Joined`] per pair, in order.
    ///
    /// # Panics
    /// If a pair has neither side.
    pub fn join(&mut self, pairs: &[JoinPair<'_>]) -> Result<Vec<Joined>, JoinError> {
        match &mut self.logic {
            Logic::BuiltIn(b) => Ok(pairs.iter().map(|p| built_in(*b, p)).collect()),
            Logic::Plugin(p) => p.join(pairs),
        }
    }

    /// As [`ValueJoiner::join`], but a call that traps is replayed one pair
    /// at a time on fresh instances: each pair gets its [`Joined`], or the
    /// trap when it is the pair the plugin traps on.
    pub fn join_each(
        &mut self,
        pairs: &[JoinPair<'_>],
    ) -> Result<Vec<Result<Joined, Trap>>, JoinError> {
        let trap = match self.join(pairs) {
            Ok(joined) => return Ok(joined.into_iter().map(Ok).collect()),
            Err(JoinError::Trap(trap)) => trap,
            Err(e) => return Err(e),
        };
        if pairs.len() == 1 {
            return Ok(vec![Err(trap)]);
        }
        tracing::warn!(
            joiner = ?self,
            pairs = pairs.len(),
            "joiner trapped ({trap}); replaying the call batch one pair at a time on fresh instances"
        );
        pairs
            .iter()
            .map(|pair| match self.join(std::slice::from_ref(pair)) {
                Ok(mut one) => Ok(Ok(one.pop().expect("one result per pair"))),
                Err(JoinError::Trap(trap)) => Ok(Err(trap)),
                Err(e) => Err(e),
            })
            .collect()
    }
}

fn built_in(joiner: BuiltIn, pair: &JoinPair<'_>) -> Joined {
    // Built-ins read no sides byte, but a pair without a side is as wrong.
    pair.sides();
    let (left, right) = (
        pair.left.and_then(|r| r.value),
        pair.right.and_then(|r| r.value),
    );
    match joiner.join(left, right) {
        Ok(value) => Joined::Value(JoinedValue {
            value: Some(value.into()),
            headers: pair.headers(),
        }),
        Err(refusal) => Joined::Rejected {
            code: refusal.code.to_owned(),
            message: refusal.message,
        },
    }
}

impl PluginJoiner {
    fn join(&mut self, pairs: &[JoinPair<'_>]) -> Result<Vec<Joined>, JoinError> {
        self.encode(pairs);
        let result = self
            .step
            .instance()?
            .join(&self.left, &self.right, &self.sides);
        match result {
            Ok(Ok(frame)) => decode(&frame, pairs).map_err(JoinError::Protocol),
            Ok(Err((code, message))) => Err(JoinError::Protocol(format!(
                "it refused the whole call batch: {code}: {message}"
            ))),
            Err(trap) => {
                self.step.discard_instance();
                Err(JoinError::Trap(trap))
            }
        }
    }

    /// The call's frames: the left records, the right records (a
    /// placeholder for an absent side) and the sides of each pair.
    fn encode(&mut self, pairs: &[JoinPair<'_>]) {
        let count = pairs.len() as u32;
        let mut left = Writer::input(std::mem::take(&mut self.left), count);
        let mut right = Writer::input(std::mem::take(&mut self.right), count);
        self.sides.clear();
        for pair in pairs {
            self.sides.push(pair.sides().to_byte());
            write_side(&mut left, pair.left);
            write_side(&mut right, pair.right);
        }
        self.left = left.finish();
        self.right = right.finish();
    }
}

fn write_side(w: &mut Writer, record: Option<RecordRef<'_>>) {
    match record {
        Some(r) => w.record(r.key, r.value, r.timestamp, r.headers.iter()),
        None => w.record(None, None, None, std::iter::empty()),
    }
}

/// Reads a joiner's output frame: per pair, one record holding only a
/// value, or a rejection.
fn decode(frame: &[u8], pairs: &[JoinPair<'_>]) -> Result<Vec<Joined>, String> {
    let bad = |e: sluice_frame::FrameError| e.to_string();
    let (mut reader, count) = Reader::output(frame).map_err(bad)?;
    if count as usize != pairs.len() {
        return Err(format!(
            "output frame has {count} statuses for {} pairs",
            pairs.len()
        ));
    }
    let mut out = Vec::with_capacity(pairs.len());
    for (j, pair) in pairs.iter().enumerate() {
        out.push(match reader.status().map_err(bad)? {
            Status::Ok(1) => {
                let r = reader.record().map_err(bad)?;
                if r.key.is_some() || r.timestamp.is_some() || r.header_count() > 0 {
                    return Err(format!(
                        "a joiner returns only a value; pair {j} of the call got a key, a timestamp or headers (the host sets them)"
                    ));
                }
                Joined::Value(JoinedValue {
                    value: r.value.map(Bytes::copy_from_slice),
                    headers: pair.headers(),
                })
            }
            Status::Ok(n) => {
                return Err(format!(
                    "a joiner returns one joined value per pair; pair {j} of the call got {n}"
                ));
            }
            Status::Rejected { code, message } => Joined::Rejected {
                code: code.to_owned(),
                message: message.to_owned(),
            },
        });
    }
    if !reader.is_empty() {
        return Err(format!(
            "{} unread bytes after the last status",
            frame.len() - reader.position()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::join::testing::load;
    use crate::plugin::Limits;

    /// The joiner of the test plugin in `tests/plugins/<name>`.
    fn plugin(name: &str) -> ValueJoiner {
        ValueJoiner::plugin(load(name), Vec::new()).unwrap()
    }

    fn record(value: &str, headers: &[(&str, Option<&str>)]) -> Record {
        let mut r = Record::new(Some(b"k"), Some(value.as_bytes()), Some(5));
        r.headers = headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                )
            })
            .collect();
        r
    }

    fn pair<'a>(left: Option<&'a Record>, right: Option<&'a Record>) -> JoinPair<'a> {
        JoinPair {
            left: left.map(Record::as_ref),
            right: right.map(Record::as_ref),
        }
    }

    /// Each pair's joined value as text, or its rejection's code.
    fn values(joined: Vec<Joined>) -> Vec<Result<String, String>> {
        joined
            .into_iter()
            .map(|j| match j {
                Joined::Value(v) => Ok(String::from_utf8(v.value.unwrap().to_vec()).unwrap()),
                Joined::Rejected { code, .. } => Err(code),
            })
            .collect()
    }

    #[test]
    fn a_plugin_joins_both_sides_either_side_alone_and_rejects_its_marker() {
        let order = record(r#"{"item":"pen"}"#, &[]);
        let ada = record(r#"{"name":"Ada"}"#, &[]);
        let marker = record(r#"{"item":"REJECT"}"#, &[]);
        let mut joiner = plugin("join-greeting");
        let out = joiner
            .join(&[
                pair(Some(&order), Some(&ada)),
                pair(Some(&order), None),
                pair(None, Some(&ada)),
                pair(Some(&marker), Some(&ada)),
            ])
            .unwrap();
        assert_eq!(
            values(out),
            vec![
                Ok(r#"{"item":"pen","greeting":"Hello Ada, your pen is on its way"}"#.into()),
                Ok(r#"{"item":"pen","greeting":"Hello stranger, your pen is on its way"}"#.into()),
                Ok(r#"{"item":null,"greeting":"Hello Ada, no order yet"}"#.into()),
                Err("rejected-marker".into()),
            ]
        );
        assert_eq!(joiner.digest().len(), 64);
        assert_eq!(joiner.as_built_in(), None);
    }

    #[test]
    fn the_joined_value_keeps_the_headers_of_both_sides_left_then_right() {
        let left = record(
            r#"{"item":"pen"}"#,
            &[("trace", Some("1")), ("src", Some("orders"))],
        );
        let right = record(
            r#"{"name":"Ada"}"#,
            &[("src", Some("customers")), ("gone", None)],
        );
        let expected: Vec<(String, Option<Bytes>)> = [
            ("trace", Some("1")),
            ("src", Some("orders")),
            ("src", Some("customers")),
            ("gone", None),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.map(|v| Bytes::from(v.as_bytes().to_vec()))))
        .collect();
        for mut joiner in [plugin("join-greeting"), ValueJoiner::from(BuiltIn::Merge)] {
            let out = joiner.join(&[pair(Some(&left), Some(&right))]).unwrap();
            let [Joined::Value(joined)] = &out[..] else {
                panic!("{joiner:?}: {out:?}");
            };
            assert_eq!(joined.headers, expected, "{joiner:?}");
            let right_only = joiner.join(&[pair(None, Some(&right))]).unwrap();
            let [Joined::Value(joined)] = &right_only[..] else {
                panic!("{joiner:?}: {right_only:?}");
            };
            assert_eq!(joined.headers, expected[2..], "{joiner:?}");
        }
        let joined = JoinedValue {
            value: Some(Bytes::from_static(b"v")),
            headers: expected.clone(),
        };
        let r = joined.into_record(Some(Bytes::from_static(b"k")), Some(9));
        assert_eq!((r.timestamp, r.headers), (Some(9), expected));
    }

    #[test]
    fn a_trap_drops_the_instance_and_join_each_finds_the_pair_it_traps_on() {
        let (a, b, trap) = (record("a", &[]), record("b", &[]), record("xTRAPx", &[]));
        let mut joiner = plugin("join-trap-on-marker");
        let e = joiner
            .join(&[pair(Some(&a), Some(&b)), pair(Some(&a), Some(&trap))])
            .unwrap_err();
        assert!(matches!(e, JoinError::Trap(_)), "{e}");
        // A fresh instance answers the next call.
        let out = joiner.join(&[pair(Some(&a), None)]).unwrap();
        assert_eq!(values(out), vec![Ok("a|-".into())]);

        let out = joiner
            .join_each(&[
                pair(Some(&a), Some(&b)),
                pair(Some(&trap), None),
                pair(None, Some(&b)),
            ])
            .unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(
            values(vec![out[0].clone().unwrap()]),
            vec![Ok("a|b".into())]
        );
        let trap = out[1].clone().unwrap_err();
        assert!(
            trap.0.contains("unreachable") || trap.0.contains("panic"),
            "{trap}"
        );
        assert_eq!(
            values(vec![out[2].clone().unwrap()]),
            vec![Ok("-|b".into())]
        );
    }

    #[test]
    fn a_call_over_the_output_cap_fails_as_a_trap() {
        let limits = Limits {
            output: 40,
            ..Limits::default()
        };
        let plugin = load("join-trap-on-marker").with_limits(limits);
        let mut joiner = ValueJoiner::plugin(plugin, Vec::new()).unwrap();
        let long = record(&"x".repeat(100), &[]);
        match joiner.join(&[pair(Some(&long), None)]) {
            Err(JoinError::Trap(t)) => assert!(t.0.starts_with("output:"), "{t}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn built_ins_join_without_a_plugin_and_name_the_side_they_refuse() {
        let left = record(r#"{"id":1,"name":"left"}"#, &[]);
        let right = record(r#"{"name":"right","city":"Oslo"}"#, &[]);
        let list = record("[1]", &[]);
        let tombstone = Record::new(Some(b"k"), None, None);
        let mut merge = ValueJoiner::from(BuiltIn::Merge);
        let out = merge
            .join(&[
                pair(Some(&left), Some(&right)),
                pair(Some(&left), Some(&tombstone)),
                pair(Some(&list), Some(&right)),
            ])
            .unwrap();
        assert_eq!(
            values(out[..2].to_vec()),
            vec![
                Ok(r#"{"city":"Oslo","id":1,"name":"right"}"#.into()),
                Ok(r#"{"id":1,"name":"left"}"#.into()),
            ]
        );
        let Joined::Rejected { code, message } = &out[2] else {
            panic!("{:?}", out[2]);
        };
        assert_eq!(code, "not-an-object");
        assert!(message.contains("the left value is an array"), "{message}");

        let mut pair_joiner = ValueJoiner::from(BuiltIn::Pair);
        let out = pair_joiner
            .join(&[pair(Some(&list), None), pair(None, Some(&list))])
            .unwrap();
        assert_eq!(
            values(out),
            vec![
                Ok(r#"{"left":[1],"right":null}"#.into()),
                Ok(r#"{"left":null,"right":[1]}"#.into()),
            ]
        );
        assert_eq!(pair_joiner.digest(), "built-in");
        assert_eq!(pair_joiner.as_built_in(), Some(BuiltIn::Pair));
    }

    /// An output frame of `n` statuses, written by `write`.
    fn output(n: u32, write: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::output(Vec::new(), n);
        write(&mut w);
        w.finish()
    }

    #[test]
    fn an_answer_that_breaks_the_protocol_is_named() {
        let r = record("v", &[("h", Some("1"))]);
        let pairs = [pair(Some(&r), None)];
        let value_only = |w: &mut Writer| {
            w.begin_ok();
            w.record(None, Some(b"j"), None, std::iter::empty());
        };
        let ok = decode(&output(1, value_only), &pairs).unwrap();
        assert_eq!(values(ok), vec![Ok("j".into())]);

        let two = output(1, |w| {
            value_only(w);
            w.record(None, Some(b"j"), None, std::iter::empty());
        });
        let e = decode(&two, &pairs).unwrap_err();
        assert!(
            e.contains("one joined value per pair; pair 0 of the call got 2"),
            "{e}"
        );
        let keyed = output(1, |w| {
            w.begin_ok();
            w.record(Some(b"k"), Some(b"j"), None, std::iter::empty());
        });
        let e = decode(&keyed, &pairs).unwrap_err();
        assert!(e.contains("only a value"), "{e}");
        let e = decode(&output(0, |_| {}), &pairs).unwrap_err();
        assert!(e.contains("0 statuses for 1 pairs"), "{e}");
        let mut trailing = output(1, value_only);
        trailing.push(0);
        assert!(
            decode(&trailing, &pairs)
                .unwrap_err()
                .contains("unread bytes")
        );
    }
}
