//! Windowed aggregations: each key's records are folded per time window,
//! with a grace period for late records. The window types live in
//! `crate::window`; this module runs them over the task's store.
//!
//! - Tumbling and hopping windows (here): a record updates every window
//!   that contains its event time `t` and is still open: `st < end + grace`,
//!   with `st` the task's stream time once the record is seen.
//! - Sliding windows ([`super::sliding_window`]) and session windows
//!   ([`super::session_window`]) are defined by the records themselves.
//!
//! A record with no open window is *late*: dropped, counted, and with
//! `late = "dlq"` dead-lettered (kind `late`).
//!
//! The aggregator plugin (or the count) is called once per *layer*: each
//! key of the call batch appears in a layer at most once, with its own
//! window, so a call reads and writes one aggregate per key
//! ([`CallWindows`]).
//!
//! Store layout (one key-value store per step):
//! - `0x00 ‖ window key` (key, start, end; `state::key_layout`, the session
//!   layout for sessions) → the window's aggregate;
//! - `0x01 ‖ close time ‖ window key` → nothing: the close index. After
//!   each batch the windows whose close time the stream time has reached
//!   are read from it in one range scan, emitted once (`on-window-close`),
//!   and deleted with their aggregates: no record may change them any more.
//! - `0x02 ‖ key ‖ time ‖ source position` → a record (sliding windows:
//!   the records a new window is built from);
//! - `0x03 ‖ expiry time ‖ stored key` → nothing: entries to delete once
//!   the stream time reaches the expiry time.
//!
//! Output records are keyed `key@start/end` (decimal milliseconds, end
//! exclusive) and carry `sluice.window.start` and `sluice.window.end`
//! headers. With `on-update` every change is emitted with its input's
//! time; with `on-window-close` each window's final aggregate is emitted
//! once, with the time `end - 1`.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_frame::Writer;

use super::dead_letter::Kind;
use super::sliding_window::key_layers;
use super::{BatchContext, StepOut, Task};
use crate::error::RunError;
use crate::plugin::frame;
use crate::record::RecordRef;
use crate::state::StoreBuffer;
use crate::state::key_layout::{self, time_bytes};
use crate::topology::{EmitMode, LatePolicy, NodeId, Operation, Windowing};
use crate::window::hopping::Hopping;
use crate::window::{Window, Windows};

pub(super) const AGGREGATE: u8 = 0;
const CLOSE: u8 = 1;
pub(super) const RECORD: u8 = 2;
const EXPIRY: u8 = 3;

/// How a store's window keys are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// Key, start, end: fixed and sliding windows.
    Window,
    /// Key, end, start: sessions, so that the sessions a record may join
    /// are one scan.
    Session,
}

/// The store key of `key`'s aggregate in window `w`.
pub(super) fn aggregate_key(layout: Layout, key: &[u8], w: Window) -> Vec<u8> {
    let mut out = vec![AGGREGATE];
    out.extend_from_slice(&match layout {
        Layout::Window => key_layout::window_key(key, w.start, w.end),
        Layout::Session => key_layout::session_key(key, w.start, w.end),
    });
    out
}

/// The close-index key of `key`'s window `w`, closing at `close_at`.
fn close_key(key: &[u8], w: Window, close_at: i64) -> Vec<u8> {
    let mut out = vec![CLOSE];
    out.extend_from_slice(&time_bytes(close_at));
    out.extend_from_slice(&key_layout::window_key(key, w.start, w.end));
    out
}

/// Schedules `stored` for deletion once the stream time reaches `at`.
pub(super) fn expire(buffer: &mut StoreBuffer, stored: &[u8], at: i64) {
    let mut out = Vec::with_capacity(9 + stored.len());
    out.push(EXPIRY);
    out.extend_from_slice(&time_bytes(at));
    out.extend_from_slice(stored);
    buffer.put(&out, b"");
}

