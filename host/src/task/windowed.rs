//! Windowed aggregations: each key's records are folded per time window
//! (tumbling or hopping), with a grace period for late records.
//!
//! For each record, with `t` its event time and `st` the task's stream
//! time once the record is seen, the record updates every window that
//! contains `t` and is still open: `st < end + grace`. A record with no
//! open window is *late*: dropped, counted, and with `late = "dlq"`
//! dead-lettered (kind `late`).
//!
//! The aggregator plugin (or the count) runs once per window of the call
//! batch, so it sees the records' own keys and one aggregate per key.
//!
//! Store layout (one key-value store per step):
//! - `0x00 ‖ window key` (key, start, end; `state::key_layout`) → the
//!   window's aggregate;
//! - `0x01 ‖ end + grace ‖ window key` → nothing: the close index. After
//!   each batch the windows with `end + grace <= stream time` are read from
//!   it in one range scan, emitted once (`on-window-close`), and deleted
//!   with their aggregates: no record may change them any more.
//!
//! Output records are keyed `key@start/end` (decimal milliseconds) and
//! carry `sluice.window.start` and `sluice.window.end` headers. With
//! `on-update` every change is emitted with its input's time; with
//! `on-window-close` each window's final aggregate is emitted once, with
//! the time `end - 1`.

use std::collections::BTreeMap;

use sluice_frame::Writer;

use super::dead_letter::Kind;
use super::{BatchContext, StepOut, Task};
use crate::error::RunError;
use crate::plugin::frame;
use crate::record::RecordRef;
use crate::state::StoreBuffer;
use crate::state::key_layout::{self, time_bytes};
use crate::topology::{Aggregation, EmitMode, LatePolicy, NodeId, Operation};
use crate::window::Window;

const AGGREGATE: u8 = 0;
const CLOSE: u8 = 1;

/// The store key of `key`'s aggregate in window `w`.
pub fn aggregate_key(key: &[u8], w: Window) -> Vec<u8> {
    let mut out = vec![AGGREGATE];
    out.extend_from_slice(&key_layout::window_key(key, w.start, w.end));
    out
}

/// The close-index key of `key`'s window `w`.
fn close_key(key: &[u8], w: Window, grace: i64) -> Vec<u8> {
    let mut out = vec![CLOSE];
    out.extend_from_slice(&time_bytes(w.end.saturating_add(grace)));
    out.extend_from_slice(&key_layout::window_key(key, w.start, w.end));
    out
}

/// The output key of `key`'s window `w`: `key@start/end`.
pub fn output_key(key: &[u8], w: Window) -> Vec<u8> {
    let mut out = key.to_vec();
    out.extend_from_slice(format!("@{}/{}", w.start, w.end).as_bytes());
    out
}

/// The window a windowed aggregation's call reads and writes.
#[derive(Debug, Clone, Copy)]
pub(super) struct OpenWindow {
    /// The window.
    pub window: Window,
    /// The step's grace, for the close index.
    pub grace: i64,
}

impl OpenWindow {
    /// `key` has no aggregate in this window yet: the window goes into the
    /// close index. Called where the aggregate is read anyway.
    pub fn note_new(&self, buffer: &mut StoreBuffer, key: &[u8]) {
        buffer.put(&close_key(key, self.window, self.grace), b"");
    }
}

/// One output of a windowed aggregation.
struct Emitted {
    origin: usize,
    key: Vec<u8>,
    window: Window,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
}

