//! Foreign-key joins: `foreign-key = "a.b"` on a join of two table
//! sources, L then R. Each left row names a right key in a field of its
//! JSON value; the two tables need not be co-partitioned, so the join runs
//! as a protocol between L's tasks and R's, through two topics of the
//! pipeline's own (see [`ForeignKeyPart`] and
//! `operator/join/foreign_key/`). For the join step `j`, Sluice adds:
//!
//! - the step `j-subscribe` (beside L), which writes the repartition topic
//!   `<application.id>-j-subscription` (keyed by foreign key), read back
//!   as the source `j-subscription` beside R;
//! - the step `j-answer` (beside R, reading `j-subscription` and R), which
//!   writes `<application.id>-j-response` (keyed by the left key), read
//!   back as the source `j-response`, the join step's second input.
//!
//! Each added step has a store of its own, named for it; the join step
//! keeps the left rows in its `store`.

use std::collections::HashMap;

use super::join::{field_path, own_store};
use super::repartition;
use super::state::Owners;
use crate::topology::pipeline_file::{JoinKindDef, StepDef};
use crate::topology::{ForeignKeyPart, JoinKind, JoinWith, NodeId, Operation, Sink, Source, Step};

/// The right table `table` of the foreign-key join `owner` (`[steps.x]`,
/// step `name`), declared by `def`.
pub(super) fn with_foreign_key(
    (owner, name): (&str, &str),
    def: &StepDef,
    kind: JoinKindDef,
    table: usize,
) -> Result<JoinWith, String> {
    if kind == JoinKindDef::Outer {
        return Err(format!(
            "{owner} `join = \"outer\"`: a foreign-key join is \"inner\" or \"left\" (a right row alone has no left key to be emitted under)"
        ));
    }
    if def.join_window.is_some()
        || def.wait_for_table.is_some()
        || def.close.is_some()
        || def.join_grace.is_some()
    {
        return Err(format!(
            "{owner} joins two tables by a foreign key; `join-window`, `close.idle.after`, `wait-for-table` and `join-grace` are for joins with a stream"
        ));
    }
    let path = def.foreign_key.as_deref().expect("a foreign-key join");
    Ok(JoinWith::ForeignKey {
        table,
        field: field_path(owner, "foreign-key", path)?,
        store: own_store(owner, name, def)?,
    })
}

/// What the foreign-key join `join` needs added once every step is known.
pub(super) struct Parts {
    application_id: String,
    join: String,
    kind: JoinKind,
    field: Vec<String>,
    /// The left and right tables (source indexes).
    tables: (usize, usize),
    /// The sources of the subscription and response topics.
    topics: (usize, usize),
}

/// The names of the nodes Sluice adds for the join `join`: the subscribe
/// step, the subscription topic's source and sink, the answer step, and
/// the response topic's source and sink.
fn names(join: &str) -> [String; 4] {
    ["subscribe", "subscription", "answer", "response"].map(|part| format!("{join}-{part}"))
}

/// The sources of the join `join`'s subscription and response topics
/// (source indexes `first` and `first + 1`), with their parts to add
/// later; the stores of the added steps are claimed in `owners`.
pub(super) fn sources<'a>(
    application_id: &str,
    (join, kind, with): (&'a str, JoinKind, &JoinWith),
    (left, first): (NodeId, usize),
    kinds: &HashMap<&str, &str>,
    owners: &mut Owners<'a>,
) -> Result<(Vec<Source>, Parts), String> {
    let JoinWith::ForeignKey { table, field, .. } = with else {
        unreachable!("a foreign-key join")
    };
    let NodeId::Source(left) = left else {
        unreachable!("a foreign-key join reads a table source")
    };
    let owner = format!("[steps.{join}]");
    for name in names(join) {
        if let Some(kind) = kinds.get(name.as_str()) {
            return Err(format!(
                "{owner} is a foreign-key join, for which Sluice adds a node named `{name}`, but a {kind} has that name; rename the {kind}"
            ));
        }
    }
    let [subscribe, subscription, answer, response] = names(join);
    for store in [&subscribe, &answer] {
        super::names::check_name(store).map_err(|m| format!("{owner}: the store {m}"))?;
        owners.claim(store, join)?;
    }
    let sources = vec![
        repartition::source(
            &subscription,
            topic(application_id, &subscription),
            None,
            false,
        ),
        repartition::source(&response, topic(application_id, &response), None, false),
    ];
    let parts = Parts {
        application_id: application_id.to_owned(),
        join: join.to_owned(),
        kind,
        field: field.clone(),
        tables: (left, *table),
        topics: (first, first + 1),
    };
    Ok((sources, parts))
}

/// The steps (numbered from `first`) and sinks that `parts` add.
pub(super) fn steps_and_sinks(parts: &Parts, first: usize) -> ([Step; 2], [Sink; 2]) {
    let [subscribe, subscription, answer, response] = names(&parts.join);
    let step = |name: &str, op: ForeignKeyPart, inputs: Vec<NodeId>| Step {
        name: name.to_owned(),
        op: Operation::ForeignKey(op),
        state: Vec::new(),
        inputs,
        config: Vec::new(),
        keeps_key: false,
    };
    let steps = [
        step(
            &subscribe,
            ForeignKeyPart::Subscribe {
                kind: parts.kind,
                field: parts.field.clone(),
                store: subscribe.clone(),
            },
            vec![NodeId::Source(parts.tables.0)],
        ),
        step(
            &answer,
            ForeignKeyPart::Answer {
                store: answer.clone(),
            },
            vec![
                NodeId::Source(parts.topics.0),
                NodeId::Source(parts.tables.1),
            ],
        ),
    ];
    let sink = |name: String, writer: usize| Sink {
        topic: topic(&parts.application_id, &name),
        name,
        inputs: vec![NodeId::Step(writer)],
        repartition: true,
    };
    let sinks = [sink(subscription, first), sink(response, first + 1)];
    (steps, sinks)
}