/// The output key of `key`'s window `w`: `key@start/end`.
pub fn output_key(key: &[u8], w: Window) -> Vec<u8> {
    let mut out = key.to_vec();
    out.extend_from_slice(format!("@{}/{}", w.start, w.end).as_bytes());
    out
}

/// A window an aggregation call reads and writes, for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OpenWindow {
    /// The window.
    pub window: Window,
    /// The store's key layout.
    pub layout: Layout,
    /// The stream time at which it closes.
    pub close_at: i64,
}

impl OpenWindow {
    /// A time window (fixed or sliding), closing at its end plus `grace`.
    pub fn timed(window: Window, grace: i64) -> OpenWindow {
        OpenWindow {
            window,
            layout: Layout::Window,
            close_at: window.end.saturating_add(grace),
        }
    }

    /// Where `key`'s aggregate in this window lives.
    pub fn store_key(&self, key: &[u8]) -> Vec<u8> {
        aggregate_key(self.layout, key, self.window)
    }

    /// Puts the window into the close index (idempotent). Called where an
    /// aggregate is read and found missing, and when one is created.
    pub fn note_new(&self, buffer: &mut StoreBuffer, key: &[u8]) {
        buffer.put(&close_key(key, self.window, self.close_at), b"");
    }

    /// Deletes `key`'s aggregate in this window and its close-index entry.
    pub fn delete(&self, buffer: &mut StoreBuffer, key: &[u8]) {
        buffer.delete(&self.store_key(key));
        buffer.delete(&close_key(key, self.window, self.close_at));
    }
}

/// The windows of one aggregation call: each key's own.
pub(super) type CallWindows = HashMap<Vec<u8>, OpenWindow>;

/// One output of a windowed aggregation.
pub(super) struct Emitted {
    pub origin: usize,
    pub key: Vec<u8>,
    pub window: Window,
    /// `None`: the window is gone (a session merged into another).
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
}

/// Records to add to one key's window.
pub(super) struct WindowAdd<'r> {
    pub open: OpenWindow,
    pub records: Vec<(usize, RecordRef<'r>)>,
}

