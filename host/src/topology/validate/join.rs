//! Join steps (`join = "inner" | "left"`): a stream, the first input,
//! joined with a table source, the second. What each record becomes is the
//! joiner's: `merge`, `pair`, or a value-joiner plugin.

use std::path::Path;

use super::steps::plugin_ref;
use crate::topology::pipeline_file::{JoinKindDef, StepDef};
use crate::topology::{Join, JoinKind, JoinerRef, NodeId, Source};

/// The join `owner` (`[steps.x]`) declares with `def`, of `inputs`, and
/// its stream input (its only input once validated: the table is looked
/// up, not read).
pub(super) fn join(
    owner: &str,
    def: &StepDef,
    kind: JoinKindDef,
    inputs: &[NodeId],
    sources: &[Source],
    base: &Path,
) -> Result<(Join, NodeId), String> {
    let others = [
        ("plugin", def.plugin.is_some()),
        ("aggregate", def.aggregate.is_some()),
        ("store", def.store.is_some()),
        ("stores", !def.stores.is_empty()),
        ("window", def.window.is_some()),
        ("key", def.key.is_some()),
    ];
    if let Some((key, _)) = others.iter().find(|(_, set)| *set) {
        return Err(format!(
            "{owner} has `join` and `{key}`; a join step takes `inputs` (a stream, then a table), `join` and `joiner`"
        ));
    }
    let &[stream, NodeId::Source(table)] = inputs else {
        return Err(format!(
            "{owner} `join` reads two inputs, a stream and then a table source (`inputs = [\"clicks\", \"users\"]` with `[sources.users] table = true`); joins of two streams or two tables are not built yet"
        ));
    };
    if sources[table].table.is_none() {
        return Err(format!(
            "{owner} joins `{}`, which is not a table; declare it with `table = true` (joins of two streams are not built yet)",
            sources[table].name
        ));
    }
    if let NodeId::Source(i) = stream
        && sources[i].table.is_some()
    {
        return Err(format!(
            "{owner} joins table `{}` with a table; table–table joins are not built yet",
            sources[i].name
        ));
    }
    let kind = match kind {
        JoinKindDef::Inner => JoinKind::Inner,
        JoinKindDef::Left => JoinKind::Left,
        JoinKindDef::Outer => {
            return Err(format!(
                "{owner} `join = \"outer\"`: a stream–table join is \"inner\" or \"left\" (a table record alone emits nothing)"
            ));
        }
    };
    let joiner = joiner(owner, def.joiner.as_deref(), base)?;
    let store = sources[table]
        .table
        .as_ref()
        .expect("checked")
        .store
        .clone();
    Ok((
        Join {
            kind,
            joiner,
            table,
            store,
            wait_for_table: def.wait_for_table.unwrap_or(true),
        },
        stream,
    ))
}

/// `joiner = "<text>"`: `merge`, `pair` (the default), or a plugin's path,
/// resolved against `base` (a crate named `merge` is `./merge`).
fn joiner(owner: &str, text: Option<&str>, base: &Path) -> Result<JoinerRef, String> {
    match text.map(str::trim) {
        None | Some("pair") => Ok(JoinerRef::Pair),
        Some("merge") => Ok(JoinerRef::Merge),
        Some("") => Err(format!(
            "{owner} `joiner` is empty; give \"merge\", \"pair\", or a plugin's crate directory or .wasm"
        )),
        Some(t) if ["merge", "pair"].iter().any(|b| b.eq_ignore_ascii_case(t)) => Err(format!(
            "{owner} `joiner = \"{t}\"` is not a joiner; the built-in is spelled `{}` (a plugin directory of that name is `./{t}`)",
            t.to_ascii_lowercase()
        )),
        Some(path) => Ok(JoinerRef::Plugin(plugin_ref(base, Path::new(path)))),
    }
}

