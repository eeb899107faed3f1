//! Processor steps: a plugin that maps, filters or flat-maps each record.
//!
//! A processor that declared stores (`stores = [...]`) gets them lent to
//! its instance for the call (`crate::plugin::host::state`), and input
//! whose effects its writable stores already hold (restored from their
//! changelog) is not processed again. A step declared `key = "kept"`
//! promises that its outputs keep their input's key: an output with
//! another key is a trap of the record it came from.

use crate::error::RunError;
use crate::operator::batch::StepOut;
use crate::operator::call::{self, Caller, PluginStep};
use crate::operator::{Operator, StepCtx, unapplied};
use crate::plugin::frame::{self, Decoded, Outcome};
use crate::plugin::host::state::LentStore;
use crate::plugin::instance::CallResult;
use crate::plugin::{Plugin, Trap};
use crate::record::RecordRef;
use crate::topology::NodeId;

/// A processor step.
pub struct Processor {
    step: usize,
    plugin: PluginStep,
    /// `key = "kept"`.
    keeps_key: bool,
    /// The stores it declared: (index in the task's stores, writable).
    state: Vec<(usize, bool)>,
}

impl Processor {
    /// Step `step`, calling `plugin`, with the stores it declared.
    pub fn new(
        step: usize,
        plugin: PluginStep,
        keeps_key: bool,
        state: Vec<(usize, bool)>,
    ) -> Processor {
        Processor {
            step,
            plugin,
            keeps_key,
            state,
        }
    }

    /// Calls the plugin with the stores it declared lent to its instance.
    fn process_with_state(
        &mut self,
        input: &[u8],
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<CallResult, RunError> {
        let stores = cx
            .stores
            .as_deref_mut()
            .expect("a step with state has stores");
        let instance = self.plugin.instance()?;
        instance.lend(
            self.state
                .iter()
                .map(|&(i, writable)| LentStore {
                    name: stores.name(i).to_owned(),
                    buffer: stores.lend(i),
                    writable,
                })
                .collect(),
        );
        let result = instance.process(input);
        for (lent, &(i, _)) in instance.take_back().into_iter().zip(&self.state) {
            stores.give_back(i, lent.buffer);
        }
        Ok(result)
    }
}

impl Operator for Processor {
    fn process<'r>(
        &mut self,
        inputs: Vec<(usize, RecordRef<'r>)>,
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<StepOut, RunError> {
        let inputs = if self.state.is_empty() {
            inputs
        } else {
            let written: Vec<usize> = self
                .state
                .iter()
                .filter(|(_, w)| *w)
                .map(|(i, _)| *i)
                .collect();
            unapplied(&written, inputs, cx)
        };
        call::in_call_batches(self, &inputs, cx)
    }

    fn digest(&self) -> &str {
        self.plugin.digest()
    }

    fn swap_plugin(&mut self, plugin: Plugin) {
        self.plugin.swap(plugin);
    }
}

impl Caller for Processor {
    fn node(&self) -> NodeId {
        NodeId::Step(self.step)
    }

    fn digest(&self) -> &str {
        self.plugin.digest()
    }

    fn call(
        &mut self,
        chunk: &[(usize, RecordRef<'_>)],
        cx: &mut StepCtx<'_, '_>,
    ) -> Result<Result<Decoded, Trap>, RunError> {
        let topology = cx.topology;
        let name = &topology.steps[self.step].name;
        let records: Vec<RecordRef<'_>> = chunk.iter().map(|(_, r)| *r).collect();
        let input = frame::encode(std::mem::take(&mut cx.bufs.frame), records.iter().copied());
        let result = if self.state.is_empty() {
            self.plugin.instance()?.process(&input)
        } else {
            self.process_with_state(&input, cx)?
        };
        cx.bufs.frame = input;
        let decoded = match call::read_answer(name, &mut self.plugin, result, &records)? {
            Ok(decoded) => decoded,
            Err(trap) => return Ok(Err(trap)),
        };
        if self.keeps_key
            && let Some(trap) = changed_key(name, &records, &decoded)
        {
            return Ok(Err(trap));
        }
        Ok(Ok(decoded))
    }
}

/// For a step declared `key = "kept"`: the first output whose key is not
/// its input's, as a trap (the plugin broke the step's promise; only the
/// record it came from fails, when the call is replayed one at a time).
fn changed_key(step: &str, inputs: &[RecordRef<'_>], decoded: &Decoded) -> Option<Trap> {
    let text = |k: Option<&[u8]>| match k {
        Some(k) => format!("`{}`", String::from_utf8_lossy(k)),
        None => "null".to_owned(),
    };
    decoded
        .outcomes
        .iter()
        .zip(inputs)
        .find_map(|(outcome, input)| match outcome {
            Outcome::Ok(range) => range
                .clone()
                .map(|j| decoded.record(j).key)
                .find(|&key| key != input.key)
                .map(|key| {
                    Trap(format!(
                        "key: step `{step}` declares key = \"kept\", but its plugin changed a key from {} to {}",
                        text(input.key),
                        text(key)
                    ))
                }),
            Outcome::Rejected { .. } => None,
        })
}
