//! Calling a step's plugin: its instance, and its records in call batches.
//!
//! A step's inputs go to the plugin at most `max.batch.records` at a time
//! (a *call batch*). A call batch that traps is replayed one record at a
//! time on fresh instances, so that only the record the plugin traps on
//! meets the `trap` policy; records it rejects meet the `rejected` policy.

use crate::error::{PluginError, RunError};
use crate::operator::StepCtx;
use crate::operator::batch::StepOut;
use crate::operator::dead_letter::Kind;
use crate::plugin::frame::{self, Decoded};
use crate::plugin::instance::CallResult;
use crate::plugin::{Plugin, PluginInstance, Trap};
use crate::record::RecordRef;
use crate::topology::NodeId;

/// A plugin with its configuration and its live instance (made again after
/// a trap, or after a swap, at the next call).
pub struct PluginStep {
    plugin: Plugin,
    config: Vec<(String, String)>,
    instance: Option<PluginInstance>,
}

impl PluginStep {
    /// Instantiates `plugin` with `config`: a plugin that cannot be
    /// instantiated is found when the task starts, not at its first call.
    pub fn new(plugin: Plugin, config: Vec<(String, String)>) -> Result<PluginStep, PluginError> {
        let mut step = PluginStep {
            plugin,
            config,
            instance: None,
        };
        step.instance()?;
        Ok(step)
    }

    /// The live instance, made if there is none.
    pub fn instance(&mut self) -> Result<&mut PluginInstance, PluginError> {
        if self.instance.is_none() {
            self.instance = Some(self.plugin.instantiate(&self.config)?);
        }
        Ok(self.instance.as_mut().expect("set above"))
    }

    /// Drops the instance (it trapped): the next call gets a fresh one.
    pub fn discard_instance(&mut self) {
        self.instance = None;
    }

    /// The plugin's digest.
    pub fn digest(&self) -> &str {
        self.plugin.digest()
    }

    /// Replaces the plugin; the next call goes to a fresh instance of it.
    pub fn swap(&mut self, plugin: Plugin) {
        self.plugin = plugin;
        self.instance = None;
    }
}

/// A step whose records go to a plugin in call batches.
pub trait Caller {
    /// The node, for logs and dead letters.
    fn node(&self) -> NodeId;

    /// The digest of the plugin, for dead letters.
    fn digest(&self) -> &str;

    /// Calls the plugin once with `chunk`. The outer error is fatal; the
    /// inner `Err` is a trap, after which the instance has been discarded.
    fn call(
        &mut self,
        chunk: &[(usize, RecordRef<'_>)],
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Result<Decoded, Trap>, RunError>;
}

/// Runs `inputs` through `caller` in call batches, replaying a call batch
/// that trapped one record at a time.
pub fn in_call_batches(
    caller: &mut impl Caller,
    inputs: &[(usize, RecordRef<'_>)],
    cx: &mut StepCtx<'_, '_>,
) -> Result<StepOut, RunError> {
    let max = cx.topology.processing.max_batch_records;
    let mut produced = StepOut::default();
    for chunk in inputs.chunks(max) {
        let Some(trap) = call_and_absorb(caller, chunk, &mut produced, cx)? else {
            continue;
        };
        tracing::warn!(
            task = cx.task,
            step = %cx.topology.node_name(caller.node()),
            records = chunk.len(),
            "plugin trapped ({trap}); replaying the call batch one record at a time on fresh instances"
        );
        for one in chunk.chunks(1) {
            if let Some(trap) = call_and_absorb(caller, one, &mut produced, cx)? {
                let (node, digest) = (caller.node(), caller.digest());
                cx.dead(node, digest, Kind::Trap, "trap", &trap.0, one[0])?;
            }
        }
    }
    Ok(produced)
}

/// Calls the plugin with `chunk`, keeps what it produced and dead-letters
/// what it rejected; returns the trap, if it trapped.
fn call_and_absorb(
    caller: &mut impl Caller,
    chunk: &[(usize, RecordRef<'_>)],
    produced: &mut StepOut,
    cx: &mut StepCtx<'_, '_>,
) -> Result<Option<Trap>, RunError> {
    match caller.call(chunk, cx)? {
        Ok(decoded) => {
            for (j, code, message) in produced.absorb(decoded, chunk) {
                let (node, digest) = (caller.node(), caller.digest());
                cx.dead(node, digest, Kind::Rejected, &code, &message, chunk[j])?;
            }
            Ok(None)
        }
        Err(trap) => Ok(Some(trap)),
    }
}

/// Reads a call's answer to `records`: the output frame, decoded and
/// checked against them; a refusal of the whole call batch is the plugin
/// breaking the protocol; a trap discards the instance.
pub fn read_answer(
    step: &str,
    plugin: &mut PluginStep,
    result: CallResult,
    records: &[RecordRef<'_>],
) -> Result<Result<Decoded, Trap>, RunError> {
    match result {
        Ok(Ok(output)) => {
            let decoded = frame::decode(output, records).map_err(|message| RunError::Protocol {
                step: step.to_owned(),
                message,
            })?;
            Ok(Ok(decoded))
        }
        Ok(Err((code, message))) => Err(RunError::Protocol {
            step: step.to_owned(),
            message: format!("the plugin refused the whole call batch: {code}: {message}"),
        }),
        Err(trap) => {
            plugin.discard_instance();
            Ok(Err(trap))
        }
    }
}