impl Task {
    /// Runs a windowed aggregation step.
    pub(super) fn run_windowed(
        &mut self,
        step: usize,
        inputs: Vec<(usize, RecordRef<'_>)>,
        ctx: &mut BatchContext<'_>,
    ) -> Result<StepOut, RunError> {
        let topology = Arc::clone(&self.topology);
        let Operation::Aggregate {
            window: Some(spec), ..
        } = &topology.steps[step].op
        else {
            unreachable!("run_windowed runs windowed aggregations");
        };
        let inputs = self.aggregation_inputs(step, inputs, ctx)?;
        // Updates only under `on-update`; closed windows are added below.
        let (mut emitted, layout) = match spec.windows {
            Windows::Hopping(h) => (
                self.run_hopping(step, spec, h, inputs, ctx)?,
                Layout::Window,
            ),
            Windows::Sliding(s) => (
                self.run_sliding(step, spec, s, inputs, ctx)?,
                Layout::Window,
            ),
            Windows::Session(s) => (
                self.run_sessions(step, spec, s, inputs, ctx)?,
                Layout::Session,
            ),
        };
        if let Some(last) = ctx.batch.len().checked_sub(1) {
            self.close_windows(step, layout, spec.emit, last, &mut emitted)?;
        }
        self.emit_windowed(step, &emitted, ctx)
    }

    /// Tumbling and hopping windows.
    fn run_hopping<'r>(
        &mut self,
        step: usize,
        spec: &Windowing,
        windows: Hopping,
        inputs: Vec<(usize, RecordRef<'r>)>,
        ctx: &mut BatchContext<'_>,
    ) -> Result<Vec<Emitted>, RunError> {
        let mut adds: Vec<WindowAdd<'r>> = Vec::new();
        let mut index: HashMap<(&'r [u8], Window), usize> = HashMap::new();
        for (origin, record) in inputs {
            let (t, st) = (ctx.times[origin], ctx.stream_at[origin]);
            let key = record.key.expect("null keys were filtered out");
            let mut any = false;
            let mut closed = 0;
            for w in windows.windows_for(t) {
                if !w.accepts_at(st, spec.grace) {
                    closed += 1;
                } else {
                    let at = *index.entry((key, w)).or_insert_with(|| {
                        adds.push(WindowAdd {
                            open: OpenWindow::timed(w, spec.grace),
                            records: Vec::new(),
                        });
                        adds.len() - 1
                    });
                    adds[at].records.push((origin, record));
                    any = true;
                }
            }
            if !any {
                self.late(step, spec, (origin, record), closed, ctx)?;
            } else if closed > 0 {
                ctx.counts.partly_late += 1;
                ctx.counts.late_windows += closed;
            }
        }
        self.add_in_layers(step, adds, spec.emit == EmitMode::OnUpdate, ctx)
    }

    /// Drops a record that no open window takes, from its `windows`
    /// closed ones: counted, and with `late = "dlq"` dead-lettered.
    pub(super) fn late(
        &mut self,
        step: usize,
        spec: &Windowing,
        (origin, record): (usize, RecordRef<'_>),
        windows: u64,
        ctx: &mut BatchContext<'_>,
    ) -> Result<(), RunError> {
        ctx.counts.late += 1;
        ctx.counts.late_windows += windows.max(1);
        if spec.late == LatePolicy::Dlq {
            let message = format!(
                "event time {} is in no open window: stream time {}, grace {} ms",
                ctx.times[origin], ctx.stream_at[origin], spec.grace
            );
            self.dead(
                NodeId::Step(step),
                Kind::Late,
                "late",
                &message,
                (origin, record),
                ctx,
            )?;
        }
        Ok(())
    }

    /// Adds records to windows: one aggregation call per layer, where each
    /// key has one window. With `updates` (`on-update`), returns the
    /// aggregate after each record; else nothing.
    pub(super) fn add_in_layers(
        &mut self,
        step: usize,
        adds: Vec<WindowAdd<'_>>,
        updates: bool,
        ctx: &mut BatchContext<'_>,
    ) -> Result<Vec<Emitted>, RunError> {
        let adds: Vec<WindowAdd<'_>> = adds.into_iter().filter(|a| !a.records.is_empty()).collect();
        fn key_of<'a>(a: &WindowAdd<'a>) -> &'a [u8] {
            a.records[0].1.key.expect("null keys were filtered out")
        }
        let mut layers: Vec<(CallWindows, Vec<(usize, RecordRef<'_>)>)> = Vec::new();
        for layer in key_layers(adds.iter().map(key_of)) {
            let mut windows = CallWindows::with_capacity(layer.len());
            let mut group = Vec::new();
            for j in layer {
                windows.insert(key_of(&adds[j]).to_vec(), adds[j].open);
                group.extend_from_slice(&adds[j].records);
            }
            layers.push((windows, group));
        }
        let count = self.is_count(step);
        let mut emitted = Vec::new();
        for (windows, group) in layers {
            let windows = Arc::new(windows);
            self.window = Some(Arc::clone(&windows));
            let out = if count {
                self.count(step, &group)
            } else {
                self.run_step(step, &group, ctx)
            };
            self.window = None;
            let out = out?;
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

    /// Builds the step's output records from what it emitted.
    fn emit_windowed(
        &mut self,
        step: usize,
        emitted: &[Emitted],
        ctx: &BatchContext<'_>,
    ) -> Result<StepOut, RunError> {
        let refs: Vec<(usize, RecordRef<'_>)> = emitted
            .iter()
            .map(|e| (e.origin, ctx.batch[e.origin].record.as_ref()))
            .collect();
        let mut w = Writer::output(Vec::new(), emitted.len() as u32);
        for e in emitted {
            let (start, end) = (e.window.start.to_string(), e.window.end.to_string());
            w.begin_ok();
            w.record(
                Some(&output_key(&e.key, e.window)),
                e.value.as_deref(),
                e.timestamp,
                [
                    ("sluice.window.start", Some(start.as_bytes())),
                    ("sluice.window.end", Some(end.as_bytes())),
                ],
            );
        }
        let records: Vec<RecordRef<'_>> = refs.iter().map(|(_, r)| *r).collect();
        let decoded =
            frame::decode(w.finish(), &records).map_err(|message| RunError::Protocol {
                step: self.topology.steps[step].name.clone(),
                message,
            })?;
        let mut out = StepOut::default();
        out.absorb(decoded, &refs);
        Ok(out)
    }

    /// Emits (`on-window-close`) and purges every window whose close time
    /// the stream time has reached, and deletes expired entries.
    fn close_windows(
        &mut self,
        step: usize,
        layout: Layout,
        emit: EmitMode,
        origin: usize,
        emitted: &mut Vec<Emitted>,
    ) -> Result<(), RunError> {
        let Some(stream_time) = self.stream_time.get() else {
            return Ok(());
        };
        let buffer = self.step_buffer(step);
        let upto = |tag: u8| {
            let mut upto = vec![tag];
            upto.extend_from_slice(&time_bytes(stream_time.saturating_add(1)));
            upto
        };
        for (close, _) in buffer.range(Some(&[CLOSE]), Some(&upto(CLOSE)))? {
            let Some((key, start, end)) = key_layout::decode_window_key(&close[9..]) else {
                continue;
            };
            let w = Window { start, end };
            let aggregate = aggregate_key(layout, key, w);
            if emit == EmitMode::OnWindowClose
                && let Some(value) = buffer.get(&aggregate)?
            {
                emitted.push(Emitted {
                    origin,
                    key: key.to_vec(),
                    window: w,
                    value: Some(value),
                    timestamp: Some(end - 1),
                });
            }
            buffer.delete(&aggregate);
            buffer.delete(&close);
        }
        for (expiry, _) in buffer.range(Some(&[EXPIRY]), Some(&upto(EXPIRY)))? {
            buffer.delete(&expiry[9..]);
            buffer.delete(&expiry);
        }
        Ok(())
    }

    /// Closes every open window of the task now: the stream time moves to
    /// the latest close time in the close indexes, as if records had
    /// brought it there. Returns whether it moved.
    pub(super) fn close_all_windows(&mut self) -> Result<bool, RunError> {
        let Some(stores) = self.stores.as_mut() else {
            return Ok(false);
        };
        let mut latest: Option<i64> = None;
        for (step, def) in self.topology.steps.iter().enumerate() {
            let Operation::Aggregate {
                window: Some(_), ..
            } = def.op
            else {
                continue;
            };
            let store = self.steps[step].store.expect("an aggregation has a store");
            let buffer = stores.buffer(store);
            // A scan of every open window; it runs once per idle period.
            if let Some((last, _)) = buffer.range(Some(&[CLOSE]), Some(&[CLOSE + 1]))?.pop() {
                let at = key_layout::time_from_bytes(
                    last[1..9].try_into().expect("close keys hold a time"),
                );
                latest = Some(latest.map_or(at, |l| l.max(at)));
            }
        }
        Ok(match latest {
            Some(t) if self.stream_time.get().is_none_or(|st| st < t) => {
                self.stream_time.observe(t);
                true
            }
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_windows_apart_and_the_close_index_sorts_by_close_time() {
        let (a, b) = (Window { start: 0, end: 10 }, Window { start: 5, end: 15 });
        let w = |w| aggregate_key(Layout::Window, b"k", w);
        assert_ne!(w(a), w(b));
        assert_ne!(
            aggregate_key(Layout::Session, b"k", b),
            w(b),
            "sessions sort by end"
        );
        assert!(
            close_key(b"zz", a, 0) < close_key(b"aa", b, 5),
            "by close time first"
        );
        assert_eq!(output_key(b"page", b), b"page@5/15");
    }
}
