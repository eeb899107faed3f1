//! Validation: a parsed pipeline file becomes a [`Topology`] in named
//! steps, each in a file of its own: names → [`processing`] → sources →
//! steps (with their [`windowing`] and the stores they own, [`state`]) →
//! sinks → the `[state]` settings → every step feeds something. The first
//! refusal is returned, naming the section and key.

mod foreign_key;
mod join;
mod names;
mod processing;
pub mod repartition;
mod sinks;
mod sources;
mod state;
mod steps;
mod windowing;

use std::path::Path;

use super::graph::topological_order;
use super::pipeline_file::{PipelineFile, flatten};
use super::{Errors, NodeId, Source, Topology};
use crate::error::PipelineError;
use names::{Nodes, check_name};

impl Topology {
    /// Reads and validates a pipeline file.
    pub fn load(path: &Path) -> Result<Topology, PipelineError> {
        let file = PipelineFile::read(path)?;
        Self::from_file(path, file)
    }

    /// Validates a parsed pipeline file.
    pub fn from_file(path: &Path, file: PipelineFile) -> Result<Topology, PipelineError> {
        let invalid = |message: String| PipelineError::Invalid {
            file: path.to_owned(),
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let app = file.application.id.trim().to_owned();
        check_name(&app).map_err(|m| invalid(format!("`application.id` {m}")))?;
        let processing = processing::parse_processing(&file.processing).map_err(invalid)?;
        let kafka = flatten(&file.kafka, "[kafka]")
            .map_err(invalid)?
            .into_iter()
            .map(|(k, v)| (k, v.to_text()))
            .collect();
        let dlq_topic = file
            .errors
            .dlq_topic
            .clone()
            .unwrap_or_else(|| format!("{app}-dlq"));
        check_name(&dlq_topic).map_err(|m| invalid(format!("[errors] `dlq-topic` {m}")))?;

        let kinds = names::node_kinds(&file).map_err(invalid)?;
        let mut sources = sources::sources(&file.sources, base).map_err(invalid)?;
        names::inputs_once(&file).map_err(invalid)?;
        repartition::stray_partitions(&file.steps).map_err(invalid)?;
        // Repartition steps are in the order too: a cycle through a
        // repartition topic would loop records for ever.
        let order = topological_order(&file.steps, &kinds).map_err(invalid)?;
        let (order, declared) = repartition::split_order(&file.steps, order);
        sources
            .extend(repartition::declared_sources(&app, &file.steps, &declared).map_err(invalid)?);
        let nodes = Nodes::new(&sources, &order, &kinds);
        let cx = steps::Context {
            application_id: &app,
            sources: &sources,
            kinds: &kinds,
            nodes: &nodes,
            base,
        };
        let validated = steps::steps(&file.steps, &order, cx).map_err(invalid)?;
        let mut sinks = sinks::sinks(&file.sinks, &sources, &nodes).map_err(invalid)?;
        sinks.extend(
            repartition::declared_sinks(&app, &file.steps, &declared, &nodes).map_err(invalid)?,
        );
        sinks.extend(validated.sinks);
        sources.extend(validated.sources);
        dead_letters_are_not_read(&dlq_topic, &sources).map_err(invalid)?;
        let state = state::settings(&file.state, base).map_err(invalid)?;

        let topology = Topology {
            file: path.to_owned(),
            application_id: app,
            topic_prefixes: None,
            tenant: None,
            processing,
            errors: Errors {
                rejected: file.errors.rejected,
                trap: file.errors.trap,
                refused: file.errors.refused.unwrap_or(file.errors.rejected),
                dlq_named: file.errors.dlq_topic.is_some(),
                dlq_topic,
            },
            sources,
            steps: validated.steps,
            sinks,
            subtopologies: Vec::new(),
            kafka,
            state,
        };
        feeds_something(&topology).map_err(invalid)?;
        global_tables_are_joined(&topology).map_err(invalid)?;
        Ok(topology.split())
    }
}

/// The dead-letter topic is not a source topic: dead letters would be
/// read again.
fn dead_letters_are_not_read(dlq_topic: &str, sources: &[Source]) -> Result<(), String> {
    match sources.iter().find(|s| s.topic == dlq_topic) {
        Some(s) => Err(format!(
            "[errors] `dlq-topic` `{dlq_topic}` is the topic of source `{}`: dead letters would be read again and loop; name another topic",
            s.name
        )),
        None => Ok(()),
    }
}

/// A global table is read only by the joins that look it up: it is in no
/// task, so no step or sink can take its records as input.
fn global_tables_are_joined(topology: &Topology) -> Result<(), String> {
    for i in topology.global_tables() {
        let node = NodeId::Source(i);
        let reader = (topology.steps.iter())
            .find(|s| s.inputs.contains(&node))
            .map(|s| format!("[steps.{}]", s.name))
            .or_else(|| {
                (topology.sinks.iter())
                    .find(|s| s.inputs.contains(&node))
                    .map(|s| format!("[sinks.{}]", s.name))
            });
        if let Some(reader) = reader {
            return Err(format!(
                "{reader} reads the global table `{}`; a global table is only looked up by joins (`inputs = [stream, \"{}\"]` with `join`). Without `global = true` it is a table like any other",
                topology.sources[i].name, topology.sources[i].name
            ));
        }
    }
    Ok(())
}

/// Every step feeds a step or a sink: a step whose output goes nowhere is
/// almost certainly a mistake. So does every repartition step.
fn feeds_something(topology: &Topology) -> Result<(), String> {
    for (i, source) in topology.sources.iter().enumerate() {
        let read = topology.consumers_of(NodeId::Source(i)).next().is_some()
            || (topology.sinks.iter()).any(|s| s.inputs.contains(&NodeId::Source(i)));
        if source.repartition.is_some() && !read {
            return Err(format!(
                "[steps.{}] feeds nothing: add it to the `inputs` of a step or sink",
                source.name
            ));
        }
    }
    for (i, step) in topology.steps.iter().enumerate() {
        if topology.consumers_of(NodeId::Step(i)).next().is_none()
            && !topology
                .sinks
                .iter()
                .any(|s| s.inputs.contains(&NodeId::Step(i)))
        {
            return Err(format!(
                "[steps.{}] feeds nothing: add it to the `inputs` of a step or sink",
                step.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::topology::{Aggregation, Guarantee, Operation, PluginRef, StoreKind, render};

    /// Validates pipeline text, as the file `/p/pipeline.toml`; a refusal
    /// as its message.
    pub(super) fn load(text: &str) -> Result<Topology, String> {
        let path = Path::new("/p/pipeline.toml");
        PipelineFile::parse(path, text)
            .and_then(|f| Topology::from_file(path, f))
            .map_err(|e| e.to_string())
    }

    const BRANCHING: &str = r#"
        application.id = "app"
        [processing]
        max.batch.records = 64
        commit.interval.ms = 250
        [sources.in]
        topic = "input"
        partitions = 3
        [steps.b]
        plugin = "b.wasm"
        inputs = ["a"]
        [steps.a]
        plugin = "../plugins/a"
        inputs = ["in"]
        config.min.amount = 10
        [steps.c]
        plugin = "c.wasm"
        inputs = ["a"]
        [sinks.out1]
        inputs = ["b"]
        [sinks.out2]
        topic = "second"
        inputs = ["c", "in"]
    "#;

    #[test]
    fn branching_dag_is_ordered_and_resolved() {
        let t = load(BRANCHING).unwrap();
        assert_eq!(t.processing.max_batch_records, 64);
        assert_eq!(t.processing.commit_interval, Duration::from_millis(250));
        assert_eq!(t.processing.guarantee, Guarantee::AtLeastOnce);
        let eos = load(&BRANCHING.replace(
            "max.batch.records = 64",
            "processing.guarantee = \"exactly-once\"",
        ))
        .unwrap();
        assert_eq!(eos.processing.guarantee, Guarantee::ExactlyOnce);
        let e = load(&BRANCHING.replace(
            "max.batch.records = 64",
            "processing.guarantee = \"exactly_once_v2\"",
        ))
        .unwrap_err();
        assert!(e.contains("\"at-least-once\" or \"exactly-once\""), "{e}");
        let names: Vec<_> = t.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names[0], "a",
            "a feeds b and c, so it comes first: {names:?}"
        );
        assert_eq!(
            t.steps[0].op,
            Operation::Process(PluginRef::Crate(PathBuf::from("/p/../plugins/a")))
        );
        assert_eq!(
            t.steps[0].config,
            vec![("min.amount".to_string(), "10".to_string())]
        );
        assert_eq!(t.sinks[1].topic, "second");
        assert_eq!(t.sinks[1].inputs.len(), 2);
        assert_eq!(t.errors.dlq_topic, "app-dlq");
        assert_eq!(t.output_topics(), vec!["app-dlq", "out1", "second"]);
    }

    #[test]
    fn semantic_errors_name_the_section_and_key() {
        let cases = [
            (
                BRANCHING.replace("inputs = [\"c\", \"in\"]", "inputs = [\"zz\"]"),
                "[sinks.out2] `inputs` names `zz`",
            ),
            (
                BRANCHING
                    .replace(
                        "inputs = [\"a\"]\n        [steps.a]",
                        "inputs = [\"c\"]\n        [steps.a]",
                    )
                    .replace(
                        "plugin = \"c.wasm\"\n        inputs = [\"a\"]",
                        "plugin = \"c.wasm\"\n        inputs = [\"b\"]",
                    ),
                "form a cycle",
            ),
            (
                BRANCHING.replace("max.batch.records = 64", "max.batch.records = 0"),
                "`max.batch.records` must be an integer from 1",
            ),
            (
                BRANCHING.replace("max.batch.records = 64", "max.batch.recs = 6"),
                "unknown setting `max.batch.recs`",
            ),
            (
                BRANCHING.replace("application.id = \"app\"", "application.id = \"my app\""),
                "`application.id` `my app` contains ' '",
            ),
            (
                BRANCHING.replace("topic = \"second\"", "topic = \"input\""),
                "also a source topic",
            ),
            (
                BRANCHING.replace("inputs = [\"b\"]", "inputs = [\"in\"]"),
                "[steps.b] feeds nothing",
            ),
            (
                BRANCHING.replace("[sinks.out1]", "[sinks.a]"),
                "used by a step and a sink",
            ),
        ];
        for (text, expected) in cases {
            let e = load(&text).unwrap_err();
            assert!(e.contains(expected), "expected {expected:?} in: {e}");
            assert!(e.contains("/p/pipeline.toml"), "{e}");
        }
    }

    /// Two aggregations of one source: a plugin and the built-in count.
    pub(super) const AGGREGATE: &str = r#"
        application.id = "app"
        [state]
        dir = "state"
        store = "memory"
        restore-chunk = 500
        [sources.trades]
        partitions = 3
        [steps.stats]
        aggregate = "../plugins/stock-stats"
        inputs = ["trades"]
        [steps.counts]
        aggregate = "count"
        store = "per-ticker"
        inputs = ["trades"]
        [sinks.out]
        inputs = ["stats", "counts"]
    "#;

    #[test]
    fn aggregations_name_their_stores_and_state_settings_resolve() {
        let t = load(AGGREGATE).unwrap();
        let mut stores: Vec<(&str, &str)> = t
            .stores()
            .map(|(store, node)| (store, t.node_name(node)))
            .collect();
        stores.sort();
        assert_eq!(stores, vec![("per-ticker", "counts"), ("stats", "stats")]);
        assert!(t.is_stateful());
        let step = |name: &str| t.steps.iter().find(|s| s.name == name).unwrap();
        assert_eq!(
            step("stats").op,
            Operation::Aggregate {
                logic: Aggregation::Plugin(PluginRef::Crate(PathBuf::from(
                    "/p/../plugins/stock-stats"
                ))),
                store: "stats".into(),
                window: None,
            }
        );
        assert!(step("counts").plugin().is_none(), "the count has no plugin");
        assert_eq!(t.state.dir, PathBuf::from("/p/state"));
        assert_eq!(t.state.kind, StoreKind::Memory);
        assert_eq!(t.state.restore_chunk, 500);
        assert!(!load(BRANCHING).unwrap().is_stateful());
    }

    const SMALL: &str = r#"
        application.id = "app"
        [sources.in]
        topic = "input"
        [steps.a]
        plugin = "a.wasm"
        inputs = ["in"]
        [sinks.out]
        inputs = ["a"]
    "#;

    #[test]
    fn settings_that_would_loop_double_or_escape_are_refused_by_name() {
        let e = load(&SMALL.replace("inputs = [\"in\"]", "inputs = [\"in\", \"in\"]")).unwrap_err();
        assert!(e.contains("[steps.a] `inputs` names `in` twice"), "{e}");
        let e = load(&SMALL.replace("inputs = [\"a\"]", "inputs = [\"a\", \"a\"]")).unwrap_err();
        assert!(e.contains("[sinks.out] `inputs` names `a` twice"), "{e}");
        assert!(!e.contains("cycle"), "{e}");
        let e = load(&SMALL.replace(
            "application.id = \"app\"",
            "application.id = \"app\"\n[errors]\ndlq-topic = \"input\"",
        ))
        .unwrap_err();
        assert!(
            e.contains("`dlq-topic` `input` is the topic of source `in`"),
            "{e}"
        );
        for id in [".", ".."] {
            let e = load(&SMALL.replace("\"app\"", &format!("\"{id}\""))).unwrap_err();
            assert!(e.contains("must not be"), "{e}");
        }
        let e = load(&SMALL.replace(
            "topic = \"input\"",
            "topic = \"input\"\npartitions = 2147483647",
        ))
        .unwrap_err();
        assert!(e.contains("must be from 1 to 1024, got 2147483647"), "{e}");
        let long = "x".repeat(5 << 20);
        let e = load(&SMALL.replace("\"app\"", &format!("\"{long}\""))).unwrap_err();
        assert!(
            e.len() < 400,
            "a 5 MB application.id is not echoed: {} bytes",
            e.len()
        );
    }

    /// Pipelines of `levels` rungs, each step reading both steps of the
    /// rung before: 2^levels paths from the source to the sink.
    fn ladder(levels: usize) -> String {
        let mut text =
            String::from("application.id = \"ladder\"\n[sources.in]\ntopic = \"input\"\n");
        for level in 0..levels {
            for side in ["l", "r"] {
                let inputs = if level == 0 {
                    "\"in\"".to_owned()
                } else {
                    format!("\"l{}\", \"r{}\"", level - 1, level - 1)
                };
                text += &format!(
                    "[steps.{side}{level}]\nplugin = \"p.wasm\"\nkey = \"kept\"\ninputs = [{inputs}]\n"
                );
            }
        }
        text += &format!(
            "[steps.total]\naggregate = \"count\"\ninputs = [\"l{0}\", \"r{0}\"]\n[sinks.out]\ninputs = [\"total\"]\n",
            levels - 1
        );
        text
    }

    /// Runs `f` on a thread and waits at most `limit` for it (a test that
    /// would otherwise never end, if the work were exponential).
    fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(limit)
            .expect("finished in time: validation and rendering must be linear")
    }

    #[test]
    fn validation_and_pictures_grow_with_steps_and_edges_not_paths() {
        // 2^300 paths: only linear work finishes.
        let (topology, text, dot) = within(Duration::from_secs(60), || {
            let t = load(&ladder(300)).unwrap();
            let text = render::text(&t);
            let dot = render::dot(&t);
            (t, text, dot)
        });
        assert_eq!(topology.steps.len(), 601);
        let edges: usize = topology.steps.iter().map(|s| s.inputs.len()).sum::<usize>() + 1;
        assert!(
            text.lines().count() <= edges + 10,
            "{} lines",
            text.lines().count()
        );
        assert!(dot.lines().count() <= 2 * (edges + topology.steps.len()) + 10);
        assert!(text.contains("step r5 (shown above)"));
    }

    /// A small xorshift generator: the random pipelines are the same on
    /// every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// A random pipeline: random DAG shape (shared inputs, dangling and
    /// duplicate names, cycles), random window settings (some absurd).
    fn random_pipeline(rng: &mut Rng) -> String {
        let sources = 1 + rng.below(3) as usize;
        let steps = rng.below(40) as usize;
        let mut text = String::from("application.id = \"fuzz\"\n");
        for i in 0..sources {
            text += &format!("[sources.s{i}]\ntopic = \"t{i}\"\n");
            if rng.below(20) == 0 {
                text += "partitions = 5000\n";
            }
        }
        let durations = [
            "1000",
            "\"5m\"",
            "\"1h\"",
            "\"1d\"",
            "60000",
            "\"10s\"",
            "\"30m\"",
            "\"2h\"", // sane
            "1",
            "0",
            "-3",
            "9223372036854775807",
            "\"99999999999d\"", // not
        ];
        for i in 0..steps {
            let mut inputs: Vec<String> = (0..1 + rng.below(3))
                .map(|_| match rng.below(20) {
                    // Now and then a name that is not there, or a later
                    // step (maybe a cycle).
                    0 => "\"nowhere\"".to_owned(),
                    1 => format!("\"x{}\"", rng.below(steps as u64)),
                    _ => {
                        let pick = rng.below((sources + i) as u64) as usize;
                        if pick < sources {
                            format!("\"s{pick}\"")
                        } else {
                            format!("\"x{}\"", pick - sources)
                        }
                    }
                })
                .collect();
            inputs.sort();
            inputs.dedup();
            if rng.below(400) == 0 {
                inputs.push(inputs[0].clone());
            }
            text += &format!("[steps.x{i}]\ninputs = [{}]\n", inputs.join(", "));
            match rng.below(4) {
                0 | 1 => text += "plugin = \"p.wasm\"\nkey = \"kept\"\n",
                2 => text += "plugin = \"p.wasm\"\n",
                _ => {
                    text += "aggregate = \"count\"\n";
                    let d = |rng: &mut Rng| durations[rng.below(durations.len() as u64) as usize];
                    let window = match rng.below(5) {
                        0 => format!("type = \"tumbling\", size = {}", d(rng)),
                        1 => format!(
                            "type = \"hopping\", size = {}, advance = {}",
                            d(rng),
                            d(rng)
                        ),
                        2 => format!(
                            "type = \"sliding\", difference = {}, grace = {}",
                            d(rng),
                            d(rng)
                        ),
                        3 => format!("type = \"session\", gap = {}", d(rng)),
                        _ => String::new(),
                    };
                    if !window.is_empty() {
                        text += &format!("window = {{ {window} }}\n");
                    }
                }
            }
        }
        // The sink reads every step (mostly; a step feeding nothing is
        // refused).
        let fed: Vec<String> = (0..steps)
            .filter(|_| rng.below(50) != 0)
            .map(|i| format!("\"x{i}\""))
            .collect();
        let fed = if fed.is_empty() {
            "\"s0\"".to_owned()
        } else {
            fed.join(", ")
        };
        text += &format!("[sinks.out]\ninputs = [{fed}]\n");
        text
    }

    #[test]
    fn random_pipelines_validate_without_panicking_in_bounded_time() {
        let (valid, refused) = within(Duration::from_secs(120), || {
            let mut rng = Rng(0x5eed_cafe_f00d_d00d);
            let (mut valid, mut refused) = (0, 0);
            for _ in 0..2_000 {
                let text = random_pipeline(&mut rng);
                match load(&text) {
                    Ok(t) => {
                        valid += 1;
                        let _ = (render::text(&t), render::dot(&t));
                    }
                    Err(e) => {
                        refused += 1;
                        assert!(
                            e.len() < 2_000,
                            "a message of {} bytes for:\n{text}",
                            e.len()
                        );
                    }
                }
            }
            (valid, refused)
        });
        assert!(
            valid > 100 && refused > 500,
            "{valid} valid, {refused} refused"
        );
    }
}