impl Task {
    /// Runs a windowed aggregation step.
    pub(super) fn run_windowed(
        &mut self,
        step: usize,
        inputs: Vec<(usize, RecordRef<'_>)>,
        ctx: &mut BatchContext<'_>,
    ) -> Result<StepOut, RunError> {
        let topology = std::sync::Arc::clone(&self.topology);
        let Operation::Aggregate {
            logic,
            window: Some(spec),
            ..
        } = &topology.steps[step].op
        else {
            unreachable!("run_windowed runs windowed aggregations");
        };
        let inputs = self.aggregation_inputs(step, inputs, ctx)?;

        let mut groups: BTreeMap<Window, Vec<(usize, RecordRef<'_>)>> = BTreeMap::new();
        for (origin, record) in inputs {
            let (t, st) = (ctx.times[origin], ctx.stream_at[origin]);
            let mut any = false;
            for w in spec.windows.windows_for(t) {
                if w.accepts_at(st, spec.grace) {
                    groups.entry(w).or_default().push((origin, record));
                    any = true;
                }
            }
            if !any {
                ctx.counts.late += 1;
                if spec.late == LatePolicy::Dlq {
                    let message = format!(
                        "event time {t} is in no open window: stream time {st}, grace {} ms",
                        spec.grace
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
            }
        }

        let mut emitted: Vec<Emitted> = Vec::new();
        for (w, group) in groups {
            // Reading an aggregate that is not there yet puts the window
            // into the close index (`OpenWindow::note_new`).
            self.window = Some(OpenWindow {
                window: w,
                grace: spec.grace,
            });
            let out = match logic {
                Aggregation::Plugin(_) => self.run_step(step, &group, ctx),
                Aggregation::Count => self.count(step, &group),
            };
            self.window = None;
            let out = out?;
            if spec.emit == EmitMode::OnUpdate {
                for (origin, r) in out.records() {
                    emitted.push(Emitted {
                        origin,
                        key: r.key.expect("an aggregate keeps its key").to_vec(),
                        window: w,
                        value: r.value.map(<[u8]>::to_vec),
                        timestamp: r.timestamp,
                    });
                }
            }
        }
        self.close_windows(
            step,
            spec.grace,
            spec.emit,
            ctx.batch.len() - 1,
            &mut emitted,
        )?;

        let refs: Vec<(usize, RecordRef<'_>)> = emitted
            .iter()
            .map(|e| (e.origin, ctx.batch[e.origin].record.as_ref()))
            .collect();
        let mut w = Writer::output(Vec::new(), emitted.len() as u32);
        for e in &emitted {
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
                step: topology.steps[step].name.clone(),
                message,
            })?;
        let mut out = StepOut::default();
        out.absorb(decoded, &refs);
        Ok(out)
    }

    /// Emits (`on-window-close`) and purges every window whose
    /// `end + grace` the stream time has reached.
    fn close_windows(
        &mut self,
        step: usize,
        grace: i64,
        emit: EmitMode,
        origin: usize,
        emitted: &mut Vec<Emitted>,
    ) -> Result<(), RunError> {
        let Some(stream_time) = self.stream_time.get() else {
            return Ok(());
        };
        let store = self.steps[step].store.expect("an aggregation has a store");
        let stores = self.stores.as_mut().expect("a stateful task has stores");
        let mut upto = vec![CLOSE];
        upto.extend_from_slice(&time_bytes(stream_time.saturating_add(1)));
        let due = stores.buffer(store).range(Some(&[CLOSE]), Some(&upto))?;
        for (close, _) in due {
            let Some((key, start, end)) = key_layout::decode_window_key(&close[9..]) else {
                continue;
            };
            let w = Window { start, end };
            debug_assert!(w.closed_at(stream_time, grace));
            let aggregate = aggregate_key(key, w);
            let buffer = stores.buffer(store);
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_windows_apart_and_the_close_index_sorts_by_close_time() {
        let (a, b) = (Window { start: 0, end: 10 }, Window { start: 5, end: 15 });
        assert_ne!(aggregate_key(b"k", a), aggregate_key(b"k", b));
        assert!(
            close_key(b"zz", a, 0) < close_key(b"aa", b, 0),
            "by close time first"
        );
        assert!(
            close_key(b"k", a, 10) > close_key(b"k", b, 0),
            "grace moves the close"
        );
        assert_eq!(output_key(b"page", b), b"page@5/15");
    }

    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    use crate::record::Record;
    use crate::state::task_state::StateContext;
    use crate::task::{InputRecord, Task};
    use crate::time::TimestampKind;
    use crate::topology::Topology;
    use crate::topology::pipeline_file::PipelineFile;

    /// (key, start, end) -> count.
    type Results = BTreeMap<(String, i64, i64), u64>;

    /// The reference: plain arithmetic, sharing nothing with the engine.
    /// Replays the partition in order with its own stream time; returns
    /// the count of every window that took a record, the windows closed by
    /// the end (with their counts), and the number of late records.
    fn reference(
        records: &[(String, i64)],
        size: i64,
        advance: i64,
        grace: i64,
    ) -> (Results, Results, u64) {
        let mut counts: Results = BTreeMap::new();
        let mut stream = i64::MIN;
        let mut late = 0;
        for (key, t) in records {
            stream = stream.max(*t);
            let mut any = false;
            let mut start = t - t.rem_euclid(advance);
            while start + size > *t {
                if stream < start + size + grace {
                    *counts
                        .entry((key.clone(), start, start + size))
                        .or_default() += 1;
                    any = true;
                }
                start -= advance;
            }
            if !any {
                late += 1;
            }
        }
        let closed = counts
            .iter()
            .filter(|((_, _, end), _)| end + grace <= stream)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        (counts, closed, late)
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Records with bounded disorder: time moves forward in steps of 10,
    /// and each record is late by up to three times the grace.
    fn records(seed: u64, grace: i64) -> Vec<(String, i64)> {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut now = 1_000;
        (0..400)
            .map(|_| {
                now += 10 * rng.below(4) as i64;
                let lateness = 10 * rng.below((3 * grace / 10 + 2) as u64) as i64;
                (format!("k{}", rng.below(3)), (now - lateness).max(0))
            })
            .collect()
    }

    fn run(
        records: &[(String, i64)],
        window: &str,
        emit: &str,
        seed: u64,
    ) -> (Vec<(String, i64, i64, u64)>, u64) {
        let text = format!(
            r#"
            application.id = "app"
            [state]
            store = "memory"
            [sources.events]
            [steps.counts]
            aggregate = "count"
            inputs = ["events"]
            window = {window}
            emit = "{emit}"
            [sinks.out]
            inputs = ["counts"]
        "#
        );
        let path = Path::new("/p/pipeline.toml");
        let t =
            Arc::new(Topology::from_file(path, PipelineFile::parse(path, &text).unwrap()).unwrap());
        let ctx = StateContext {
            application_id: "app".into(),
            settings: t.state.clone(),
            kafka: None,
        };
        let mut task = Task::new(0, Arc::clone(&t), &crate::Plugins::none(&t), Some(&ctx)).unwrap();
        let input: Vec<InputRecord> = records
            .iter()
            .enumerate()
            .map(|(i, (key, time))| InputRecord {
                topic: Arc::from("events"),
                partition: 0,
                offset: i as i64,
                timestamp_kind: TimestampKind::CreateTime,
                record: Record::new(Some(key.as_bytes()), Some(b"view"), Some(*time)),
            })
            .collect();
        let mut rng = Rng(seed | 1);
        let mut out: Vec<(String, Record)> = Vec::new();
        let mut late = 0;
        let mut at = 0;
        while at < input.len() {
            let n = (1 + rng.below(40) as usize).min(input.len() - at);
            late += task.process(&input[at..at + n], &mut out).unwrap().late;
            at += n;
        }
        let results = out
            .iter()
            .map(|(_, r)| {
                let key = String::from_utf8(r.key.as_deref().unwrap().to_vec()).unwrap();
                let (k, w) = key.split_once('@').unwrap();
                let (start, end) = w.split_once('/').unwrap();
                let header = |name: &str| {
                    r.headers
                        .iter()
                        .find(|(n, _)| n == name)
                        .and_then(|(_, v)| v.as_deref())
                        .map(|v| std::str::from_utf8(v).unwrap().parse::<i64>().unwrap())
                        .unwrap()
                };
                assert_eq!(header("sluice.window.start"), start.parse::<i64>().unwrap());
                assert_eq!(header("sluice.window.end"), end.parse::<i64>().unwrap());
                let count = std::str::from_utf8(r.value.as_deref().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                (
                    k.to_owned(),
                    start.parse().unwrap(),
                    end.parse().unwrap(),
                    count,
                )
            })
            .collect();
        (results, late)
    }

    /// 50 seeds for each window type and emit mode; a failure names its
    /// seed, so `records(seed, grace)` replays it.
    #[test]
    fn windowed_counts_equal_the_reference_model_over_50_seeds_per_case() {
        let cases = [
            (
                r#"{ type = "tumbling", size = 100, grace = 50 }"#,
                100,
                100,
                50,
            ),
            (
                r#"{ type = "hopping", size = "100ms", advance = 30, grace = 20 }"#,
                100,
                30,
                20,
            ),
            (r#"{ type = "tumbling", size = 50 }"#, 50, 50, 0),
        ];
        for (window, size, advance, grace) in cases {
            for seed in 1..=50u64 {
                let input = records(seed, grace.max(10));
                let (all, closed, late) = reference(&input, size, advance, grace);

                let (updates, engine_late) = run(&input, window, "on-update", seed);
                let what = format!("{window}, on-update, seed {seed}");
                assert_eq!(engine_late, late, "{what}: late records");
                assert_eq!(
                    updates.len() as u64,
                    all.values().sum::<u64>(),
                    "{what}: one update per (record, window)"
                );
                let mut last: Results = BTreeMap::new();
                for (k, s, e, c) in &updates {
                    let prev = last.insert((k.clone(), *s, *e), *c);
                    assert_eq!(prev.unwrap_or(0) + 1, *c, "{what}: counts go up by one");
                }
                assert_eq!(last, all, "{what}: final counts");

                let (finals, _) = run(&input, window, "on-window-close", seed);
                let what = format!("{window}, on-window-close, seed {seed}");
                let mut emitted: Results = BTreeMap::new();
                for (k, s, e, c) in finals {
                    assert!(
                        emitted.insert((k.clone(), s, e), c).is_none(),
                        "{what}: window {k}@{s}/{e} emitted twice"
                    );
                }
                assert_eq!(emitted, closed, "{what}: final results of closed windows");
            }
        }
    }

    #[test]
    fn boundaries_are_exact() {
        // Tumbling 100, grace 50: a record at 100 opens [100, 200); stream
        // time 150 closes [0, 100), so a record at 99 then is late, and at
        // 149 it was not.
        let input: Vec<(String, i64)> = [(0, 100), (1, 99), (2, 149), (3, 99), (4, 150), (5, 99)]
            .iter()
            .map(|(_, t)| ("k".to_owned(), *t))
            .collect();
        let (updates, late) = run(
            &input,
            r#"{ type = "tumbling", size = 100, grace = 50 }"#,
            "on-update",
            1,
        );
        assert_eq!(late, 1, "only the record after stream time reached 150");
        // Updates are in order per window (across windows of one call
        // batch, grouped by window).
        let per_window = |start: i64| -> Vec<u64> {
            updates
                .iter()
                .filter(|(_, s, _, _)| *s == start)
                .map(|(_, _, _, c)| *c)
                .collect()
        };
        assert_eq!(per_window(0), vec![1, 2], "99 at stream time 100 and 149");
        assert_eq!(per_window(100), vec![1, 2, 3], "100, 149 and 150");
        let (finals, _) = run(
            &input,
            r#"{ type = "tumbling", size = 100, grace = 50 }"#,
            "on-window-close",
            1,
        );
        assert_eq!(
            finals,
            vec![("k".to_owned(), 0, 100, 2)],
            "closed at exactly end + grace"
        );
    }
}
