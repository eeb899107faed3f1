//! The answer part of a foreign-key join, beside the right table: keeps
//! the right rows and the subscriptions to each, and answers (keyed by
//! left key, to the response topic) a subscription with the row it names,
//! and a change of a row to every subscription to it, in left-key order.
//!
//! Its store: `r ‖ key` → `time ‖ row` for the right rows, and
//! `s ‖ ordered(foreign key) ‖ left key` → the subscription's hash.

use bytes::Bytes;

use super::super::in_arrival_order;
use super::super::stored::{self, ordered};
use super::{Answer, Ask, Subscription, emit};
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::dead_letter::Kind;
use crate::operator::{Operator, StepCtx};
use crate::plugin::Plugin;
use crate::record::{Record, RecordRef};
use crate::state::StoreBuffer;
use crate::state::key_layout::prefix_successor;
use crate::topology::NodeId;

/// The answer part of one task.
pub struct AnswerPart {
    index: usize,
    store: usize,
}

fn row_key(key: &[u8]) -> Vec<u8> {
    [&b"r"[..], key].concat()
}

fn subscriptions_of(fk: &[u8]) -> Vec<u8> {
    [&b"s"[..], &ordered(fk)].concat()
}

/// The right row of `key` with its time.
fn row(store: &StoreBuffer, key: &[u8]) -> Result<Option<(i64, Record)>, RunError> {
    Ok(store
        .get(&row_key(key))?
        .map(|kept| stored::decode_at(&kept)))
}

impl AnswerPart {
    /// The part of step `index`, in the task's store `store`.
    pub fn new(index: usize, store: usize) -> AnswerPart {
        AnswerPart { index, store }
    }
}

/// An answer to `left_key`, at `time`.
fn answer(left_key: &[u8], a: &Answer, time: Option<i64>) -> Record {
    Record {
        key: Some(Bytes::copy_from_slice(left_key)),
        value: Some(Bytes::from(a.encode())),
        timestamp: time,
        headers: Vec::new(),
    }
}

impl Operator for AnswerPart {
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        // Subscriptions and the right table's changes, in arrival order.
        let all = in_arrival_order(inputs, self.store, cx);
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for (origin, is_subscription, record) in all {
            let store = StepCtx::buffer(&mut cx.stores, self.store);
            let Some(key) = record.key else { continue };
            if !is_subscription {
                // A right row changed: every subscriber hears of it.
                match record.value {
                    Some(_) => {
                        let t = record.timestamp.unwrap_or(0);
                        let kept = stored::encode_at(t, &record.to_owned_record());
                        store.put(&row_key(key), &kept);
                    }
                    None => store.delete(&row_key(key)),
                }
                let prefix = subscriptions_of(key);
                let end = prefix_successor(&prefix);
                let right = record.value.map(|_| record.to_owned_record());
                for (k, hash) in store.range(Some(&prefix), Some(&end))? {
                    let a = Answer {
                        hash: hash[..16].try_into().expect("a hash"),
                        right: right.clone(),
                    };
                    out.push((
                        origin,
                        record,
                        answer(&k[prefix.len()..], &a, record.timestamp),
                    ));
                }
                continue;
            }
            let s = match Subscription::decode(record.value) {
                Ok(s) => s,
                Err(why) => {
                    bad.push((why, (origin, record)));
                    continue;
                }
            };
            let id = [subscriptions_of(key), s.left_key.to_vec()].concat();
            if s.ask == Ask::Unsubscribe {
                store.delete(&id);
                continue;
            }
            store.put(&id, &s.hash);
            let found = row(store, key)?;
            if found.is_none() && s.ask == Ask::AnswerIfFound {
                continue;
            }
            let t = record.timestamp.unwrap_or(0);
            let time = found.as_ref().map_or(t, |(rt, _)| t.max(*rt));
            let a = Answer {
                hash: s.hash,
                right: found.map(|(_, r)| r),
            };
            out.push((origin, record, answer(s.left_key, &a, Some(time))));
        }
        let node = NodeId::Step(self.index);
        for (why, at) in bad {
            let message =
                format!("the subscription topic holds a record Sluice did not write: {why}");
            cx.dead(
                node,
                "built-in",
                Kind::Rejected,
                "bad-subscription",
                &message,
                at,
            )?;
        }
        emit(&cx.topology.steps[self.index].name, &out)
    }

    fn digest(&self) -> &str {
        "built-in"
    }

    fn swap_plugin(&mut self, _plugin: Plugin) {
        unreachable!("a foreign-key join's parts have no plugin");
    }
}
