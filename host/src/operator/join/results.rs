//! What every join does with the pairs it matched: one joiner call for the
//! batch, each rejected or trapped pair to its error policy (with the
//! record whose arrival made it), the rest (and result tombstones) written
//! as the step's output, with the key and time the join gave them and the
//! headers of both sides.

use bytes::Bytes;

use super::joiner::{JoinError, JoinPair, Joined, JoinedValue, ValueJoiner};
use crate::error::RunError;
use crate::operator::StepCtx;
use crate::operator::batch::StepOut;
use crate::operator::dead_letter::Kind;
use crate::record::{HeadersRef, Record, RecordRef};
use crate::topology::NodeId;

/// One result of a join, before its value is joined.
pub struct Result {
    /// The batch record whose arrival made it (its index in the batch).
    pub origin: usize,
    /// The result's key.
    pub key: Option<Bytes>,
    /// The sides to join (either may be absent, not both), or `None` for
    /// a tombstone of a table join's result.
    pub pair: Option<(Option<Record>, Option<Record>)>,
    /// Its time; `None` keeps the time of the record it came from.
    pub time: Option<i64>,
}

/// Joins the pairs of `results` with `joiner` and writes them, in order, as
/// step `step`'s output. `records` are the batch's records the join took
/// (with their index), for dead letters; a result made by no record (an
/// idle close's) is dead-lettered empty.
pub fn write<'r>(
    joiner: &mut ValueJoiner,
    step: usize,
    results: Vec<Result>,
    records: &[(usize, RecordRef<'r>)],
    cx: &mut StepCtx<'_, '_>,
) -> std::result::Result<StepOut, RunError> {
    let name = cx.topology.steps[step].name.clone();
    let pairs: Vec<JoinPair<'_>> = (results.iter())
        .filter_map(|r| r.pair.as_ref())
        .map(|(l, r)| JoinPair {
            left: l.as_ref().map(Record::as_ref),
            right: r.as_ref().map(Record::as_ref),
        })
        .collect();
    let mut joined = joiner
        .join_each(&pairs)
        .map_err(|e| match e {
            JoinError::Protocol(message) => RunError::Protocol {
                step: name.clone(),
                message,
            },
            other => RunError::Thread(format!("step `{name}`: {other}")),
        })?
        .into_iter();
    let by_origin: std::collections::HashMap<usize, RecordRef<'r>> =
        records.iter().copied().collect();
    let of = |origin: usize| by_origin.get(&origin).copied().unwrap_or(RecordRef::EMPTY);
    let (node, digest) = (NodeId::Step(step), joiner.digest().to_owned());
    let mut accepted: Vec<(usize, RecordRef<'r>)> = Vec::with_capacity(results.len());
    let mut written: Vec<(Option<Bytes>, Option<i64>, Option<JoinedValue>)> = Vec::new();
    for r in results {
        let at = (r.origin, of(r.origin));
        if r.pair.is_none() {
            accepted.push(at);
            written.push((r.key, r.time, None));
            continue;
        }
        match joined.next().expect("a result per pair") {
            Ok(Joined::Value(v)) => {
                accepted.push(at);
                written.push((r.key, r.time, Some(v)));
            }
            Ok(Joined::Rejected { code, message }) => {
                cx.dead(node, &digest, Kind::Rejected, &code, &message, at)?;
            }
            Err(trap) => cx.dead(node, &digest, Kind::Trap, "trap", &trap.0, at)?,
        }
    }
    let outputs: Vec<_> = (accepted.iter().zip(&written))
        .map(|(&(origin, input), (key, time, v))| {
            let output = RecordRef {
                key: key.as_deref(),
                value: v.as_ref().and_then(|v| v.value.as_deref()),
                timestamp: *time,
                headers: HeadersRef::Owned(v.as_ref().map_or(&[], |v| &v.headers)),
            };
            (origin, input, output)
        })
        .collect();
    StepOut::of_records(&name, &outputs)
}
