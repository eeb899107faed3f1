//! Reference models of Kafka Streams' joins, for the tests of Sluice's
//! joins (issue 14).
//!
//! Each model replays a list of input events in arrival order and returns
//! what Kafka Streams would emit, in emission order. Like the window
//! models, they share no code with the engine and are written the most
//! direct way: lists and maps scanned in full, every rule in one place.
//!
//! The rules come from Apache Kafka's source at commit `1eb7644` of
//! 2024-10-25 (version `4.0.0-SNAPSHOT`, docs version 4.0), fetched from
//! `github:apache/kafka`; each model names the files it follows. The
//! semantics tables of the Kafka Streams developer guide
//! (`docs/streams/developer-guide/dsl-api.html`) are transcribed in
//! [`tables`], and scenarios from Kafka's own tests in [`scenarios`].
//!
//! The value joiner is out of the models: a joined value is the pair
//! (left value, right value), either side `None` where a left or outer join
//! has nothing to pair with. Keys and values are strings; `None` for a key
//! is Kafka's null key, for a value a null value (a tombstone for tables).
//! Times are non-negative milliseconds (Kafka drops records with negative
//! timestamps before any join sees them).

pub mod foreign_key;
pub mod scenarios;
pub mod stream_stream;
pub mod stream_table;
pub mod table_table;
pub mod tables;

use crate::Rng;

/// Which input of a join a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The join's own input (`left.join(right, ...)`).
    Left,
    /// The other input.
    Right,
}

/// One input record. A model's input is a list of these in arrival order
/// (the order the task processes them in); the index in that list is the
/// record's arrival number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The input it arrives on.
    pub side: Side,
    /// The record's key; `None` for a null key.
    pub key: Option<String>,
    /// The record's value; `None` for a null value (a tombstone on a table).
    pub value: Option<String>,
    /// Event time (the record's timestamp).
    pub time: i64,
}

impl Event {
    /// A record with a key and a value (or a tombstone).
    pub fn new(side: Side, key: &str, value: Option<&str>, time: i64) -> Event {
        Event {
            side,
            key: Some(key.to_string()),
            value: value.map(str::to_string),
            time,
        }
    }
}

/// The join types. Not every join has all three: stream–table,
/// stream–global-table and foreign-key joins have no outer join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `join`
    Inner,
    /// `leftJoin`
    Left,
    /// `outerJoin`
    Outer,
}

impl Kind {
    /// All three, in the order of the developer guide's table columns.
    pub const ALL: [Kind; 3] = [Kind::Inner, Kind::Left, Kind::Outer];
}

/// A joined value: (left value, right value). In a left or outer join's
/// unmatched result one side is `None`.
pub type Pair = (Option<String>, Option<String>);

/// One output record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The arrival number of the input event whose processing emitted it.
    pub at: usize,
    /// The output key (the input's key; `None` for a null-key left or
    /// outer result).
    pub key: Option<String>,
    /// The joined pair, or `None` for a tombstone (table results only).
    pub value: Option<Pair>,
    /// The output record's timestamp.
    pub time: i64,
}

/// Random join inputs with bounded disorder, for the 50-seed tests: about
/// `n` events on both sides over three keys, time moving forward in steps
/// of 10 (with an occasional long pause, so that windows close) and each
/// event late by up to `spread`, so that with a small grace some are too
/// late. One in 25 values is null (a tombstone for tables) and one in 40
/// keys is null. Values are unique (`L17`, `R42`: side and arrival
/// number), so every output names the inputs it came from.
pub fn events(seed: u64, n: usize, spread: i64) -> Vec<Event> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut now = 1_000;
    (0..n)
        .map(|i| {
            now += 10 * rng.below(4) as i64;
            if rng.below(40) == 0 {
                now += 300;
            }
            let lateness = 10 * rng.below((spread / 10 + 1) as u64) as i64;
            let side = if rng.below(2) == 0 {
                Side::Left
            } else {
                Side::Right
            };
            let key = (rng.below(40) != 0).then(|| format!("k{}", rng.below(3)));
            let value = (rng.below(25) != 0).then(|| {
                let tag = if side == Side::Left { 'L' } else { 'R' };
                format!("{tag}{i}")
            });
            Event {
                side,
                key,
                value,
                time: (now - lateness).max(0),
            }
        })
        .collect()
}