/// The topic of the added source and sink `name`.
fn topic(application_id: &str, name: &str) -> String {
    format!("{application_id}-{name}")
}

#[cfg(test)]
mod tests {
    use crate::topology::validate::tests::load;
    use crate::topology::{ForeignKeyPart, JoinKind, JoinWith, NodeId, Operation};

    const FK: &str = r#"
        application.id = "shop"
        [sources.orders]
        table = true
        partitions = 4
        [sources.customers]
        table = true
        partitions = 2
        [steps.enriched]
        join = "left"
        foreign-key = "customer.id"
        inputs = ["orders", "customers"]
        [sinks.out]
        inputs = ["enriched"]
    "#;

    #[test]
    fn a_foreign_key_join_adds_its_parts_and_topics_named_for_the_step() {
        let t = load(FK).unwrap();
        let names: Vec<&str> = t.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["enriched", "enriched-subscribe", "enriched-answer"]);
        let source = |name: &str| t.sources.iter().position(|s| s.name == name).unwrap();
        let Operation::Join(j) = &t.steps[0].op else {
            panic!("{:?}", t.steps[0].op)
        };
        assert_eq!(j.kind, JoinKind::Left);
        assert_eq!(
            j.with,
            JoinWith::ForeignKey {
                table: source("customers"),
                field: vec!["customer".into(), "id".into()],
                store: "enriched".into(),
            }
        );
        assert_eq!(
            t.steps[0].inputs,
            [
                NodeId::Source(source("orders")),
                NodeId::Source(source("enriched-response"))
            ]
        );
        assert_eq!(
            t.steps[2].inputs,
            [
                NodeId::Source(source("enriched-subscription")),
                NodeId::Source(source("customers"))
            ]
        );
        assert!(matches!(
            &t.steps[1].op,
            Operation::ForeignKey(ForeignKeyPart::Subscribe { kind: JoinKind::Left, store, .. }) if store == "enriched-subscribe"
        ));
        let internal: Vec<(&str, &str)> = (t.sinks.iter())
            .filter(|s| s.repartition)
            .map(|s| (s.name.as_str(), s.topic.as_str()))
            .collect();
        assert_eq!(
            internal,
            [
                ("enriched-subscription", "shop-enriched-subscription"),
                ("enriched-response", "shop-enriched-response")
            ]
        );
        // Each table with the parts beside it; the subscription topic
        // takes the right table's count, the responses the left's.
        assert_eq!(t.subtopologies.len(), 2);
        assert_eq!(t.sources[source("enriched-subscription")].partitions, 2);
        assert_eq!(t.sources[source("enriched-response")].partitions, 4);
        let stores: Vec<&str> = t.stores().map(|(s, _)| s).collect();
        assert_eq!(
            stores,
            [
                "customers",
                "orders",
                "enriched",
                "enriched-subscribe",
                "enriched-answer"
            ]
        );
        assert_eq!(t.output_topics(), ["out", "shop-dlq"]);
        let shown = crate::topology::render::text(&t);
        assert!(
            shown.contains("left join with table customers by the foreign key in field customer.id")
                && shown.contains("source enriched-subscription <- repartition topic shop-enriched-subscription (partitions: as the sources read beside it; a foreign-key join's messages)"),
            "{shown}"
        );
    }

    #[test]
    fn foreign_key_joins_that_cannot_work_are_refused_naming_the_key() {
        let cases = [
            (
                FK.replace("join = \"left\"", "join = \"outer\""),
                "[steps.enriched] `join = \"outer\"`: a foreign-key join is \"inner\" or \"left\"",
            ),
            (
                FK.replace("foreign-key = \"customer.id\"", "foreign-key = \"customer..id\""),
                "[steps.enriched] `foreign-key = \"customer..id\"` is not a dotted path",
            ),
            (
                FK.replace("[sources.orders]\n        table = true", "[sources.orders]"),
                "[steps.enriched] has `foreign-key`, which joins two tables by a field of the first one's values; both inputs must be table sources",
            ),
            (
                FK.replace("join = \"left\"", "join = \"left\"\n        wait-for-table = true"),
                "joins two tables by a foreign key; `join-window`, `close.idle.after`, `wait-for-table` and `join-grace` are for joins with a stream",
            ),
            (
                FK.replace("join = \"left\"\n", ""),
                "[steps.enriched] has `foreign-key` but no `join`",
            ),
            (
                FK.replace("[sinks.out]", "[sinks.enriched-answer]\n        inputs = [\"enriched\"]\n        [sinks.out]"),
                "[steps.enriched] is a foreign-key join, for which Sluice adds a node named `enriched-answer`, but a sink has that name",
            ),
            (
                FK.replace("[sources.customers]\n        table = true", "[sources.customers]\n        table = true\n        store = \"enriched-subscribe\""),
                "the store `enriched-subscribe` is used by `customers` and `enriched`",
            ),
        ];
        for (text, expected) in cases {
            let e = load(&text).unwrap_err();
            assert!(e.contains(expected), "expected {expected:?} in: {e}");
        }
    }
}
