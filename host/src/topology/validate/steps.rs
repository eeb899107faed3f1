//! `[steps.<name>]`: processors (`plugin`) and aggregations (`aggregate`),
//! in topological order, with the keys each kind may have. An aggregation
//! is refused where it cannot work yet: after a step that may change keys
//! (regrouping needs a repartition topic, which Sluice does not make), or
//! over a table (whose records replace each other, which needs a
//! subtractor).

use std::collections::BTreeMap;
use std::path::Path;

use super::names::{Nodes, check_name};
use super::state::Owners;
use super::windowing::windowing;
use crate::topology::pipeline_file::{KeyPolicy, StepDef, flatten};
use crate::topology::{Aggregation, NodeId, Operation, PluginRef, Source, Step};

/// Every step, in `order` (the topological order of `defs`). `base` is the
/// directory of the pipeline file, against which plugin paths resolve.
pub(super) fn steps(
    defs: &BTreeMap<String, StepDef>,
    order: &[String],
    sources: &[Source],
    nodes: &Nodes,
    base: &Path,
) -> Result<Vec<Step>, String> {
    let mut steps = Steps {
        sources,
        nodes,
        base,
        owners: Owners::of_tables(sources)?,
        done: Vec::with_capacity(order.len()),
    };
    for name in order {
        let step = steps.step(name, &defs[name])?;
        steps.done.push(step);
    }
    Ok(steps.done)
}

/// The steps validated so far, and what validating the next one reads.
struct Steps<'a> {
    sources: &'a [Source],
    nodes: &'a Nodes<'a>,
    base: &'a Path,
    /// The owner of each store so far.
    owners: Owners<'a>,
    /// The steps before the next, in order.
    done: Vec<Step>,
}

impl<'a> Steps<'a> {
    /// The step `name`, declared by `def`.
    fn step(&mut self, name: &'a str, def: &StepDef) -> Result<Step, String> {
        let owner = format!("[steps.{name}]");
        let inputs = self.nodes.resolve(&owner, &def.inputs)?;
        let op = match (&def.plugin, &def.aggregate) {
            (Some(plugin), None) => {
                if def.store.is_some() {
                    return Err(format!(
                        "{owner} has a `store` but is not an aggregation; a processor declares the stores it uses with `stores = [...]`"
                    ));
                }
                Operation::Process(plugin_ref(self.base, plugin))
            }
            (None, Some(aggregate)) => self.aggregation(name, &owner, def, aggregate, &inputs)?,
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{owner} has both `plugin` and `aggregate`; a step is either a processor (`plugin`) or an aggregation (`aggregate`)"
                ));
            }
            (None, None) => {
                return Err(format!(
                    "{owner} needs `plugin = \"<crate dir or .wasm>\"` (a processor) or `aggregate = \"<crate dir, .wasm or count>\"` (an aggregation)"
                ));
            }
        };
        let config = flatten(&def.config, &format!("{owner} config"))?
            .into_iter()
            .map(|(k, v)| (k, v.to_text()))
            .collect();
        if def.window.is_none() && (def.emit.is_some() || def.late.is_some() || def.close.is_some())
        {
            return Err(format!(
                "{owner} has `emit`, `late` or `close.idle.after`, which only a windowed aggregation (`window = {{...}}`) reads"
            ));
        }
        if def.window.is_some() && !matches!(op, Operation::Aggregate { .. }) {
            return Err(format!(
                "{owner} has a `window`, but only an aggregation (`aggregate = ...`) is windowed"
            ));
        }
        if !def.stores.is_empty() && !matches!(op, Operation::Process(_)) {
            return Err(format!(
                "{owner} has `stores`, but only a processor (`plugin`) declares stores; an aggregation names its one `store`"
            ));
        }
        let state = self
            .owners
            .declare(&owner, name, &def.stores, self.sources)?;
        Ok(Step {
            name: name.to_owned(),
            op,
            state,
            inputs,
            config,
            keeps_key: def.key == Some(KeyPolicy::Kept),
        })
    }

    /// The aggregation `name` (`owner` in messages) of `inputs`, by
    /// `aggregate` (a plugin, or `count`).
    fn aggregation(
        &mut self,
        name: &'a str,
        owner: &str,
        def: &StepDef,
        aggregate: &str,
        inputs: &[NodeId],
    ) -> Result<Operation, String> {
        if def.key.is_some() {
            return Err(format!(
                "{owner} has a `key` policy but is an aggregation; `key = \"kept\"` is for processors"
            ));
        }
        if let Some(i) = key_changer(&self.done, inputs) {
            return Err(format!(
                "{owner} aggregates the output of step `{}`, which may have changed the keys; \
                 grouping by a new key needs a repartition topic, which Sluice does not make yet. \
                 If the step keeps each record's key, declare `key = \"kept\"` on it (the host holds it to that); \
                 else aggregate a source directly, or write the step's output to a topic keyed as you need and aggregate that",
                self.done[i].name
            ));
        }
        if let Some(i) = upstream_sources(&self.done, inputs)
            .into_iter()
            .find(|&i| self.sources[i].table.is_some())
        {
            return Err(format!(
                "{owner} aggregates table `{}`; a table's records replace each other, \
                 so aggregating them needs a subtractor, which Sluice does not have yet. \
                 Aggregate a stream source",
                self.sources[i].name
            ));
        }
        let store = def.store.clone().unwrap_or_else(|| name.to_owned());
        check_name(&store).map_err(|m| format!("{owner} `store` {m}"))?;
        self.owners.claim(&store, name)?;
        let logic = match aggregate {
            "count" => Aggregation::Count,
            path => Aggregation::Plugin(plugin_ref(self.base, Path::new(path))),
        };
        let window = match &def.window {
            None => None,
            Some(w) => Some(
                windowing(w, def.emit, def.late, def.close.as_ref())
                    .map_err(|m| format!("{owner} `window`: {m}"))?,
            ),
        };
        Ok(Operation::Aggregate {
            logic,
            store,
            window,
        })
    }
}

