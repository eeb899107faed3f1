//! The record cache (`[processing] cache.max.bytes`, Kafka Streams'
//! `statestore.cache.max.bytes`): the updates an aggregation emits are
//! coalesced per output key (a key, or a key and its window) until the
//! next commit, so a key updated a thousand times in a commit interval
//! goes downstream once, with its latest value.
//!
//! - Which steps: aggregations that emit `on-update` (keyed, or windowed of
//!   any type), unless their results reach a repartition topic: a record
//!   there is told apart downstream by where it was made upstream, and a
//!   cache would send older places after newer ones.
//! - When: every commit flushes it first ([`crate::task::Task::flush_caches`]),
//!   before the changelogs and markers, so a marked input's outputs were
//!   sent; the flushed records run through the rest of the sub-topology as
//!   a batch of their own, each with the input record that last updated it
//!   as its origin (for dead letters).
//! - When full: a key already cached is still coalesced; a key that is not
//!   goes downstream at once, uncached (Kafka Streams evicts the least
//!   recently used key instead). A key is either cached or not, so its
//!   updates never overtake each other.
//! - A batch that fails leaves the cache as it was before it.

use std::sync::Arc;

use crate::error::RunError;
use crate::operator::FastMap;
use crate::operator::batch::StepOut;
use crate::plugin::frame;
use crate::record::{InputRecord, Record, RecordRef, TimestampKind};
use crate::topology::{EmitMode, NodeId, Operation, Topology};

/// What an entry costs besides its bytes (map slot, origin, vectors).
const ENTRY_OVERHEAD: usize = 96;

/// Whether step `i` of `topology` gets a record cache (when it is on).
pub fn cacheable(topology: &Topology, i: usize) -> bool {
    let on_update = match &topology.steps[i].op {
        Operation::Aggregate { window, .. } => {
            window.as_ref().is_none_or(|w| w.emit == EmitMode::OnUpdate)
        }
        _ => false,
    };
    on_update && !reaches_repartition(topology, NodeId::Step(i))
}

/// Whether `node`'s records reach a repartition topic, through any steps.
fn reaches_repartition(topology: &Topology, node: NodeId) -> bool {
    (topology.sinks.iter()).any(|s| s.repartition && s.inputs.contains(&node))
        || (topology.consumers_of(node)).any(|j| reaches_repartition(topology, NodeId::Step(j)))
}

/// A cached record, encoded in one buffer (a one-record input frame):
/// one allocation where an owned record takes one per field and header.
pub struct Held(Vec<u8>);

impl Held {
    fn new(record: RecordRef<'_>, size: usize) -> Held {
        let frame = frame::encode(Vec::with_capacity(5 + size), std::iter::once(record));
        debug_assert_eq!(frame.len(), 5 + size, "encoded_size is exact");
        Held(frame)
    }

    /// The record.
    pub fn record(&self) -> RecordRef<'_> {
        let r = (sluice_frame::Reader::input(&self.0))
            .and_then(|(mut reader, _)| reader.record())
            .expect("encoded by Held::new");
        RecordRef::framed(r, r.timestamp)
    }
}

/// The bytes `record` takes encoded: time and flags, then each field's
/// length and bytes.
fn encoded_size(record: RecordRef<'_>) -> usize {
    let field = |b: Option<&[u8]>| 4 + b.map_or(0, <[u8]>::len);
    8 + 1
        + field(record.key)
        + field(record.value)
        + 4
        + (record.headers.iter())
            .map(|(n, v)| field(Some(n.as_bytes())) + field(v))
            .sum::<usize>()
}

/// One cached output: the latest record for its key, and the input record
/// that last updated it (its place and time; no payload).
struct Entry {
    origin: InputRecord,
    record: Held,
    /// Arrival order, so a flush keeps the order of one origin's outputs
    /// (unique: a stable order).
    seq: u64,
    bytes: usize,
}

/// One change of a batch to the cache.
enum Undo {
    /// An entry took the place of this one (of the same key, which its
    /// record holds: nothing is copied for the common case).
    Replaced(Entry),
    /// A key that was not held.
    Added(Vec<u8>),
}

/// A step's record cache in one task.
pub struct RecordCache {
    max_bytes: usize,
    bytes: usize,
    entries: FastMap<Vec<u8>, Entry>,
    /// What the current batch replaced, to put back if it fails.
    undo: Vec<Undo>,
    seq: u64,
}

