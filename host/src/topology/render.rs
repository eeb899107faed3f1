//! Pictures of a topology: an indented text tree for the terminal, and
//! Graphviz DOT (`sluice topology p.toml --format dot | dot -Tsvg > t.svg`).

use std::fmt::Write;

use crate::window::Windows;

use super::{Aggregation, ErrorPolicy, NodeId, Operation, Step, Topology};

/// What a step does, in a few words: its plugin, or its aggregation and store.
fn describe(t: &Topology, s: &Step) -> String {
    match &s.op {
        Operation::Process(p) => p.path().display().to_string(),
        Operation::Aggregate {
            logic,
            store,
            window,
        } => {
            let logic = match logic {
                Aggregation::Plugin(p) => format!("aggregate {}", p.path().display()),
                Aggregation::Count => "count".to_owned(),
            };
            format!(
                "{logic}{}; store {store} (changelog {})",
                window.map_or(String::new(), |w| {
                    let kind = match w.windows {
                        Windows::Hopping(h) if h.size() == h.advance() => {
                            format!("tumbling {} ms", h.size())
                        }
                        Windows::Hopping(h) => {
                            format!("hopping {} ms every {} ms", h.size(), h.advance())
                        }
                        Windows::Sliding(s) => format!("sliding {} ms", s.difference()),
                        Windows::Session(s) => format!("session (gap {} ms)", s.gap()),
                    };
                    format!(
                        " per {kind} window, grace {} ms, emit {}{}",
                        w.grace,
                        match w.emit {
                            super::EmitMode::OnUpdate => "on-update",
                            super::EmitMode::OnWindowClose => "on-window-close",
                        },
                        w.idle_close.map_or(String::new(), |ms| format!(
                            ", closed after {ms} ms without input"
                        ))
                    )
                }),
                crate::state::changelog::topic(&t.application_id, store)
            )
        }
    }
}

/// An indented tree, one line per edge, readable in a terminal.
pub fn text(tp: &Topology) -> String {
    let t = tp;
    let mut out = String::new();
    let mut shown = vec![false; t.steps.len()];
    let p = &t.processing;
    let _ = writeln!(
        out,
        "application.id = {}  (max.batch.records = {}, commit.interval.ms = {}, num.stream.threads = {}{})",
        t.application_id,
        p.max_batch_records,
        p.commit_interval.as_millis(),
        p.num_stream_threads,
        match p.guarantee {
            super::Guarantee::AtLeastOnce => "",
            super::Guarantee::ExactlyOnce => ", processing.guarantee = exactly-once",
        }
    );
    for (i, s) in t.sources.iter().enumerate() {
        let table = match &s.table {
            None => String::new(),
            Some(t) => format!(
                "  [table, {} rows; store {} (changelog {})]",
                match t.format {
                    super::TableFormat::Plain => "plain",
                    super::TableFormat::Debezium => "debezium",
                },
                t.store,
                crate::state::changelog::topic(&tp.application_id, &t.store)
            ),
        };
        let _ = writeln!(out, "source {} <- topic {}{table}", s.name, s.topic);
        tree(t, NodeId::Source(i), 1, &mut shown, &mut out);
    }
    let policy = |p: ErrorPolicy| match p {
        ErrorPolicy::Fail => "fail".to_owned(),
        ErrorPolicy::Skip => "skip".to_owned(),
        ErrorPolicy::Dlq => format!("dlq -> topic {}", t.errors.dlq_topic),
    };
    let _ = writeln!(out, "rejected records: {}", policy(t.errors.rejected));
    let _ = writeln!(out, "trapped records:  {}", policy(t.errors.trap));
    if t.errors.refused != t.errors.rejected {
        let _ = writeln!(out, "refused outputs:  {}", policy(t.errors.refused));
    }
    out
}

/// Prints what `node` feeds, below it. A step fed by several nodes is
/// drawn in full under the first, and named (`shown above`) under the
/// others, so the picture grows with the edges, not with the paths.
fn tree(t: &Topology, node: NodeId, depth: usize, shown: &mut [bool], out: &mut String) {
    let pad = "    ".repeat(depth);
    for step in t.consumers_of(node) {
        let s = &t.steps[step];
        if std::mem::replace(&mut shown[step], true) {
            let _ = writeln!(out, "{pad}└─> step {} (shown above)", s.name);
            continue;
        }
        let _ = writeln!(out, "{pad}└─> step {} [{}]", s.name, describe(t, s));
        tree(t, NodeId::Step(step), depth + 1, shown, out);
    }
    for sink in t.sinks.iter().filter(|s| s.inputs.contains(&node)) {
        let _ = writeln!(out, "{pad}└─> sink {} -> topic {}", sink.name, sink.topic);
    }
}

