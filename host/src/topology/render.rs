//! Pictures of a topology: an indented text tree for the terminal, and
//! Graphviz DOT (`sluice topology p.toml --format dot | dot -Tsvg > t.svg`).

use std::fmt::Write;

use crate::window::Windows;

use super::{Aggregation, ErrorPolicy, NodeId, Operation, Step, Topology};

/// What a step does, in a few words: its plugin, or its aggregation and store.
fn describe(t: &Topology, s: &Step) -> String {
    match &s.op {
        Operation::Join(j) => describe_join(t, j),
        Operation::ForeignKey(part) => {
            let (what, store) = match part {
                super::ForeignKeyPart::Subscribe { field, store, .. } => (
                    format!(
                        "subscribes each left key to its foreign key ({})",
                        field.join(".")
                    ),
                    store,
                ),
                super::ForeignKeyPart::Answer { store } => (
                    "answers the subscriptions with the right table's rows".to_owned(),
                    store,
                ),
            };
            format!(
                "foreign-key join part: {what}; store {store} (changelog {})",
                crate::state::changelog::topic(&t.application_id, store)
            )
        }
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

/// A join: its kind, what it joins with, its joiner.
fn describe_join(t: &Topology, j: &super::Join) -> String {
    let kind = match j.kind {
        super::JoinKind::Inner => "inner",
        super::JoinKind::Left => "left",
        super::JoinKind::Outer => "outer",
    };
    let with = match &j.with {
        super::JoinWith::Table {
            table,
            store,
            grace,
            ..
        } => format!(
            "with table {} (store {store}){}{}",
            t.sources[*table].name,
            match t.sources[*table].table.as_ref().and_then(|s| s.history) {
                Some(_) => ", as of each record's time",
                None => "",
            },
            match grace {
                None => String::new(),
                Some(g) => format!(
                    "; records wait {} ms in store {} (changelog {}){}",
                    g.grace,
                    g.store,
                    crate::state::changelog::topic(&t.application_id, &g.store),
                    g.idle_close.map_or(String::new(), |ms| format!(
                        ", all joined after {ms} ms without input"
                    ))
                ),
            }
        ),
        super::JoinWith::Global { table, store, key } => format!(
            "with global table {} (store {store}) by {}",
            t.sources[*table].name,
            match key {
                super::GlobalKey::RecordKey => "the record's key".to_owned(),
                super::GlobalKey::Field(path) => format!("value field {}", path.join(".")),
                super::GlobalKey::Plugin(p) => format!("the key plugin {}", p.path().display()),
            }
        ),
        super::JoinWith::ForeignKey {
            table,
            field,
            store,
        } => format!(
            "with table {} by the foreign key in field {}; left rows in store {store} (changelog {})",
            t.sources[*table].name,
            field.join("."),
            crate::state::changelog::topic(&t.application_id, store)
        ),
        super::JoinWith::Tables { store } => format!(
            "of two tables; store {store} (changelog {})",
            crate::state::changelog::topic(&t.application_id, store)
        ),
        super::JoinWith::Stream { window, store, .. } => format!(
            "of two streams within {} ms before and {} ms after, grace {} ms; store {store} (changelog {})",
            window.before,
            window.after,
            window.grace,
            crate::state::changelog::topic(&t.application_id, store)
        ),
    };
    let joiner = match &j.joiner {
        super::JoinerRef::Merge => "merge".to_owned(),
        super::JoinerRef::Pair => "pair".to_owned(),
        super::JoinerRef::Plugin(p) => p.path().display().to_string(),
    };
    format!("{kind} join {with}; joiner {joiner}")
}

/// Whether repartition source `i` is read in a sub-topology with sources
/// of other topics, whose partition count it takes.
fn beside_sources(t: &Topology, i: usize) -> bool {
    (t.subtopologies.iter())
        .find(|sub| sub.sources.contains(&i))
        .is_some_and(|sub| (sub.sources.iter()).any(|&j| t.sources[j].repartition.is_none()))
}

/// Whether repartition source `i` carries a foreign-key join's messages.
fn foreign_key_topic(t: &Topology, i: usize) -> bool {
    t.consumers_of(NodeId::Source(i)).any(|s| {
        matches!(
            t.steps[s].op,
            Operation::ForeignKey(_)
                | Operation::Join(super::Join {
                    with: super::JoinWith::ForeignKey { .. },
                    ..
                })
        )
    })
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
    let split = t.subtopologies.len() > 1;
    for (n, sub) in t.subtopologies.iter().enumerate() {
        if split {
            let _ = writeln!(out, "sub-topology {n} (tasks {n}_0, {n}_1, …):");
        }
        for &i in &sub.sources {
            source_tree(t, i, &mut shown, &mut out);
        }
    }
    for i in t.global_tables() {
        source_tree(t, i, &mut shown, &mut out);
        for s in (t.steps.iter()).filter(|s| s.global_table() == Some(i)) {
            let _ = writeln!(out, "    ··> looked up by step {}", s.name);
        }
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

/// Source `i`'s line, and what it feeds below it.
fn source_tree(tp: &Topology, i: usize, shown: &mut [bool], out: &mut String) {
    let t = tp;
    let s = &t.sources[i];
    let rows = |t: &super::Table| match t.format {
        super::TableFormat::Plain => "plain",
        super::TableFormat::Debezium => "debezium",
    };
    let table = match &s.table {
        None => String::new(),
        Some(t) if t.global => format!(
            "  [global table, {} rows; store {}, in every task, restored from the topic]",
            rows(t),
            t.store,
        ),
        Some(t) => format!(
            "  [{}table, {} rows; store {} (changelog {})]",
            t.history.map_or(String::new(), |ms| format!(
                "versioned ({ms} ms of history) "
            )),
            rows(t),
            t.store,
            crate::state::changelog::topic(&tp.application_id, &t.store)
        ),
    };
    match &s.repartition {
        None => {
            let _ = writeln!(out, "source {} <- topic {}{table}", s.name, s.topic);
        }
        Some(r) => {
            let _ = writeln!(
                out,
                "source {} <- repartition topic {} ({}; {})",
                s.name,
                s.topic,
                r.partitions.map_or_else(
                    || match beside_sources(tp, i) {
                        true => "partitions: as the sources read beside it".to_owned(),
                        false => "partitions: as its writers' sources".to_owned(),
                    },
                    |n| format!("{n} partitions")
                ),
                match (r.explicit, foreign_key_topic(tp, i)) {
                    (true, _) => "a repartition step",
                    (false, true) => "a foreign-key join's messages",
                    (false, false) => "inserted before a stateful step",
                }
            );
        }
    }
    tree(t, NodeId::Source(i), 1, shown, out);
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
        let what = if sink.repartition {
            "repartition"
        } else {
            "sink"
        };
        let _ = writeln!(out, "{pad}└─> {what} {} -> topic {}", sink.name, sink.topic);
    }
}

/// Graphviz DOT: topics are cylinders, steps are boxes.
pub fn dot(t: &Topology) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", esc(&t.application_id));
    let _ = writeln!(out, "  rankdir=LR;\n  node [fontname=\"Helvetica\"];");
    let split = t.subtopologies.len() > 1;
    for (n, sub) in t.subtopologies.iter().enumerate() {
        if split {
            let _ = writeln!(
                out,
                "  subgraph \"cluster_{n}\" {{\n  label=\"sub-topology {n}\"; style=dashed;"
            );
        }
        for &i in &sub.sources {
            dot_source(t, &t.sources[i], &mut out);
        }
        for &i in &sub.steps {
            dot_step(t, &t.steps[i], &mut out);
        }
        for &k in &sub.sinks {
            let sink = &t.sinks[k];
            if sink.repartition
                && t.subtopologies.iter().position(|s| s.sinks.contains(&k)) == Some(n)
            {
                dot_sink(sink, &mut out);
            }
        }
        if split {
            out.push_str("  }\n");
        }
    }
    for i in t.global_tables() {
        dot_source(t, &t.sources[i], &mut out);
    }
    for s in t.sinks.iter().filter(|s| !s.repartition) {
        dot_sink(s, &mut out);
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
    // A repartition topic feeds the sub-topology that reads it.
    for s in t.sinks.iter().filter(|s| s.repartition) {
        for reader in t.sources.iter().filter(|r| r.topic == s.topic) {
            let _ = writeln!(
                out,
                "  \"sink:{}\" -> \"src:{}\" [style=bold];",
                esc(&s.name),
                esc(&reader.name)
            );
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

/// A source's node (and its table's store).
fn dot_source(t: &Topology, s: &super::Source, out: &mut String) {
    let _ = writeln!(
        out,
        "  \"src:{0}\" [shape=cylinder, label=\"{1}\\n({2} {0})\"];",
        esc(&s.name),
        esc(&s.topic),
        match &s.table {
            None => "source",
            Some(t) if t.global => "global table",
            Some(t) if t.history.is_some() => "versioned table",
            Some(_) => "table",
        }
    );
    if let Some(table) = s.table.as_ref().filter(|t| t.global) {
        let _ = writeln!(
            out,
            "  \"store:{0}\" [shape=folder, label=\"global store {0}\\n(every task)\"];\n  \"src:{1}\" -> \"store:{0}\" [style=dotted];",
            esc(&table.store),
            esc(&s.name),
        );
    } else if let Some(table) = &s.table {
        let _ = writeln!(
            out,
            "  \"store:{0}\" [shape=folder, label=\"store {0}\\nchangelog {2}\"];\n  \"src:{1}\" -> \"store:{0}\" [style=dotted];",
            esc(&table.store),
            esc(&s.name),
            esc(&crate::state::changelog::topic(
                &t.application_id,
                &table.store
            ))
        );
    }
}

/// A step's node (and its store).
fn dot_step(t: &Topology, s: &Step, out: &mut String) {
    let _ = writeln!(
        out,
        "  \"step:{0}\" [shape=box, style=rounded, label=\"{0}\\n{1}\"];",
        esc(&s.name),
        esc(&describe(t, s))
    );
    if let super::Operation::Join(super::Join {
        with: super::JoinWith::Table { store, .. } | super::JoinWith::Global { store, .. },
        ..
    }) = &s.op
    {
        let _ = writeln!(
            out,
            "  \"store:{}\" -> \"step:{}\" [style=dotted, label=\"lookup\"];",
            esc(store),
            esc(&s.name)
        );
    }
    if let Some(store) = s.store() {
        let _ = writeln!(
            out,
            "  \"store:{0}\" [shape=folder, label=\"store {0}\\nchangelog {2}\"];\n  \"step:{1}\" -> \"store:{0}\" [dir=both, style=dotted];",
            esc(store),
            esc(&s.name),
            esc(&crate::state::changelog::topic(&t.application_id, store))
        );
    }
}

/// A sink's node; a repartition topic's is bold.
fn dot_sink(s: &super::Sink, out: &mut String) {
    let (what, style) = match s.repartition {
        true => ("repartition", ", style=bold"),
        false => ("sink", ""),
    };
    let _ = writeln!(
        out,
        "  \"sink:{0}\" [shape=cylinder{style}, label=\"{1}\\n({what} {0})\"];",
        esc(&s.name),
        esc(&s.topic)
    );
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

    /// Clicks enriched with users, and orders re-keyed and counted.
    fn split() -> Topology {
        let text = r#"
            application.id = "shop"
            [errors]
            rejected = "skip"
            [sources.clicks]
            [sources.users]
            table = true
            [sources.orders]
            [steps.enriched]
            join = "left"
            joiner = "merge"
            inputs = ["clicks", "users"]
            [steps.by-customer]
            plugin = "k.wasm"
            inputs = ["orders"]
            [steps.counts]
            aggregate = "count"
            inputs = ["by-customer"]
            [sinks.out]
            inputs = ["enriched", "counts"]
        "#;
        let path = Path::new("p.toml");
        Topology::from_file(path, PipelineFile::parse(path, text).unwrap()).unwrap()
    }

    #[test]
    fn text_shows_sub_topologies_repartition_topics_joins_and_changelogs() {
        let t = text(&split());
        let expected = "\
application.id = shop  (max.batch.records = 500, commit.interval.ms = 1000, num.stream.threads = 1)
sub-topology 0 (tasks 0_0, 0_1, …):
source clicks <- topic clicks
    └─> step enriched [left join with table users (store users); joiner merge]
        └─> sink out -> topic out
source users <- topic users  [table, plain rows; store users (changelog shop-users-changelog)]
sub-topology 1 (tasks 1_0, 1_1, …):
source orders <- topic orders
    └─> step by-customer [k.wasm]
        └─> repartition counts-repartition -> topic shop-counts-repartition
sub-topology 2 (tasks 2_0, 2_1, …):
source counts-repartition <- repartition topic shop-counts-repartition (partitions: as its writers' sources; inserted before a stateful step)
    └─> step counts [count; store counts (changelog shop-counts-changelog)]
        └─> sink out -> topic out
rejected records: skip
trapped records:  fail
";
        assert_eq!(t, expected, "got:\n{t}");
    }

    #[test]
    fn dot_clusters_sub_topologies_and_draws_repartition_topics_and_stores() {
        let d = dot(&split());
        for line in [
            "subgraph \"cluster_0\" {",
            "label=\"sub-topology 2\"; style=dashed;",
            "\"sink:counts-repartition\" [shape=cylinder, style=bold, label=\"shop-counts-repartition\\n(repartition counts-repartition)\"];",
            "\"sink:counts-repartition\" -> \"src:counts-repartition\" [style=bold];",
            "\"store:counts\" [shape=folder, label=\"store counts\\nchangelog shop-counts-changelog\"];",
            "\"src:clicks\" -> \"step:enriched\";",
            "\"store:users\" -> \"step:enriched\" [style=dotted, label=\"lookup\"];",
        ] {
            assert!(d.contains(line), "missing {line} in\n{d}");
        }
    }
}
