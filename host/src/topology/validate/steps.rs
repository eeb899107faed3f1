//! `[steps.<name>]`: processors (`plugin`) and aggregations (`aggregate`),
//! in topological order, with the keys each kind may have. An aggregation
//! after a step that may change keys reads a repartition topic, inserted
//! here ([`super::repartition::inserted`]); an aggregation over a table is
//! refused (its records replace each other, which needs a subtractor).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::names::{Nodes, check_name};
use super::state::Owners;
use super::windowing::windowing;
use super::{foreign_key, join, repartition};
use crate::topology::pipeline_file::{KeyPolicy, StepDef, flatten};
use crate::topology::{
    Aggregation, Join, JoinWith, NodeId, Operation, PluginRef, Sink, Source, Step,
};

/// What [`steps`] found: the steps, and the repartitions it inserted.
pub(super) struct Validated {
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// The sources of inserted repartition topics, to append to the
    /// sources (their `NodeId`s count from the end of `sources`).
    pub sources: Vec<Source>,
    /// The sinks of inserted repartition topics.
    pub sinks: Vec<Sink>,
}

/// Where [`steps`] reads the pipeline from.
pub(super) struct Context<'a> {
    /// `application.id`, the prefix of repartition topics.
    pub application_id: &'a str,
    /// The sources, declared repartition steps' included.
    pub sources: &'a [Source],
    /// Every node name, by kind.
    pub kinds: &'a HashMap<&'a str, &'a str>,
    /// Names to nodes.
    pub nodes: &'a Nodes<'a>,
    /// The directory of the pipeline file, against which plugin paths
    /// resolve.
    pub base: &'a Path,
}

/// Every step, in `order` (the topological order of `defs`).
pub(super) fn steps(
    defs: &BTreeMap<String, StepDef>,
    order: &[String],
    cx: Context<'_>,
) -> Result<Validated, String> {
    let mut steps = Steps {
        owners: Owners::of_tables(cx.sources)?,
        cx,
        done: Vec::with_capacity(order.len()),
        sources: Vec::new(),
        sinks: Vec::new(),
        foreign_keys: Vec::new(),
    };
    for name in order {
        let step = steps.step(name, &defs[name])?;
        steps.done.push(step);
    }
    // The parts of foreign-key joins read sources only: they come last.
    for parts in std::mem::take(&mut steps.foreign_keys) {
        let (added, sinks) = foreign_key::steps_and_sinks(&parts, steps.done.len());
        steps.done.extend(added);
        steps.sinks.extend(sinks);
    }
    Ok(Validated {
        steps: steps.done,
        sources: steps.sources,
        sinks: steps.sinks,
    })
}

/// The steps validated so far, and what validating the next one reads.
struct Steps<'a> {
    cx: Context<'a>,
    /// The owner of each store so far.
    owners: Owners<'a>,
    /// The steps before the next, in order.
    done: Vec<Step>,
    /// Repartitions inserted so far.
    sources: Vec<Source>,
    sinks: Vec<Sink>,
    /// The parts of foreign-key joins, added once every step is known.
    foreign_keys: Vec<foreign_key::Parts>,
}

impl<'a> Steps<'a> {
    /// The step `name`, declared by `def`.
    fn step(&mut self, name: &'a str, def: &StepDef) -> Result<Step, String> {
        let owner = format!("[steps.{name}]");
        let mut inputs = self.cx.nodes.resolve(&owner, &def.inputs)?;
        let op = self.operation(name, &owner, def, &mut inputs)?;
        keys_fit(&owner, def, &op)?;
        let config = flatten(&def.config, &format!("{owner} config"))?
            .into_iter()
            .map(|(k, v)| (k, v.to_text()))
            .collect();
        let state = self
            .owners
            .declare(&owner, name, &def.stores, self.cx.sources)?;
        inputs = self.repartitions(name, &op, inputs)?;
        // A join's output has its stream record's key.
        let keeps_key = def.key == Some(KeyPolicy::Kept) || matches!(op, Operation::Join(_));
        Ok(Step {
            name: name.to_owned(),
            op,
            state,
            inputs,
            config,
            keeps_key,
        })
    }