/// Graphviz DOT: topics are cylinders, steps are boxes.
pub fn dot(t: &Topology) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", esc(&t.application_id));
    let _ = writeln!(out, "  rankdir=LR;\n  node [fontname=\"Helvetica\"];");
    for s in &t.sources {
        let _ = writeln!(
            out,
            "  \"src:{0}\" [shape=cylinder, label=\"{1}\\n({2} {0})\"];",
            esc(&s.name),
            esc(&s.topic),
            if s.table.is_some() { "table" } else { "source" }
        );
        if let Some(table) = &s.table {
            let _ = writeln!(
                out,
                "  \"store:{0}\" [shape=folder, label=\"store {0}\\n(RocksDB + changelog)\"];\n  \"src:{1}\" -> \"store:{0}\" [style=dotted];",
                esc(&table.store),
                esc(&s.name)
            );
        }
    }
    for s in &t.steps {
        let _ = writeln!(
            out,
            "  \"step:{0}\" [shape=box, style=rounded, label=\"{0}\\n{1}\"];",
            esc(&s.name),
            esc(&describe(t, s))
        );
        if let Some(store) = s.store() {
            let _ = writeln!(
                out,
                "  \"store:{0}\" [shape=folder, label=\"store {0}\\n(RocksDB + changelog)\"];\n  \"step:{1}\" -> \"store:{0}\" [dir=both, style=dotted];",
                esc(store),
                esc(&s.name)
            );
        }
    }
    for s in &t.sinks {
        let _ = writeln!(
            out,
            "  \"sink:{0}\" [shape=cylinder, label=\"{1}\\n(sink {0})\"];",
            esc(&s.name),
            esc(&s.topic)
        );
    }
    let id = |n: NodeId| match n {
        NodeId::Source(i) => format!("src:{}", esc(&t.sources[i].name)),
        NodeId::Step(i) => format!("step:{}", esc(&t.steps[i].name)),
    };
    for (i, s) in t.steps.iter().enumerate() {
        for &input in &s.inputs {
            let _ = writeln!(out, "  \"{}\" -> \"{}\";", id(input), id(NodeId::Step(i)));
        }
    }
    for s in &t.sinks {
        for &input in &s.inputs {
            let _ = writeln!(out, "  \"{}\" -> \"sink:{}\";", id(input), esc(&s.name));
        }
    }
    if t.uses_dlq() {
        let _ = writeln!(
            out,
            "  \"dlq\" [shape=cylinder, style=dashed, label=\"{}\\n(dead letters)\"];",
            esc(&t.errors.dlq_topic)
        );
        for s in &t.steps {
            let _ = writeln!(
                out,
                "  \"step:{}\" -> \"dlq\" [style=dashed];",
                esc(&s.name)
            );
        }
    }
    out.push_str("}\n");
    out
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::pipeline_file::PipelineFile;
    use std::path::Path;

    fn topology() -> Topology {
        let text = r#"
            application.id = "shop"
            [sources.orders]
            [steps.filter]
            plugin = "f.wasm"
            inputs = ["orders"]
            [steps.enrich]
            plugin = "e.wasm"
            inputs = ["filter"]
            [sinks.alerts]
            inputs = ["enrich", "filter"]
        "#;
        let path = Path::new("p.toml");
        Topology::from_file(path, PipelineFile::parse(path, text).unwrap()).unwrap()
    }

    #[test]
    fn text_tree_shows_every_edge() {
        let t = text(&topology());
        let expected = "\
application.id = shop  (max.batch.records = 500, commit.interval.ms = 1000, num.stream.threads = 1)
source orders <- topic orders
    └─> step filter [f.wasm]
        └─> step enrich [e.wasm]
            └─> sink alerts -> topic alerts
        └─> sink alerts -> topic alerts
rejected records: dlq -> topic shop-dlq
trapped records:  fail
";
        assert_eq!(t, expected);
    }

    #[test]
    fn dot_has_nodes_edges_and_dead_letters() {
        let d = dot(&topology());
        for line in [
            "\"src:orders\" -> \"step:filter\";",
            "\"step:filter\" -> \"step:enrich\";",
            "\"step:enrich\" -> \"sink:alerts\";",
            "\"step:filter\" -> \"sink:alerts\";",
            "\"step:enrich\" -> \"dlq\" [style=dashed];",
        ] {
            assert!(d.contains(line), "missing {line} in\n{d}");
        }
        assert!(d.starts_with("digraph \"shop\" {") && d.ends_with("}\n"));
    }
}
