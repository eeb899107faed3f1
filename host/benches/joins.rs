//! Joins and repartitioning, in records per second on one core, each
//! against a native Rust closure doing the same work in the same run.
//!
//! - **stream–table**: clicks (JSON objects) joined with a table of users
//!   by key, `joiner = "merge"`, in-memory stores; the baseline looks the
//!   user up in a `HashMap` and merges the two objects with serde_json.
//! - **stream–stream**: two streams over 1,000 keys, times moving
//!   forward, a 1 s window, inner join with `merge`; the baseline keeps
//!   each side's recent records per key in `VecDeque`s and merges each
//!   pair with serde_json.
//! - **repartition hop**: `count` per key of a stream, with and without a
//!   `repartition = true` step before it, in one process (the task test
//!   driver plays the topic: the hop's cost here is the origin header,
//!   the copy and the second task, not a broker's round trip).
//!
//! The host's own path only: no Wasm (the joiners are built-ins), no
//! broker. Run: `cargo bench -p sluice --bench joins`. Under `cargo test`
//! (no `--bench` argument) it runs once on a few thousand records.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use serde_json::{Map, Value};
use sluice::task::testing::Driver;

const BATCH: usize = 500;

/// A small JSON object of record `i`, its fields named for `tag`.
fn object(tag: &str, i: usize) -> Vec<u8> {
    format!(
        r#"{{"{tag}":{i},"{tag}-name":"n{i}","{tag}-at":{}}}"#,
        i * 7
    )
    .into_bytes()
}

/// The `merge` joiner's work, natively: right's fields over left's.
fn merge(left: &[u8], right: &[u8]) -> Vec<u8> {
    let mut l: Map<String, Value> = serde_json::from_slice(left).unwrap();
    let r: Map<String, Value> = serde_json::from_slice(right).unwrap();
    l.extend(r);
    serde_json::to_vec(&l).unwrap()
}

/// Records per second of `n` records done by `f`.
fn rate(n: usize, f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    n as f64 / start.elapsed().as_secs_f64()
}

fn report(name: &str, sluice: f64, native: f64) {
    println!(
        "{name:<28} sluice {:>10.0} records/s   native {:>10.0} records/s   ratio {:.2}",
        sluice,
        native,
        sluice / native
    );
}

fn stream_table(users: usize, clicks: usize) {
    let mut d = Driver::from_toml(
        r#"
        application.id = "bench"
        [sources.clicks]
        [sources.users]
        table = true
        [steps.joined]
        join = "left"
        joiner = "merge"
        inputs = ["clicks", "users"]
        [sinks.out]
        inputs = ["joined"]
        "#,
    )
    .unwrap();
    let key = |i: usize| format!("u{}", i % users);
    for i in 0..users {
        d.push(
            "users",
            Some(key(i).as_bytes()),
            Some(&object("user", i)),
            Some(1),
        );
    }
    d.process().unwrap();
    let values: Vec<Vec<u8>> = (0..clicks).map(|i| object("click", i)).collect();
    let sluice = rate(clicks, || {
        for chunk in (0..clicks).collect::<Vec<_>>().chunks(BATCH) {
            for &i in chunk {
                d.push(
                    "clicks",
                    Some(key(i * 31).as_bytes()),
                    Some(&values[i]),
                    Some(2),
                );
            }
            d.process().unwrap();
            d.take_sent();
        }
    });
    let table: HashMap<String, Vec<u8>> = (0..users).map(|i| (key(i), object("user", i))).collect();
    let mut out = Vec::with_capacity(BATCH);
    let native = rate(clicks, || {
        for (i, v) in values.iter().enumerate() {
            let joined = match table.get(&key(i * 31)) {
                Some(user) => merge(v, user),
                None => v.clone(),
            };
            out.push(joined);
            if out.len() == BATCH {
                out.clear();
            }
        }
    });
    report("stream-table join (merge)", sluice, native);
}

/// A side's recent records per key: (time, value).
type Kept = HashMap<String, VecDeque<(i64, Vec<u8>)>>;

fn stream_stream(records: usize) {
    let mut d = Driver::from_toml(
        r#"
        application.id = "bench"
        [sources.left]
        [sources.right]
        [steps.joined]
        join = "inner"
        joiner = "merge"
        join-window = { difference = 1000 }
        inputs = ["left", "right"]
        [sinks.out]
        inputs = ["joined"]
        "#,
    )
    .unwrap();
    let side = |i: usize| if i % 2 == 0 { "left" } else { "right" };
    let key = |i: usize| format!("k{}", (i / 2) % 1_000);
    let time = |i: usize| 10 * i as i64;
    let values: Vec<Vec<u8>> = (0..records).map(|i| object(side(i), i)).collect();
    let sluice = rate(records, || {
        for chunk in (0..records).collect::<Vec<_>>().chunks(BATCH) {
            for &i in chunk {
                d.push(
                    side(i),
                    Some(key(i).as_bytes()),
                    Some(&values[i]),
                    Some(time(i)),
                );
            }
            d.process().unwrap();
            d.take_sent();
        }
    });
    let mut kept: [Kept; 2] = [HashMap::new(), HashMap::new()];
    let mut joined = 0usize;
    let native = rate(records, || {
        for (i, v) in values.iter().enumerate() {
            let (mine, other) = if i % 2 == 0 { (0, 1) } else { (1, 0) };
            let (k, t) = (key(i), time(i));
            for (ot, ov) in kept[other].get(&k).into_iter().flatten() {
                if (t - ot).abs() <= 1000 {
                    let pair = if mine == 0 {
                        merge(v, ov)
                    } else {
                        merge(ov, v)
                    };
                    joined += pair.len();
                }
            }
            let q = kept[mine].entry(k).or_default();
            q.push_back((t, v.clone()));
            while q.front().is_some_and(|(ot, _)| t - ot > 1000) {
                q.pop_front();
            }
        }
    });
    assert!(joined > 0);
    report("stream-stream join (merge)", sluice, native);
}

fn repartition_hop(records: usize) {
    let count = |hop: bool| {
        let (input, extra) = match hop {
            true => (
                "by-key",
                "[steps.by-key]\nrepartition = true\ninputs = [\"events\"]\n",
            ),
            false => ("events", ""),
        };
        let text = format!(
            "application.id = \"bench\"\n[sources.events]\n{extra}[steps.counts]\naggregate = \"count\"\ninputs = [\"{input}\"]\n[sinks.out]\ninputs = [\"counts\"]\n"
        );
        let mut d = Driver::from_toml(&text).unwrap();
        rate(records, || {
            for chunk in (0..records).collect::<Vec<_>>().chunks(BATCH) {
                for &i in chunk {
                    d.push(
                        "events",
                        Some(format!("k{}", i % 1_000).as_bytes()),
                        Some(b"{}"),
                        Some(1),
                    );
                }
                d.process().unwrap();
                d.take_sent();
            }
        })
    };
    let (without, with) = (count(false), count(true));
    report("count with a repartition hop", with, without);
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let scale = if bench { 100 } else { 1 };
    stream_table(2_000, 2_000 * scale);
    stream_stream(2_000 * scale);
    repartition_hop(2_000 * scale);
}