impl RecordCache {
    /// An empty cache of at most `max_bytes`.
    pub fn new(max_bytes: usize) -> RecordCache {
        RecordCache {
            max_bytes,
            bytes: 0,
            entries: FastMap::default(),
            undo: Vec::new(),
            seq: 0,
        }
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes a step's output for a batch: what it can cache is kept, the
    /// rest (keyless records, new keys past the size bound) is returned to
    /// go downstream now.
    pub fn absorb(
        &mut self,
        step: &str,
        out: StepOut,
        batch: &[InputRecord],
        times: &[i64],
    ) -> Result<StepOut, RunError> {
        let mut now: Vec<(usize, RecordRef<'_>, RecordRef<'_>)> = Vec::new();
        for &(origin, f, k) in &out.items {
            let record = out.frames[f as usize].record(k as usize);
            let Some(key) = record.key else {
                now.push((origin, batch[origin].record.as_ref(), record));
                continue;
            };
            let size = encoded_size(record);
            let bytes = ENTRY_OVERHEAD + size;
            let input = &batch[origin];
            let held = self.entries.get_mut(key);
            if held.is_none() && self.bytes + bytes > self.max_bytes {
                now.push((origin, input.record.as_ref(), record));
                continue;
            }
            let entry = Entry {
                origin: InputRecord {
                    topic: Arc::clone(&input.topic),
                    partition: input.partition,
                    offset: input.offset,
                    timestamp_kind: TimestampKind::CreateTime,
                    record: Record {
                        timestamp: Some(times[origin]),
                        ..Record::default()
                    },
                    origin: input.origin.clone(),
                },
                record: Held::new(record, size),
                seq: self.seq,
                bytes,
            };
            self.bytes += bytes;
            // One lookup for a key already held, the common case.
            let undo = match held {
                Some(slot) => {
                    self.bytes -= slot.bytes;
                    Undo::Replaced(std::mem::replace(slot, entry))
                }
                None => {
                    self.entries.insert(key.to_vec(), entry);
                    Undo::Added(key.to_vec())
                }
            };
            self.seq += 1;
            self.undo.push(undo);
        }
        StepOut::of_records(step, &now)
    }

    /// The batch succeeded: what it cached stays.
    pub fn accept(&mut self) {
        self.undo.clear();
    }

    /// The batch failed: the cache is put back as it was before it.
    pub fn discard(&mut self) {
        while let Some(undo) = self.undo.pop() {
            let (key, old) = match undo {
                Undo::Replaced(old) => {
                    let key = (old.record.record().key)
                        .expect("only keyed records are cached")
                        .to_vec();
                    (key, Some(old))
                }
                Undo::Added(key) => (key, None),
            };
            if let Some(e) = self.entries.remove(&key) {
                self.bytes -= e.bytes;
            }
            if let Some(old) = old {
                self.bytes += old.bytes;
                self.entries.insert(key, old);
            }
        }
    }

    /// Empties the cache: each entry's origin and record, in the order
    /// they arrived (the flush orders them by origin, stably).
    pub fn take(&mut self) -> Vec<(InputRecord, Held)> {
        self.undo.clear();
        self.bytes = 0;
        let mut all: Vec<Entry> = self.entries.drain().map(|(_, e)| e).collect();
        all.sort_unstable_by_key(|e| e.seq);
        all.into_iter().map(|e| (e.origin, e.record)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::testing::Driver;

    const COUNTS: &str = r#"
        application.id = "shop"
        [processing]
        cache.max.bytes = 1000000
        [sources.orders]
        [steps.counts]
        aggregate = "count"
        inputs = ["orders"]
        [sinks.out]
        inputs = ["counts"]
    "#;

    fn outputs(d: &Driver) -> Vec<(String, String)> {
        let text =
            |b: &Option<bytes::Bytes>| String::from_utf8_lossy(b.as_deref().unwrap()).into_owned();
        (d.outputs("out").iter())
            .map(|r| (text(&r.key), text(&r.value)))
            .collect()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn updates_of_a_key_are_coalesced_until_the_flush() {
        let mut d = Driver::from_toml(COUNTS).unwrap();
        for k in ["a", "b", "a", "a", "b", "c"] {
            d.push("orders", Some(k.as_bytes()), Some(b"x"), Some(1));
        }
        let c = d.process().unwrap();
        assert!(outputs(&d).is_empty(), "held until the flush");
        assert_eq!(c.records_out, 0);
        let c = d.flush_caches().unwrap();
        // In the order of the input that last updated each key.
        assert_eq!(
            outputs(&d),
            [pair("a", "3"), pair("b", "2"), pair("c", "1")]
        );
        assert_eq!(c.records_out, 3);
        assert_eq!(c.records_in, 0, "a flush reads no input");
        // A second flush has nothing to send.
        assert_eq!(d.flush_caches().unwrap().records_out, 0);
        assert_eq!(outputs(&d).len(), 3);
        d.push("orders", Some(b"a"), Some(b"x"), Some(2));
        d.process().unwrap();
        d.flush_caches().unwrap();
        assert_eq!(outputs(&d)[3], pair("a", "4"));
        assert_eq!(d.get("counts", b"a").unwrap(), Some(b"4".to_vec()));
    }

    #[test]
    fn a_full_cache_sends_new_keys_at_once_and_keeps_coalescing_the_cached_ones() {
        // Room for one entry: `a` is cached, `b` and `c` go at once.
        let a = Record::new(Some(b"a"), Some(b"1"), Some(1));
        let one = ENTRY_OVERHEAD + encoded_size(a.as_ref());
        let mut d = Driver::from_toml(&COUNTS.replace("1000000", &one.to_string())).unwrap();
        for k in ["a", "b", "a", "c", "b"] {
            d.push("orders", Some(k.as_bytes()), Some(b"x"), Some(1));
        }
        d.process().unwrap();
        assert_eq!(
            outputs(&d),
            [pair("b", "1"), pair("c", "1"), pair("b", "2")]
        );
        d.flush_caches().unwrap();
        assert_eq!(outputs(&d)[3..], [pair("a", "2")]);
    }

    #[test]
    fn windowed_updates_are_coalesced_per_key_and_window() {
        let text = COUNTS.replace(
            "inputs = [\"orders\"]\n        [sinks",
            "inputs = [\"orders\"]\n        window = { type = \"tumbling\", size = 10 }\n        [sinks",
        );
        let mut d = Driver::from_toml(&text).unwrap();
        for (k, t) in [("a", 1), ("a", 2), ("a", 11), ("b", 12), ("a", 13)] {
            d.push("orders", Some(k.as_bytes()), Some(b"x"), Some(t));
        }
        d.process().unwrap();
        d.flush_caches().unwrap();
        assert_eq!(
            outputs(&d),
            [
                pair("a@0/10", "2"),
                pair("b@10/20", "1"),
                pair("a@10/20", "2")
            ]
        );
    }

    #[test]
    fn a_bad_size_is_refused_naming_the_setting() {
        for bad in ["-1", "\"10MB\""] {
            let e = Driver::from_toml(&COUNTS.replace("1000000", bad)).unwrap_err();
            let e = e.to_string();
            assert!(
                e.contains("`cache.max.bytes` must be an integer from 0 (off)"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_failed_batch_leaves_the_cache_as_it_was() {
        let mut c = RecordCache::new(1 << 20);
        let batch: Vec<InputRecord> = (0..3)
            .map(|i| InputRecord {
                topic: Arc::from("t"),
                partition: 0,
                offset: i,
                timestamp_kind: TimestampKind::CreateTime,
                record: Record::new(Some(b"k"), Some(b"v"), Some(i)),
                origin: None,
            })
            .collect();
        let times = [0, 1, 2];
        let out = |i: usize, value: &[u8]| {
            let r = Record::new(Some(b"k"), Some(value), Some(i as i64));
            StepOut::of_records("s", &[(i, batch[i].record.as_ref(), r.as_ref())]).unwrap()
        };
        c.absorb("s", out(0, b"1"), &batch, &times).unwrap();
        c.accept();
        let before = c.bytes;
        c.absorb("s", out(1, b"22"), &batch, &times).unwrap();
        c.absorb("s", out(2, b"333"), &batch, &times).unwrap();
        c.discard();
        assert_eq!(c.bytes, before);
        let taken = c.take();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].1.record().value, Some(&b"1"[..]));
        assert_eq!(taken[0].0.offset, 0);
        assert!(c.is_empty() && c.bytes == 0);
    }

    #[test]
    fn only_on_update_aggregations_whose_results_stay_off_repartition_topics_are_cached() {
        let path = std::path::Path::new("pipeline.toml");
        let text = r#"
            application.id = "shop"
            [sources.orders]
            [steps.counts]
            aggregate = "count"
            inputs = ["orders"]
            [steps.per-minute]
            aggregate = "count"
            inputs = ["orders"]
            window = { type = "tumbling", size = "1m" }
            emit = "on-window-close"
            [steps.rekey]
            plugin = "x.wasm"
            inputs = ["counts"]
            [steps.regrouped]
            repartition = true
            inputs = ["rekey"]
            [steps.recount]
            aggregate = "count"
            inputs = ["regrouped"]
            [sinks.out]
            inputs = ["recount", "per-minute"]
            "#;
        let file = crate::topology::pipeline_file::PipelineFile::parse(path, text).unwrap();
        let t = Topology::from_file(path, file).unwrap();
        let by_name = |n: &str| t.steps.iter().position(|s| s.name == n).unwrap();
        assert!(
            !cacheable(&t, by_name("counts")),
            "reaches the repartition topic"
        );
        assert!(!cacheable(&t, by_name("per-minute")), "on-window-close");
        assert!(!cacheable(&t, by_name("rekey")), "not an aggregation");
        assert!(cacheable(&t, by_name("recount")));
    }
}
