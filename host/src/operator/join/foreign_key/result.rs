//! The join step of a foreign-key join, beside the left table: keeps the
//! left rows (`left key` → row), emits the results a left change
//! gives without asking the right side, and turns each answer that is not
//! stale into a result.

use bytes::Bytes;

use super::super::in_arrival_order;
use super::super::joiner::ValueJoiner;
use super::super::results;
use super::super::stored;
use super::{Answer, foreign_key, hash};
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::dead_letter::Kind;
use crate::operator::{Operator, StepCtx};
use crate::plugin::Plugin;
use crate::record::{Record, RecordRef};
use crate::topology::{JoinKind, NodeId};

/// A foreign-key join of one task.
pub struct ForeignKeyJoin {
    index: usize,
    kind: JoinKind,
    joiner: ValueJoiner,
    field: Vec<String>,
    store: usize,
}

impl ForeignKeyJoin {
    /// The join of step `index`, of `kind` by `field`, its values joined
    /// by `joiner`, the left rows kept in the task's store `store`.
    pub fn new(
        index: usize,
        kind: JoinKind,
        joiner: ValueJoiner,
        (field, store): (Vec<String>, usize),
    ) -> ForeignKeyJoin {
        ForeignKeyJoin {
            index,
            kind,
            joiner,
            field,
            store,
        }
    }
}

impl Operator for ForeignKeyJoin {
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let all = in_arrival_order(inputs, self.store, cx);
        let node = NodeId::Step(self.index);
        let mut changes = Vec::new();
        let mut refused = Vec::new();
        // What a pair made by an answer is dead-lettered as, should the
        // joiner refuse it: the left row, not the answer (a message of
        // Sluice's own).
        let mut answered: Vec<(usize, Record)> = Vec::new();
        for &(origin, is_left, record) in &all {
            let Some(key) = record.key else { continue };
            let store = StepCtx::buffer(&mut cx.stores, self.store);
            let result = |pair, time| results::Result {
                origin,
                key: Some(Bytes::copy_from_slice(key)),
                pair,
                time: Some(time),
            };
            if !is_left {
                let answer = match Answer::decode(record.value) {
                    Ok(a) => a,
                    Err(why) => {
                        refused.push((
                            "bad-response",
                            format!(
                                "the response topic holds a record Sluice did not write: {why}"
                            ),
                            (origin, record),
                        ));
                        continue;
                    }
                };
                let Some(kept) = store.get(key)? else {
                    continue;
                };
                let left = stored::decode(&kept);
                // Stale: the left row changed since it subscribed.
                if hash(left.value.as_deref().unwrap_or_default()) != answer.hash {
                    continue;
                }
                let time = record.timestamp.unwrap_or(0);
                changes.push(match (answer.right, self.kind) {
                    (None, JoinKind::Inner) => result(None, time),
                    (right, _) => {
                        answered.push((origin, left.clone()));
                        result(Some((Some(left), right)), time)
                    }
                });
                continue;
            }
            let new_fk = match foreign_key(&self.field, record.value) {
                Ok(fk) => fk,
                Err(why) => {
                    refused.push(("no-join-key", why, (origin, record)));
                    continue;
                }
            };
            let old = store.get(key)?;
            let t = record.timestamp.unwrap_or(0);
            let new = record.value.map(|_| record.to_owned_record());
            match &new {
                Some(row) => store.put(key, &stored::encode(row)),
                None => store.delete(key),
            }
            // A result that may exist: the left join's for any left row,
            // the inner join's only for a row that named a right one.
            let had = match (self.kind, &old) {
                (_, None) => false,
                (JoinKind::Inner, Some(kept)) => {
                    let value = stored::decode(kept).value;
                    foreign_key(&self.field, value.as_deref()).is_ok_and(|fk| fk.is_some())
                }
                (_, Some(_)) => true,
            };
            match (new, new_fk) {
                (None, _) if had => changes.push(result(None, t)),
                (Some(row), None) if self.kind == JoinKind::Left => {
                    changes.push(result(Some((Some(row), None)), t));
                }
                (Some(_), None) if had => changes.push(result(None, t)),
                // The answer to its subscription gives the result.
                _ => {}
            }
        }
        for (code, message, at) in refused {
            cx.dead(
                node,
                self.joiner.digest(),
                Kind::Rejected,
                code,
                &message,
                at,
            )?;
        }
        let records: Vec<(usize, RecordRef<'_>)> = (all.iter())
            .filter(|(_, is_left, _)| *is_left)
            .map(|&(o, _, r)| (o, r))
            .chain(answered.iter().map(|(o, r)| (*o, r.as_ref())))
            .collect();
        results::write(&mut self.joiner, self.index, changes, &records, cx)
    }

    fn digest(&self) -> &str {
        self.joiner.digest()
    }

    fn swap_plugin(&mut self, plugin: Plugin) {
        self.joiner.swap_plugin(plugin);
    }
}
