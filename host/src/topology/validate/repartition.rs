//! Repartition topics, as the pipeline file gives rise to them: declared
//! (a step with `repartition = true`) or inserted before an aggregation
//! that reads records whose keys may have changed. Either becomes a sink
//! that writes `<application.id>-<name>-repartition` and a source that
//! reads it back, named for the step, so the topic's name stays the same
//! when unrelated steps are added.

use std::collections::{BTreeMap, HashMap};

use super::names::Nodes;
use crate::time::Extractor;
use crate::topology::pipeline_file::StepDef;
use crate::topology::{MAX_PARTITIONS, NodeId, Repartition, Sink, Source};

/// The repartition topic named for `name`.
pub fn topic(application_id: &str, name: &str) -> String {
    format!("{application_id}-{name}-repartition")
}

/// Splits the topological `order` of every step into the steps that run
/// operators and the declared repartition steps.
pub(super) fn split_order(
    defs: &BTreeMap<String, StepDef>,
    order: Vec<String>,
) -> (Vec<String>, Vec<String>) {
    order.into_iter().partition(|name| !defs[name].repartition)
}

/// The sources of the declared repartition steps `names`, each checked to
/// declare nothing a repartition does not read.
pub(super) fn declared_sources(
    application_id: &str,
    defs: &BTreeMap<String, StepDef>,
    names: &[String],
) -> Result<Vec<Source>, String> {
    names
        .iter()
        .map(|name| {
            let def = &defs[name];
            only_repartition_keys(name, def)?;
            if let Some(n) = def.partitions
                && !(1..=MAX_PARTITIONS).contains(&n)
            {
                return Err(format!(
                    "[steps.{name}] `partitions` must be from 1 to {MAX_PARTITIONS}, got {n}"
                ));
            }
            Ok(source(
                name,
                topic(application_id, name),
                def.partitions,
                true,
            ))
        })
        .collect()
}

/// A declared repartition step has inputs, and perhaps `partitions`.
fn only_repartition_keys(name: &str, def: &StepDef) -> Result<(), String> {
    let others = [
        ("plugin", def.plugin.is_some()),
        ("aggregate", def.aggregate.is_some()),
        ("store", def.store.is_some()),
        ("stores", !def.stores.is_empty()),
        ("window", def.window.is_some()),
        ("emit", def.emit.is_some()),
        ("late", def.late.is_some()),
        ("close", def.close.is_some()),
        ("key", def.key.is_some()),
        ("join", def.join.is_some()),
        ("joiner", def.joiner.is_some()),
        ("wait-for-table", def.wait_for_table.is_some()),
        ("key-field", def.key_field.is_some()),
        ("foreign-key", def.foreign_key.is_some()),
        ("key-plugin", def.key_plugin.is_some()),
        ("join-window", def.join_window.is_some()),
        ("join-grace", def.join_grace.is_some()),
        ("config", !def.config.is_empty()),
    ];
    match others.iter().find(|(_, set)| *set) {
        Some((key, _)) => Err(format!(
            "[steps.{name}] has `repartition = true` and `{key}`; a repartition step takes only `inputs` and `partitions`"
        )),
        None => Ok(()),
    }
}

/// `partitions` on a step that is not a repartition step.
pub(super) fn stray_partitions(defs: &BTreeMap<String, StepDef>) -> Result<(), String> {
    match defs
        .iter()
        .find(|(_, d)| !d.repartition && d.partitions.is_some())
    {
        Some((name, _)) => Err(format!(
            "[steps.{name}] has `partitions`, which only a repartition step (`repartition = true`) reads"
        )),
        None => Ok(()),
    }
}

/// The sinks of the declared repartition steps `names`, fed by their
/// `inputs`.
pub(super) fn declared_sinks(
    application_id: &str,
    defs: &BTreeMap<String, StepDef>,
    names: &[String],
    nodes: &Nodes,
) -> Result<Vec<Sink>, String> {
    names
        .iter()
        .map(|name| {
            Ok(Sink {
                name: name.clone(),
                topic: topic(application_id, name),
                inputs: nodes.resolve(&format!("[steps.{name}]"), &defs[name].inputs)?,
                repartition: true,
            })
        })
        .collect()
}