    /// What step `name` (`owner` in messages) does: a join (whose inputs
    /// it may change: a table is looked up, not read), a processor or an
    /// aggregation.
    fn operation(
        &mut self,
        name: &'a str,
        owner: &str,
        def: &StepDef,
        inputs: &mut Vec<NodeId>,
    ) -> Result<Operation, String> {
        let join_keys = [
            ("joiner", def.joiner.is_some()),
            ("wait-for-table", def.wait_for_table.is_some()),
            ("key-field", def.key_field.is_some()),
            ("join-grace", def.join_grace.is_some()),
            ("foreign-key", def.foreign_key.is_some()),
            ("key-plugin", def.key_plugin.is_some()),
        ];
        if let (Some((key, _)), None) = (join_keys.iter().find(|(_, set)| *set), def.join) {
            return Err(format!(
                "{owner} has `{key}` but no `join`; `joiner`, `wait-for-table`, `key-field`, `key-plugin`, `join-grace` and `foreign-key` are for join steps"
            ));
        }
        if let Some(kind) = def.join {
            let (join, reads) = join::join(
                (owner, name),
                def,
                kind,
                inputs,
                self.cx.sources,
                self.cx.base,
            )?;
            *inputs = reads;
            if let JoinWith::Stream { store, .. }
            | JoinWith::Tables { store }
            | JoinWith::ForeignKey { store, .. } = &join.with
            {
                self.owners.claim(store, name)?;
            }
            if let JoinWith::ForeignKey { .. } = &join.with {
                let first = self.cx.sources.len() + self.sources.len();
                let (sources, parts) = foreign_key::sources(
                    self.cx.application_id,
                    (name, join.kind, &join.with),
                    (inputs[0], first),
                    self.cx.kinds,
                    &mut self.owners,
                )?;
                self.sources.extend(sources);
                self.foreign_keys.push(parts);
                // The answers are its second input.
                inputs.push(NodeId::Source(first + 1));
            }
            return Ok(Operation::Join(join));
        }
        match (&def.plugin, &def.aggregate) {
            (Some(_), None) if def.store.is_some() => Err(format!(
                "{owner} has a `store` but is not an aggregation; a processor declares the stores it uses with `stores = [...]`"
            )),
            (Some(plugin), None) => Ok(Operation::Process(plugin_ref(self.cx.base, plugin))),
            (None, Some(aggregate)) => self.aggregation(name, owner, def, aggregate, inputs),
            (Some(_), Some(_)) => Err(format!(
                "{owner} has both `plugin` and `aggregate`; a step is either a processor (`plugin`) or an aggregation (`aggregate`)"
            )),
            (None, None) => Err(format!(
                "{owner} needs `plugin = \"<crate dir or .wasm>\"` (a processor), `aggregate = \"<crate dir, .wasm or count>\"` (an aggregation), `join = \"inner\" or \"left\"` (a join) or `repartition = true`"
            )),
        }
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
        if let Some(i) = upstream_sources(&self.done, inputs)
            .into_iter()
            .find(|&i| self.cx.sources.get(i).is_some_and(|s| s.table.is_some()))
        {
            return Err(format!(
                "{owner} aggregates table `{}`; a table's records replace each other, \
                 so aggregating them needs a subtractor, which Sluice does not have yet. \
                 Aggregate a stream source",
                self.cx.sources[i].name
            ));
        }
        let store = def.store.clone().unwrap_or_else(|| name.to_owned());
        check_name(&store).map_err(|m| format!("{owner} `store` {m}"))?;
        self.owners.claim(&store, name)?;
        let logic = match aggregate {
            "count" => Aggregation::Count,
            path => Aggregation::Plugin(plugin_ref(self.cx.base, Path::new(path))),
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

    /// The inputs of step `name`, doing `op`, once repartitioned where its
    /// keys may have changed: an aggregation's or a stream–table join's
    /// through one topic, each side of a stream–stream join through its
    /// own (`<name>-left`, `<name>-right`).
    fn repartitions(
        &mut self,
        name: &str,
        op: &Operation,
        inputs: Vec<NodeId>,
    ) -> Result<Vec<NodeId>, String> {
        let rekeyed: Vec<bool> = (inputs.iter())
            .map(|n| key_changer(&self.done, std::slice::from_ref(n)).is_some())
            .collect();
        match op {
            Operation::Process(_) => Ok(inputs),
            Operation::Join(Join {
                with: JoinWith::Stream { .. },
                ..
            }) => {
                let mut out = Vec::with_capacity(inputs.len());
                for ((input, side), rekeyed) in
                    inputs.into_iter().zip(["left", "right"]).zip(rekeyed)
                {
                    out.push(match rekeyed {
                        true => self.repartition_before(&format!("{name}-{side}"), vec![input])?[0],
                        false => input,
                    });
                }
                Ok(out)
            }
            _ if rekeyed.contains(&true) => self.repartition_before(name, inputs),
            _ => Ok(inputs),
        }
    }

    /// Inserts a repartition topic between `inputs` and stateful step
    /// `name`, whose new input it returns: records whose keys may have
    /// changed reach the task of their new key through it.
    fn repartition_before(
        &mut self,
        name: &str,
        inputs: Vec<NodeId>,
    ) -> Result<Vec<NodeId>, String> {
        let (source, sink) =
            repartition::inserted(self.cx.application_id, name, inputs, self.cx.kinds)?;
        let node = NodeId::Source(self.cx.sources.len() + self.sources.len());
        self.sources.push(source);
        self.sinks.push(sink);
        Ok(vec![node])
    }
}

/// The keys of `def` that only some kinds of step read are on a step of
/// that kind (`op`).
fn keys_fit(owner: &str, def: &StepDef, op: &Operation) -> Result<(), String> {
    let waiting_join = matches!(
        op,
        Operation::Join(Join {
            with: JoinWith::Stream { .. } | JoinWith::Table { grace: Some(_), .. },
            ..
        })
    );
    if def.window.is_none()
        && (def.emit.is_some() || def.late.is_some() || (def.close.is_some() && !waiting_join))
    {
        return Err(format!(
            "{owner} has `emit`, `late` or `close.idle.after`, which only a windowed aggregation (`window = {{...}}`) reads (and, for `close.idle.after`, a join of two streams or a join with `join-grace`)"
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
    Ok(())
}

/// A plugin path, resolved against `base`: a built component if it ends
/// in `.wasm`, else a crate directory.
pub(super) fn plugin_ref(base: &Path, path: &Path) -> PluginRef {
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
    use crate::topology::NodeId;
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
        // A repartition topic is inserted: `counts` reads it back.
        let t = load(&rekeyed).unwrap();
        let counts = t.steps.iter().find(|s| s.name == "counts").unwrap();
        let [NodeId::Source(i)] = counts.inputs[..] else {
            panic!("{:?}", counts.inputs)
        };
        assert_eq!(t.sources[i].name, "counts-repartition");
        assert_eq!(t.sources[i].topic, "app-counts-repartition");
        assert_eq!(t.sources[i].partitions, 3, "as its writer's sources");
        let sink = t.sinks.iter().find(|s| s.repartition).unwrap();
        assert_eq!(sink.topic, "app-counts-repartition");
        assert_eq!(t.node_name(sink.inputs[0]), "rekey");
        assert_eq!(t.subtopologies.len(), 2);
        // Through steps that keep keys, an aggregation may follow; one step
        // up the chain that may change keys is named.
        let kept = rekeyed.replace(
            "plugin = \"rekey.wasm\"",
            "plugin = \"rekey.wasm\"\n        key = \"kept\"",
        );
        let t = load(&kept).unwrap();
        assert!(t.steps.iter().any(|s| s.name == "rekey" && s.keeps_key));
        assert!(t.sources.iter().all(|s| s.repartition.is_none()));
        assert_eq!(t.subtopologies.len(), 1);
        let chained = kept.replace(
            "[steps.rekey]",
            "[steps.parse]\n        plugin = \"parse.wasm\"\n        inputs = [\"trades\"]\n        [steps.rekey]",
        )
        .replace(
            "key = \"kept\"\n        inputs = [\"trades\"]",
            "key = \"kept\"\n        inputs = [\"parse\"]",
        );
        assert_ne!(chained, kept);
        let t = load(&chained).unwrap();
        let sink = t.sinks.iter().find(|s| s.repartition).unwrap();
        assert_eq!(
            t.node_name(sink.inputs[0]),
            "rekey",
            "the repartition is just before `counts`"
        );
        let taken = chained
            .replace("[steps.parse]", "[steps.counts-repartition]")
            .replace("inputs = [\"parse\"]", "inputs = [\"counts-repartition\"]");
        let e = load(&taken).unwrap_err();
        assert!(
            e.contains("whose node is named `counts-repartition`, but a step has that name"),
            "{e}"
        );
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
