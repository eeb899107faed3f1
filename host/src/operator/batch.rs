//! The batch in flight: the source records a task runs through its DAG,
//! their event times, the counts of what happened to them, and where
//! outputs go ([`Output`]: the shared producer, or a `Vec` in tests).

use sluice_frame::Writer;

use crate::error::RunError;
use crate::kafka::topic_limits::Refusal;
use crate::plugin::frame::{self, Decoded, Outcome};
use crate::record::{InputRecord, Record, RecordRef};

/// Where a task's records go.
pub trait Output {
    /// Sends one record to `topic`.
    fn send(&mut self, topic: &str, record: RecordRef<'_>) -> Result<(), RunError>;

    /// Why `topic` would refuse `record` (too large, a timestamp out of
    /// its range), if it would: the record then meets the `refused`
    /// policy instead of failing its neighbours with it.
    fn refusal(&self, topic: &str, record: RecordRef<'_>) -> Option<Refusal> {
        let _ = (topic, record);
        None
    }
}

impl Output for Vec<(String, Record)> {
    fn send(&mut self, topic: &str, record: RecordRef<'_>) -> Result<(), RunError> {
        self.push((topic.to_owned(), record.to_owned_record()));
        Ok(())
    }
}

/// Counts of one batch, or of a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Source records processed (not those read back from repartition
    /// topics: see `repartitioned`).
    pub records_in: u64,
    /// Records read back from the pipeline's repartition topics.
    pub repartitioned: u64,
    /// Records written to sinks.
    pub records_out: u64,
    /// Records a plugin rejected.
    pub rejected: u64,
    /// Records a plugin trapped on.
    pub trapped: u64,
    /// Records written to the dead-letter topic.
    pub dead_letters: u64,
    /// Outputs a sink topic would refuse (too large, or a timestamp out of
    /// its range), handled by the `refused` policy.
    pub refused: u64,
    /// Source records not processed again: their effects were restored.
    pub skipped: u64,
    /// Source records whose event time was below the stream time.
    pub out_of_order: u64,
    /// Source records without a valid timestamp (dropped, or given the
    /// stream time, by the `invalid-timestamp` policy).
    pub invalid_timestamps: u64,
    /// Of those, the records dropped (`invalid-timestamp = "skip"`): not
    /// in `records_in`.
    pub timestamp_dropped: u64,
    /// Records a windowed aggregation dropped: every window they fall into
    /// had closed (stream time at or past end + grace). With `late =
    /// "dlq"`, these are the records dead-lettered. Also the records of a
    /// versioned table older than its time minus its history (dropped).
    pub late: u64,
    /// Records some of whose windows took them while others had closed
    /// (hopping and sliding windows): added to the open ones, counted
    /// here, never dead-lettered.
    pub partly_late: u64,
    /// (record, window) pairs dropped because the window had closed, for
    /// late and partly late records alike: Kafka Streams' dropped-records
    /// count.
    pub late_windows: u64,
    /// Records without a key that reached a repartition topic: they cannot
    /// be routed, so they were dropped (or dead-lettered).
    pub unkeyed: u64,
    /// Stream records a join dropped: no value to join.
    pub join_skipped: u64,
}

impl Counts {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Counts) {
        self.records_in += other.records_in;
        self.repartitioned += other.repartitioned;
        self.records_out += other.records_out;
        self.rejected += other.rejected;
        self.trapped += other.trapped;
        self.dead_letters += other.dead_letters;
        self.refused += other.refused;
        self.skipped += other.skipped;
        self.out_of_order += other.out_of_order;
        self.invalid_timestamps += other.invalid_timestamps;
        self.timestamp_dropped += other.timestamp_dropped;
        self.late += other.late;
        self.partly_late += other.partly_late;
        self.late_windows += other.late_windows;
        self.unkeyed += other.unkeyed;
        self.join_skipped += other.join_skipped;
    }
}

/// The batch being processed, where its records go, and its counts.
pub struct BatchContext<'a> {
    pub batch: &'a [InputRecord],
    /// True for the placeholder batch of an idle close (no input: the
    /// stream time was moved to close what is open).
    pub tick: bool,
    /// Per record of `batch`: false when every store already holds its
    /// effects (restored), or its timestamp was invalid and skipped, so it
    /// is not processed.
    pub live: Vec<bool>,
    /// Per record of `batch`: its event time.
    pub times: Vec<i64>,
    /// Per record of `batch`: the stream time once it was seen.
    pub stream_at: Vec<i64>,
    pub out: &'a mut dyn Output,
    pub counts: Counts,
}

/// What one step produced for a batch: its decoded output frames, and
/// each output record as (source record index, frame, record in frame).
#[derive(Default)]
pub struct StepOut {
    pub frames: Vec<Decoded>,
    pub items: Vec<(usize, u32, u32)>,
}

impl StepOut {
    /// Its records, with their source index.
    pub fn records(&self) -> Vec<(usize, RecordRef<'_>)> {
        self.items
            .iter()
            .map(|&(origin, f, k)| (origin, self.frames[f as usize].record(k as usize)))
            .collect()
    }

    /// The output of a step that makes its records itself (no plugin
    /// call): per output, the batch record it came from (`origin`), the
    /// record the step took, and the record it emits. `step` names the
    /// node in a protocol error.
    pub fn of_records(
        step: &str,
        outputs: &[(usize, RecordRef<'_>, RecordRef<'_>)],
    ) -> Result<StepOut, RunError> {
        let mut w = Writer::output(Vec::new(), outputs.len() as u32);
        for (_, _, r) in outputs {
            w.begin_ok();
            w.record(r.key, r.value, r.timestamp, r.headers.iter());
        }
        let accepted: Vec<(usize, RecordRef<'_>)> = (outputs.iter())
            .map(|&(origin, input, _)| (origin, input))
            .collect();
        let inputs: Vec<RecordRef<'_>> = accepted.iter().map(|(_, r)| *r).collect();
        let decoded = frame::decode(w.finish(), &inputs).map_err(|message| RunError::Protocol {
            step: step.to_owned(),
            message,
        })?;
        let mut out = StepOut::default();
        out.absorb(decoded, &accepted);
        Ok(out)
    }

    /// Appends `other`'s records after its own.
    pub fn extend(&mut self, other: StepOut) {
        let base = self.frames.len() as u32;
        self.frames.extend(other.frames);
        (self.items).extend(other.items.into_iter().map(|(o, f, k)| (o, f + base, k)));
    }

    /// Takes one call's output: records of accepted inputs are kept;
    /// rejected inputs are returned as (position in `chunk`, code, message).
    pub fn absorb(
        &mut self,
        decoded: Decoded,
        chunk: &[(usize, RecordRef<'_>)],
    ) -> Vec<(usize, String, String)> {
        let frame = self.frames.len() as u32;
        let mut rejected = Vec::new();
        for (j, ((origin, _), outcome)) in chunk.iter().zip(&decoded.outcomes).enumerate() {
            match outcome {
                Outcome::Ok(range) => self
                    .items
                    .extend(range.clone().map(|k| (*origin, frame, k as u32))),
                Outcome::Rejected { code, message } => {
                    rejected.push((j, code.clone(), message.clone()))
                }
            }
        }
        self.frames.push(decoded);
        rejected
    }
}