/// The repartition Sluice inserts before stateful step `step`, which read
/// `inputs`: a source named `<step>-repartition` (its new input) and the
/// sink that writes its topic. `kinds` holds the names already taken.
pub(super) fn inserted(
    application_id: &str,
    step: &str,
    inputs: Vec<NodeId>,
    kinds: &HashMap<&str, &str>,
) -> Result<(Source, Sink), String> {
    let name = format!("{step}-repartition");
    if let Some(kind) = kinds.get(name.as_str()) {
        return Err(format!(
            "[steps.{step}] needs a repartition topic, whose node is named `{name}`, but a {kind} has that name; rename the {kind}"
        ));
    }
    let topic = topic(application_id, step);
    let sink = Sink {
        name: name.clone(),
        topic: topic.clone(),
        inputs,
        repartition: true,
    };
    Ok((source(&name, topic, None, false), sink))
}

/// The source that reads a repartition topic: event times are the
/// records' timestamps, which the writing side set to the event times.
pub(super) fn source(name: &str, topic: String, partitions: Option<i32>, explicit: bool) -> Source {
    Source {
        name: name.to_owned(),
        topic,
        partitions: partitions.unwrap_or(1),
        table: None,
        timestamp: Extractor::Record,
        timestamp_config: Vec::new(),
        invalid_timestamp: Default::default(),
        repartition: Some(Repartition {
            partitions,
            explicit,
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::topology::NodeId;
    use crate::topology::validate::tests::load;

    const DECLARED: &str = r#"
        application.id = "shop"
        [sources.orders]
        partitions = 3
        [steps.rekey]
        plugin = "rekey.wasm"
        inputs = ["orders"]
        [steps.by-customer]
        repartition = true
        partitions = 1
        inputs = ["rekey"]
        [steps.counts]
        aggregate = "count"
        inputs = ["by-customer"]
        [sinks.out]
        inputs = ["counts"]
    "#;

    #[test]
    fn a_repartition_step_is_a_sink_and_a_source_of_one_topic() {
        let t = load(DECLARED).unwrap();
        let source = t
            .sources
            .iter()
            .position(|s| s.name == "by-customer")
            .unwrap();
        assert_eq!(t.sources[source].topic, "shop-by-customer-repartition");
        assert_eq!(t.sources[source].partitions, 1);
        let r = t.sources[source].repartition.as_ref().unwrap();
        assert!(r.explicit && r.partitions == Some(1));
        let counts = t.steps.iter().find(|s| s.name == "counts").unwrap();
        assert_eq!(
            counts.inputs,
            [NodeId::Source(source)],
            "no second repartition"
        );
        let sink = t.sinks.iter().find(|s| s.repartition).unwrap();
        assert_eq!(
            (sink.name.as_str(), sink.topic.as_str()),
            ("by-customer", "shop-by-customer-repartition")
        );
        assert_eq!(t.node_name(sink.inputs[0]), "rekey");
        assert_eq!(t.steps.len(), 2, "a repartition step runs no operator");
        assert_eq!(t.subtopologies.len(), 2);
        assert_eq!(
            t.output_topics(),
            vec!["out", "shop-dlq"],
            "its topic is read, not an output"
        );
        // Without `partitions`: the largest count of the sources upstream.
        let t = load(&DECLARED.replace("partitions = 1\n", "")).unwrap();
        assert_eq!(
            t.sources
                .iter()
                .find(|s| s.name == "by-customer")
                .unwrap()
                .partitions,
            3
        );
    }

    #[test]
    fn repartition_steps_that_cannot_work_are_refused_naming_the_key() {
        let cases = [
            (
                DECLARED.replace(
                    "partitions = 1\n",
                    "partitions = 1\n        plugin = \"x.wasm\"\n",
                ),
                "[steps.by-customer] has `repartition = true` and `plugin`",
            ),
            (
                DECLARED.replace("partitions = 1\n", "partitions = 0\n"),
                "[steps.by-customer] `partitions` must be from 1 to 1024, got 0",
            ),
            (
                DECLARED.replace(
                    "aggregate = \"count\"",
                    "aggregate = \"count\"\n        partitions = 2",
                ),
                "[steps.counts] has `partitions`, which only a repartition step",
            ),
            (
                DECLARED.replace("inputs = [\"by-customer\"]", "inputs = [\"rekey\"]"),
                "[steps.by-customer] feeds nothing",
            ),
            (
                DECLARED.replace(
                    "inputs = [\"orders\"]",
                    "inputs = [\"orders\", \"by-customer\"]",
                ),
                "form a cycle",
            ),
            (
                DECLARED.replace(
                    "[sinks.out]",
                    "[sinks.out]\n        topic = \"shop-by-customer-repartition\"",
                ),
                "which is also a source topic",
            ),
        ];
        for (text, expected) in cases {
            let e = load(&text).unwrap_err();
            assert!(e.contains(expected), "expected {expected:?} in: {e}");
        }
    }
}
