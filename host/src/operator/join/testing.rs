//! What the joins' tests share: values as the models' strings in JSON,
//! the guide tables' rows pushed one record at a time, and the `pair`
//! joiner's output read back as the models write it.

use sluice_reference::joins::tables::{Cell, KEY, Out, Row};
use sluice_reference::joins::{Event, Kind, Pair, Side};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::plugin::Plugin;
use crate::task::testing::Driver;
use crate::toolchain::{self, BuildOptions};

/// A result as the models write it: (key, pair or tombstone, time).
pub type Seen = (Option<String>, Option<Pair>, i64);

/// A model's value (`A`, `L17`) as a record carries it: a JSON string, so
/// that the `pair` joiner takes it.
pub fn json(v: &str) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// The records `topic` got from the `from`-th on, read back from `pair`'s
/// `{"left": …, "right": …}`.
pub fn seen(d: &Driver, topic: &str, from: usize) -> Vec<Seen> {
    let side = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    (d.outputs(topic)[from..].iter())
        .map(|r| {
            let pair = r.value.as_ref().map(|v| {
                let v: serde_json::Value = serde_json::from_slice(v).unwrap();
                (side(&v["left"]), side(&v["right"]))
            });
            let key = r
                .key
                .as_ref()
                .map(|k| String::from_utf8(k.to_vec()).unwrap());
            (key, pair, r.timestamp.unwrap())
        })
        .collect()
}

/// Pushes `e` to the `left` or `right` topic.
pub fn push(d: &mut Driver, (left, right): (&str, &str), e: &Event) {
    let topic = if e.side == Side::Left { left } else { right };
    let value = e.value.as_deref().map(json);
    d.push(
        topic,
        e.key.as_deref().map(str::as_bytes),
        value.as_deref(),
        Some(e.time),
    );
}

/// Runs a guide table's `row` (its record, if it has one, as a batch of
/// its own) and returns what the join emitted for it.
pub fn row(d: &mut Driver, topics: (&str, &str), row: &Row) -> Vec<Option<Pair>> {
    let sent = d.outputs("out").len();
    let (side, cell) = match (row.left, row.right) {
        (Cell::Empty, cell) => (Side::Right, cell),
        (cell, _) => (Side::Left, cell),
    };
    if cell != Cell::Empty {
        let value = match cell {
            Cell::Value(v) => Some(v.to_owned()),
            _ => None,
        };
        let e = Event {
            side,
            key: Some(KEY.to_owned()),
            value,
            time: row.time,
        };
        push(d, topics, &e);
        d.process().unwrap();
    }
    seen(d, "out", sent)
        .into_iter()
        .map(|(_, pair, _)| pair)
        .collect()
}

/// A guide table's column of outputs, as [`row`] returns them.
pub fn column(outs: &[Out]) -> Vec<Option<Pair>> {
    (outs.iter())
        .map(|out| match *out {
            Out::Pair(l, r) => Some((l.map(str::to_owned), r.map(str::to_owned))),
            Out::Tombstone => None,
        })
        .collect()
}

/// A join type as `join = "…"` writes it.
pub fn name(kind: Kind) -> &'static str {
    match kind {
        Kind::Inner => "inner",
        Kind::Left => "left",
        Kind::Outer => "outer",
    }
}

/// `tests/plugins/<name>`, built once per test run.
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    built
        .entry(name.to_owned())
        .or_insert_with(|| {
            let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
            let options = BuildOptions {
                quiet: true,
                ..BuildOptions::default()
            };
            toolchain::build(&repo.join("tests/plugins").join(name), &options)
                .unwrap_or_else(|e| panic!("building tests/plugins/{name}: {e}"))
        })
        .clone()
}

/// `tests/plugins/<name>`, loaded.
pub fn load(name: &str) -> Plugin {
    Plugin::load(&crate::plugin::engine(), name, &component(name)).unwrap()
}