/// A plugin path, resolved against `base`: a built component if it ends
/// in `.wasm`, else a crate directory.
fn plugin_ref(base: &Path, path: &Path) -> PluginRef {
    let path = base.join(path);
    if path.extension().is_some_and(|e| e == "wasm") {
        PluginRef::Component(path)
    } else {
        PluginRef::Crate(path)
    }
}

/// The first step feeding `inputs`, directly or through other steps,
/// that may change keys (it does not declare `key = "kept"`). Each step
/// is visited once, however many paths lead to it.
fn key_changer(steps: &[Step], inputs: &[NodeId]) -> Option<usize> {
    let mut seen = vec![false; steps.len()];
    let mut stack: Vec<NodeId> = inputs.iter().rev().copied().collect();
    while let Some(node) = stack.pop() {
        if let NodeId::Step(i) = node {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            if !steps[i].keeps_key {
                return Some(i);
            }
            stack.extend(steps[i].inputs.iter().rev());
        }
    }
    None
}

/// The sources that feed `inputs`, directly or through steps, each once.
fn upstream_sources(steps: &[Step], inputs: &[NodeId]) -> Vec<usize> {
    let mut seen = vec![false; steps.len()];
    let mut sources = Vec::new();
    let mut stack: Vec<NodeId> = inputs.iter().rev().copied().collect();
    while let Some(node) = stack.pop() {
        match node {
            NodeId::Source(i) if !sources.contains(&i) => sources.push(i),
            NodeId::Source(_) => {}
            NodeId::Step(i) => {
                if !std::mem::replace(&mut seen[i], true) {
                    stack.extend(steps[i].inputs.iter().rev());
                }
            }
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    use crate::topology::validate::tests::{AGGREGATE, load};

    #[test]
    fn aggregations_that_cannot_work_are_refused_with_the_reason() {
        let e =
            load(&AGGREGATE.replace("store = \"per-ticker\"", "store = \"stats\"")).unwrap_err();
        assert!(
            e.contains("the store `stats` is used by `stats` and `counts`"),
            "{e}"
        );
        let rekeyed = AGGREGATE.replace(
            "[steps.counts]\n        aggregate = \"count\"\n        store = \"per-ticker\"\n        inputs = [\"trades\"]",
            "[steps.rekey]\n        plugin = \"rekey.wasm\"\n        inputs = [\"trades\"]\n        [steps.counts]\n        aggregate = \"count\"\n        inputs = [\"rekey\"]",
        );
        assert_ne!(rekeyed, AGGREGATE);
        let e = load(&rekeyed).unwrap_err();
        assert!(
            e.contains("[steps.counts] aggregates the output of step `rekey`")
                && e.contains("repartition")
                && e.contains("declare `key = \"kept\"`"),
            "{e}"
        );
        // Through steps that keep keys, an aggregation may follow; one step
        // up the chain that may change keys is named.
        let kept = rekeyed.replace(
            "plugin = \"rekey.wasm\"",
            "plugin = \"rekey.wasm\"\n        key = \"kept\"",
        );
        let t = load(&kept).unwrap();
        assert!(t.steps.iter().any(|s| s.name == "rekey" && s.keeps_key));
        let chained = kept.replace(
            "[steps.rekey]",
            "[steps.parse]\n        plugin = \"parse.wasm\"\n        inputs = [\"trades\"]\n        [steps.rekey]",
        )
        .replace(
            "key = \"kept\"\n        inputs = [\"trades\"]",
            "key = \"kept\"\n        inputs = [\"parse\"]",
        );
        assert_ne!(chained, kept);
        let e = load(&chained).unwrap_err();
        assert!(e.contains("aggregates the output of step `parse`"), "{e}");
        let e = load(&kept.replace("key = \"kept\"", "key = \"same\"")).unwrap_err();
        assert!(e.contains("kept") && e.contains("may-change"), "{e}");
        let e = load(&AGGREGATE.replace(
            "aggregate = \"count\"",
            "aggregate = \"count\"\n        key = \"kept\"",
        ))
        .unwrap_err();
        assert!(e.contains("`key = \"kept\"` is for processors"), "{e}");
        let e = load(&AGGREGATE.replace(
            "aggregate = \"count\"",
            "aggregate = \"count\"\n        plugin = \"x.wasm\"",
        ))
        .unwrap_err();
        assert!(e.contains("has both `plugin` and `aggregate`"), "{e}");
        let e = load(&AGGREGATE.replace("aggregate = \"count\"", "")).unwrap_err();
        assert!(e.contains("[steps.counts] needs `plugin = "), "{e}");
        let e = load(&AGGREGATE.replace("restore-chunk = 500", "restore-chunk = 0")).unwrap_err();
        assert!(e.contains("`restore-chunk` must be at least 1"), "{e}");
        for mb in ["0", "15", "1048577"] {
            let text = AGGREGATE.replace("restore-chunk = 500", &format!("memory-mb = {mb}"));
            let e = load(&text).unwrap_err();
            assert!(e.contains("`memory-mb` = "), "{e}");
            assert!(e.contains("outside 16..=1048576 (MiB)"), "{e}");
        }
    }
}
