//! A join's key plugin (`key-plugin`, on a join with a global table): a
//! record-processor plugin given each stream record; the key of the one
//! record it returns is the key the table is looked up by (Kafka Streams'
//! `KeyValueMapper` of a `GlobalKTable` join). Only that key is read: the
//! returned value and headers are not. Returning no record is a null key
//! (the record matches nothing); returning several is the record's fault,
//! rejected (`no-join-key`). A record the plugin rejects meets the
//! `rejected` policy, one it traps on the `trap` policy; neither is
//! joined. Records go to the plugin a call batch at a time, and a call
//! batch that traps is replayed one record at a time on fresh instances.

use super::table_key::TableKey;
use crate::error::RunError;
use crate::operator::StepCtx;
use crate::operator::call::{PluginStep, read_answer};
use crate::operator::dead_letter::Kind;
use crate::plugin::Trap;
use crate::plugin::frame::{self, Decoded, Outcome};
use crate::record::RecordRef;
use crate::topology::NodeId;

/// The key plugin of one task's join.
pub struct KeyPlugin {
    step: usize,
    plugin: PluginStep,
}

impl KeyPlugin {
    /// The key plugin of step `step`.
    pub fn new(step: usize, plugin: PluginStep) -> KeyPlugin {
        KeyPlugin { step, plugin }
    }

    /// The table key of each of `records`, in their order: `None` for a
    /// record the plugin rejected or trapped on (its policy applied).
    pub fn keys(
        &mut self,
        records: &[(usize, RecordRef<'_>)],
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Vec<Option<TableKey>>, RunError> {
        let mut keys = Vec::with_capacity(records.len());
        for chunk in records.chunks(cx.topology.processing.max_batch_records) {
            match self.call(chunk, cx)? {
                Ok(decoded) => keys.extend(self.read(&decoded, chunk, cx)?),
                Err(trap) => {
                    tracing::warn!(
                        task = cx.task,
                        step = %cx.topology.steps[self.step].name,
                        records = chunk.len(),
                        "key plugin trapped ({trap}); replaying the call batch one record at a time on fresh instances"
                    );
                    for one in chunk.chunks(1) {
                        match self.call(one, cx)? {
                            Ok(decoded) => keys.extend(self.read(&decoded, one, cx)?),
                            Err(trap) => {
                                let digest = self.plugin.digest().to_owned();
                                let node = NodeId::Step(self.step);
                                cx.dead(node, &digest, Kind::Trap, "trap", &trap.0, one[0])?;
                                keys.push(None);
                            }
                        }
                    }
                }
            }
        }
        Ok(keys)
    }

    /// One call with `chunk`.
    fn call(
        &mut self,
        chunk: &[(usize, RecordRef<'_>)],
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Result<Decoded, Trap>, RunError> {
        let records: Vec<RecordRef<'_>> = chunk.iter().map(|(_, r)| *r).collect();
        let input = frame::encode(std::mem::take(&mut cx.bufs.frame), records.iter().copied());
        let result = self.plugin.instance()?.process(&input);
        cx.bufs.frame = input;
        let name = format!("{} key-plugin", cx.topology.steps[self.step].name);
        read_answer(&name, &mut self.plugin, result, &records)
    }

    /// The keys a call answered for `chunk`, its rejections dead-lettered.
    fn read(
        &self,
        decoded: &Decoded,
        chunk: &[(usize, RecordRef<'_>)],
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Vec<Option<TableKey>>, RunError> {
        let node = NodeId::Step(self.step);
        let digest = self.plugin.digest().to_owned();
        let mut keys = Vec::with_capacity(chunk.len());
        for (outcome, &at) in decoded.outcomes.iter().zip(chunk) {
            keys.push(match outcome {
                Outcome::Ok(range) if range.is_empty() => Some(TableKey::Null),
                Outcome::Ok(range) if range.len() == 1 => {
                    Some(match decoded.record(range.start).key {
                        Some(k) => TableKey::Key(k.to_vec()),
                        None => TableKey::Null,
                    })
                }
                Outcome::Ok(range) => Some(TableKey::Missing(format!(
                    "the join's `key-plugin` returned {} records for one; it returns one, whose key is the table key (or none, for no key)",
                    range.len()
                ))),
                Outcome::Rejected { code, message } => {
                    cx.dead(node, &digest, Kind::Rejected, code, message, at)?;
                    None
                }
            });
        }
        Ok(keys)
    }
}