#[cfg(test)]
mod tests {
    use crate::topology::validate::tests::load;
    use crate::topology::{JoinKind, JoinerRef, NodeId, Operation};

    const ENRICH: &str = r#"
        application.id = "shop"
        [sources.clicks]
        partitions = 4
        [sources.users]
        table = true
        partitions = 4
        [steps.enriched]
        join = "left"
        joiner = "merge"
        inputs = ["clicks", "users"]
        [sinks.out]
        inputs = ["enriched"]
    "#;

    #[test]
    fn a_join_reads_its_stream_and_looks_up_its_table() {
        let t = load(ENRICH).unwrap();
        let step = &t.steps[0];
        let Operation::Join(j) = &step.op else {
            panic!("{:?}", step.op)
        };
        assert_eq!(
            (j.kind, &j.joiner, j.store.as_str()),
            (JoinKind::Left, &JoinerRef::Merge, "users")
        );
        assert_eq!(t.sources[j.table].name, "users");
        assert_eq!(
            step.inputs,
            [NodeId::Source(0)],
            "the table is looked up, not read"
        );
        assert_eq!(t.subtopologies.len(), 1);
        let t = load(&ENRICH.replace("joiner = \"merge\"\n", "")).unwrap();
        let Operation::Join(j) = &t.steps[0].op else {
            unreachable!()
        };
        assert_eq!(j.joiner, JoinerRef::Pair, "the default");
        // A re-keyed stream reaches the table's tasks through a
        // repartition topic with the table's partition count.
        let rekeyed = ENRICH
            .replace("[steps.enriched]", "[steps.by-user]\n        plugin = \"k.wasm\"\n        inputs = [\"clicks\"]\n        [steps.enriched]")
            .replace("inputs = [\"clicks\", \"users\"]", "inputs = [\"by-user\", \"users\"]")
            .replace("partitions = 4\n        [sources.users]", "partitions = 6\n        [sources.users]");
        let t = load(&rekeyed).unwrap();
        let rp = t
            .sources
            .iter()
            .find(|s| s.name == "enriched-repartition")
            .unwrap();
        assert_eq!(rp.topic, "shop-enriched-repartition");
        assert_eq!(rp.partitions, 4, "as the table, not as the clicks (6)");
    }

    #[test]
    fn joins_that_cannot_work_are_refused_naming_why() {
        let cases = [
            (
                ENRICH.replace("table = true\n", ""),
                "joins `users`, which is not a table",
            ),
            (
                ENRICH.replace("join = \"left\"", "join = \"outer\""),
                "a stream–table join is \"inner\" or \"left\"",
            ),
            (
                ENRICH.replace("join = \"left\"", "join = \"right\""),
                "join",
            ),
            (
                ENRICH.replace("\"merge\"", "\"Merge\""),
                "the built-in is spelled `merge`",
            ),
            (ENRICH.replace("\"merge\"", "\"\""), "`joiner` is empty"),
            (
                ENRICH.replace(
                    "joiner = \"merge\"",
                    "joiner = \"merge\"\n        plugin = \"x.wasm\"",
                ),
                "has `join` and `plugin`",
            ),
            (
                ENRICH.replace("inputs = [\"clicks\", \"users\"]", "inputs = [\"clicks\"]"),
                "reads two inputs",
            ),
            (
                ENRICH
                    .replace(
                        "inputs = [\"clicks\", \"users\"]",
                        "inputs = [\"users\", \"users2\"]",
                    )
                    .replace(
                        "[sinks.out]",
                        "[sources.users2]\n        table = true\n        [sinks.out]",
                    ),
                "with a table; table–table joins are not built yet",
            ),
            (
                ENRICH.replace("join = \"left\"\n", ""),
                "has a `joiner` or `wait-for-table` but no `join`",
            ),
        ];
        for (text, expected) in cases {
            let e = load(&text).unwrap_err();
            assert!(e.contains(expected), "expected {expected:?} in: {e}");
        }
    }
}
