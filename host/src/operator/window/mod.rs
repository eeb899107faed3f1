//! Windowed aggregations: each key's records are folded per time window,
//! with a grace period for late records. The window types live in
//! `crate::window`; this module runs them over the step's store.
//!
//! - Tumbling and hopping windows ([`hopping`]): a record updates every
//!   window that contains its event time `t` and is still open:
//!   `st < end + grace`, with `st` the task's stream time once the record
//!   is seen.
//! - Sliding windows ([`sliding`]) and session windows ([`session`]) are
//!   defined by the records themselves.
//!
//! A record with no open window is *late*: dropped, counted, and with
//! `late = "dlq"` dead-lettered (kind `late`).
//!
//! The aggregator plugin (or the count) is called once per *layer*: each
//! key of the call batch appears in a layer at most once, with its own
//! window, so a call reads and writes one aggregate per key
//! ([`layers`]).
//!
//! The store layout is in [`store`].
//!
//! Output records are keyed `key@start/end` (decimal milliseconds, end
//! exclusive) and carry `sluice.window.start` and `sluice.window.end`
//! headers. With `on-update` every change is emitted with its input's
//! time; with `on-window-close` each window's final aggregate is emitted
//! once, with the time `end - 1`.

pub mod hopping;
pub mod layers;
pub mod session;
pub mod sliding;
pub mod store;

use std::io::Write;

use sluice_frame::Writer;

use crate::error::RunError;
use crate::operator::aggregate::KeyedAggregate;
use crate::operator::batch::StepOut;
use crate::operator::{Operator, StepCtx};
use crate::plugin::Plugin;
use crate::plugin::frame;
use crate::record::RecordRef;
use crate::state::key_layout::{self, time_bytes};
use crate::state::task_state::TaskStores;
use crate::topology::{EmitMode, Windowing};
use crate::window::{Window, Windows};
use layers::Emitted;
use store::{CLOSE, EXPIRY, Layout, aggregate_key, write_output_key};

/// A windowed aggregation step: the aggregation, per window.
pub struct WindowedAggregate {
    agg: KeyedAggregate,
    spec: Windowing,
}

impl WindowedAggregate {
    /// `agg`, over the windows of `spec`.
    pub fn new(agg: KeyedAggregate, spec: Windowing) -> WindowedAggregate {
        WindowedAggregate { agg, spec }
    }

    /// Emits (`on-window-close`) and purges every window whose close time
    /// the stream time has reached, and deletes expired entries.
    fn close_windows(
        &self,
        layout: Layout,
        origin: usize,
        emitted: &mut Vec<Emitted>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<(), RunError> {
        let Some(stream_time) = cx.stream_time else {
            return Ok(());
        };
        let buffer = self.agg.buffer(&mut cx.stores);
        let upto = |tag: u8| {
            let mut upto = vec![tag];
            upto.extend_from_slice(&time_bytes(stream_time.saturating_add(1)));
            upto
        };
        // Both indexes are queues by time: each scan starts where the last
        // one ended (`StoreBuffer::floor`), past the deleted keys.
        let (close_upto, expiry_upto) = (upto(CLOSE), upto(EXPIRY));
        let from = buffer.floor(&[CLOSE]).to_vec();
        for (close, _) in buffer.range(Some(&from), Some(&close_upto))? {
            let Some((key, start, end)) = key_layout::decode_window_key(&close[9..]) else {
                continue;
            };
            let w = Window { start, end };
            let aggregate = aggregate_key(layout, key, w);
            if self.spec.emit == EmitMode::OnWindowClose
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
        buffer.raise_floor(&[CLOSE], &close_upto);
        let from = buffer.floor(&[EXPIRY]).to_vec();
        for (expiry, _) in buffer.range(Some(&from), Some(&expiry_upto))? {
            buffer.delete(&expiry[9..]);
            buffer.delete(&expiry);
        }
        buffer.raise_floor(&[EXPIRY], &expiry_upto);
        Ok(())
    }

    /// Builds the step's output records from what it emitted.
    fn emit(&self, emitted: &[Emitted], cx: &StepCtx<'_, '_>) -> Result<StepOut, RunError> {
        let refs: Vec<(usize, RecordRef<'_>)> = emitted
            .iter()
            .map(|e| (e.origin, cx.batch.batch[e.origin].record.as_ref()))
            .collect();
        let mut w = Writer::output(Vec::new(), emitted.len() as u32);
        // Reused for every record: no allocation per output.
        let (mut key, mut times) = (Vec::new(), Vec::new());
        for e in emitted {
            times.clear();
            write!(times, "{}", e.window.start).expect("writing to a vector");
            let split = times.len();
            write!(times, "{}", e.window.end).expect("writing to a vector");
            write_output_key(&mut key, &e.key, &times[..split], &times[split..]);
            w.begin_ok();
            w.record(
                Some(&key),
                e.value.as_deref(),
                e.timestamp,
                [
                    ("sluice.window.start", Some(&times[..split])),
                    ("sluice.window.end", Some(&times[split..])),
                ],
            );
        }
        let records: Vec<RecordRef<'_>> = refs.iter().map(|(_, r)| *r).collect();
        let decoded =
            frame::decode(w.finish(), &records).map_err(|message| RunError::Protocol {
                step: cx.topology.steps[self.agg.step()].name.clone(),
                message,
            })?;
        let mut out = StepOut::default();
        out.absorb(decoded, &refs);
        Ok(out)
    }
}

impl Operator for WindowedAggregate {
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let inputs = self.agg.inputs(inputs, cx)?;
        let spec = &self.spec;
        // Updates only under `on-update`; closed windows are added below.
        let (mut emitted, layout) = match spec.windows {
            Windows::Hopping(h) => (
                hopping::run(&mut self.agg, spec, h, inputs, cx)?,
                Layout::Window,
            ),
            Windows::Sliding(s) => (
                sliding::run(&mut self.agg, spec, s, inputs, cx)?,
                Layout::Window,
            ),
            Windows::Session(s) => (
                session::run(&mut self.agg, spec, s, inputs, cx)?,
                Layout::Session,
            ),
        };
        if let Some(last) = cx.batch.batch.len().checked_sub(1) {
            self.close_windows(layout, last, &mut emitted, cx)?;
        }
        self.emit(&emitted, cx)
    }

    /// A scan of every open window; it runs once per idle period.
    fn latest_close(&self, stores: &mut TaskStores) -> Result<Option<i64>, RunError> {
        let buffer = self.agg.buffer_of(stores);
        Ok(buffer
            .range(Some(buffer.floor(&[CLOSE])), Some(&[CLOSE + 1]))?
            .pop()
            .map(|(last, _)| {
                key_layout::time_from_bytes(last[1..9].try_into().expect("close keys hold a time"))
            }))
    }

    fn digest(&self) -> &str {
        self.agg.digest()
    }

    fn swap_plugin(&mut self, plugin: Plugin) {
        self.agg.swap_plugin(plugin);
    }
}
