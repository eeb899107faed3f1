//! Adding records to windows, one aggregator call per *layer*: each key of
//! the call batch appears in a layer at most once, with its own window, so
//! a call reads and writes one aggregate per key ([`CallWindows`]). And
//! what the window types share: late records, and grouping by key.

use crate::error::RunError;
use crate::operator::aggregate::KeyedAggregate;
use crate::operator::dead_letter::Kind;
use crate::operator::window::store::{CallWindows, OpenWindow};
use crate::operator::{FastMap, StepCtx};
use crate::record::RecordRef;
use crate::topology::{LatePolicy, NodeId, Windowing};
use crate::window::Window;

/// One output of a windowed aggregation.
pub struct Emitted {
    pub origin: usize,
    pub key: Vec<u8>,
    pub window: Window,
    /// `None`: the window is gone (a session merged into another).
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
}

/// Records to add to one key's window.
pub struct WindowAdd<'r> {
    pub open: OpenWindow,
    pub records: Vec<(usize, RecordRef<'r>)>,
}

/// Drops a record that no open window takes, from its `windows` closed
/// ones: counted, and with `late = "dlq"` dead-lettered.
pub fn late(
    agg: &KeyedAggregate,
    spec: &Windowing,
    (origin, record): (usize, RecordRef<'_>),
    windows: u64,
    cx: &mut StepCtx<'_, '_>,
) -> Result<(), RunError> {
    let ctx = &mut *cx.batch;
    ctx.counts.late += 1;
    ctx.counts.late_windows += windows.max(1);
    if spec.late == LatePolicy::Dlq {
        let message = format!(
            "event time {} is in no open window: stream time {}, grace {} ms",
            ctx.times[origin], ctx.stream_at[origin], spec.grace
        );
        let (node, digest) = (
            NodeId::Step(agg.step()),
            crate::operator::Operator::digest(agg),
        );
        cx.dead(node, digest, Kind::Late, "late", &message, (origin, record))?;
    }
    Ok(())
}

/// Adds records to windows: one aggregation call per layer, where each key
/// has one window. With `updates` (`on-update`), returns the aggregate
/// after each record; else nothing.
pub fn add_in_layers(
    agg: &mut KeyedAggregate,
    adds: Vec<WindowAdd<'_>>,
    updates: bool,
    cx: &mut StepCtx<'_, '_>,
) -> Result<Vec<Emitted>, RunError> {
    let adds: Vec<WindowAdd<'_>> = adds.into_iter().filter(|a| !a.records.is_empty()).collect();
    fn key_of<'a>(a: &WindowAdd<'a>) -> &'a [u8] {
        a.records[0].1.key.expect("null keys were filtered out")
    }
    let mut layers: Vec<(CallWindows, Vec<(usize, RecordRef<'_>)>)> = Vec::new();
    for layer in key_layers(adds.iter().map(key_of)) {
        let mut windows = CallWindows::with_capacity_and_hasher(layer.len(), Default::default());
        let mut group = Vec::new();
        for j in layer {
            windows.insert(key_of(&adds[j]).to_vec(), adds[j].open);
            group.extend_from_slice(&adds[j].records);
        }
        layers.push((windows, group));
    }
    let mut emitted = Vec::new();
    for (windows, group) in layers {
        let out = agg.add(&group, Some(&windows), cx)?;
        if !updates {
            continue;
        }
        for (origin, r) in out.records() {
            let key = r.key.expect("an aggregate keeps its key");
            emitted.push(Emitted {
                origin,
                key: key.to_vec(),
                window: windows[key].window,
                value: r.value.map(<[u8]>::to_vec),
                timestamp: r.timestamp,
            });
        }
    }
    Ok(emitted)
}

/// Groups items by key into layers where each key appears at most once,
/// keeping each key's items in order: positions of the items per layer.
pub fn key_layers<'k>(keys: impl Iterator<Item = &'k [u8]>) -> Vec<Vec<usize>> {
    let mut depth: FastMap<&[u8], usize> = FastMap::default();
    let mut layers: Vec<Vec<usize>> = Vec::new();
    for (i, key) in keys.enumerate() {
        let d = depth.entry(key).or_insert(0);
        if layers.len() == *d {
            layers.push(Vec::new());
        }
        layers[*d].push(i);
        *d += 1;
    }
    layers
}

/// Positions of each key's records in a step's inputs.
pub type ByKey<'r> = FastMap<&'r [u8], Vec<usize>>;

/// The distinct keys of `inputs` in order of first appearance, and the
/// positions of each key's records.
pub fn by_key<'r>(inputs: &[(usize, RecordRef<'r>)]) -> (Vec<&'r [u8]>, ByKey<'r>) {
    let mut keys = Vec::new();
    let mut of_key = ByKey::default();
    for (i, (_, r)) in inputs.iter().enumerate() {
        let k = r.key.expect("null keys were filtered out");
        of_key
            .entry(k)
            .or_insert_with(|| {
                keys.push(k);
                Vec::new()
            })
            .push(i);
    }
    (keys, of_key)
}
