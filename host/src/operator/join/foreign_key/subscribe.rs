//! The subscribe part of a foreign-key join, beside the left table: keeps
//! each left key's foreign key and, when it changes, sends the
//! subscription messages that follow (keyed by foreign key, to the
//! subscription topic).

use bytes::Bytes;

use super::{Ask, Subscription, emit, foreign_key, hash};
use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::{Operator, StepCtx, unapplied};
use crate::plugin::Plugin;
use crate::record::{Record, RecordRef};
use crate::state::StoreBuffer;
use crate::topology::JoinKind;

/// The subscribe part of one task.
pub struct Subscribe {
    index: usize,
    kind: JoinKind,
    field: Vec<String>,
    store: usize,
}

/// A left key's row as this part keeps it: absent, or present with its
/// foreign key (`None` for a null one).
type Kept = Option<Option<Vec<u8>>>;

fn read(store: &StoreBuffer, key: &[u8]) -> Result<Kept, RunError> {
    Ok(store.get(key)?.map(|v| match v.split_first() {
        Some((1, fk)) => Some(fk.to_vec()),
        _ => None,
    }))
}

fn write(store: &mut StoreBuffer, key: &[u8], kept: &Kept) {
    match kept {
        None => store.delete(key),
        Some(None) => store.put(key, &[0]),
        Some(Some(fk)) => store.put(key, &[&[1][..], fk].concat()),
    }
}

impl Subscribe {
    /// The part of step `index` (a join of `kind` by `field`), keeping the
    /// foreign keys in the task's store `store`.
    pub fn new(index: usize, kind: JoinKind, field: Vec<String>, store: usize) -> Subscribe {
        Subscribe {
            index,
            kind,
            field,
            store,
        }
    }
}

impl Operator for Subscribe {
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let live = unapplied(&[self.store], inputs, cx);
        let store = StepCtx::buffer(&mut cx.stores, self.store);
        let mut out = Vec::new();
        for (origin, record) in live {
            let Some(key) = record.key else { continue };
            // A value whose foreign key cannot be read is the join step's
            // to reject: the join goes on as if it had not come.
            let Ok(new_fk) = foreign_key(&self.field, record.value) else {
                continue;
            };
            let new: Kept = record.value.map(|_| new_fk.clone());
            let old = read(store, key)?;
            write(store, key, &new);
            let old_fk = old.clone().flatten();
            let message = |fk: &[u8], ask: Ask| {
                let s = Subscription {
                    ask,
                    hash: hash(record.value.unwrap_or_default()),
                    left_key: key,
                };
                let value = s.encode();
                let r = Record {
                    key: Some(Bytes::copy_from_slice(fk)),
                    value: Some(Bytes::from(value)),
                    timestamp: record.timestamp,
                    headers: Vec::new(),
                };
                (origin, record, r)
            };
            if let Some(old_fk) = &old_fk
                && Some(old_fk) != new_fk.as_ref()
            {
                out.push(message(old_fk, Ask::Unsubscribe));
            }
            if let (Some(_), Some(fk)) = (record.value, &new_fk) {
                // An inner join answers "nothing found" only where a result
                // may exist to be deleted.
                let ask = match self.kind {
                    JoinKind::Inner if old_fk.is_none() => Ask::AnswerIfFound,
                    _ => Ask::Answer,
                };
                out.push(message(fk, ask));
            }
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
