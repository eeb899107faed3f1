//! Join steps (`join = "inner" | "left" | "outer"`): the first input, a
//! stream, joined with the second: a table source (inner, left), or a
//! second stream within a `join-window` (inner, left, outer). What each
//! matched pair becomes is the joiner's: `merge`, `pair`, or a value-joiner
//! plugin.

use std::path::Path;

use super::steps::plugin_ref;
use crate::topology::pipeline_file::{JoinKindDef, JoinWindowDef, StepDef};
use crate::topology::{
    GlobalKey, Join, JoinKind, JoinWindow, JoinWith, JoinerRef, MAX_WINDOW_DURATION, NodeId,
    Source, StreamGrace,
};

/// The join `owner` (`[steps.x]`, step `name`) declares with `def`, of
/// `inputs`, and the inputs it reads: the stream alone with a table (the
/// table is looked up, not read), both with a stream.
pub(super) fn join(
    (owner, name): (&str, &str),
    def: &StepDef,
    kind: JoinKindDef,
    inputs: &[NodeId],
    sources: &[Source],
    base: &Path,
) -> Result<(Join, Vec<NodeId>), String> {
    let others = [
        ("plugin", def.plugin.is_some()),
        ("aggregate", def.aggregate.is_some()),
        ("stores", !def.stores.is_empty()),
        ("window", def.window.is_some()),
        ("key", def.key.is_some()),
    ];
    if let Some((key, _)) = others.iter().find(|(_, set)| *set) {
        return Err(format!(
            "{owner} has `join` and `{key}`; a join step takes `inputs` (a stream, then a table or a stream), `join`, `joiner`, and for two streams `join-window` and `store`"
        ));
    }
    let &[left, right] = inputs else {
        return Err(format!(
            "{owner} `join` reads two inputs: a stream, then a table source (`inputs = [\"clicks\", \"users\"]` with `[sources.users] table = true`) or a second stream (with `join-window`)"
        ));
    };
    let table_of = |n: NodeId| match n {
        NodeId::Source(i) if sources[i].table.is_some() => Some(i),
        _ => None,
    };
    let joiner = joiner(owner, def.joiner.as_deref(), base)?;
    let global = |i: usize| sources[i].is_global();
    if def.foreign_key.is_some() && (table_of(left).is_none() || table_of(right).is_none()) {
        return Err(format!(
            "{owner} has `foreign-key`, which joins two tables by a field of the first one's values; both inputs must be table sources (`table = true`)"
        ));
    }
    if let Some((key, _)) = [
        ("key-field", def.key_field.is_some()),
        ("key-plugin", def.key_plugin.is_some()),
    ]
    .into_iter()
    .find(|&(_, set)| set)
        && !table_of(right).is_some_and(global)
    {
        return Err(format!(
            "{owner} has `{key}`, which picks the key a stream record looks a global table up by; the second input is not a global table (`global = true` on its source)"
        ));
    }
    if let (Some(l), Some(r)) = (table_of(left), table_of(right))
        && let Some(i) = [l, r].into_iter().find(|&i| global(i))
    {
        return Err(format!(
            "{owner} joins the global table `{}` with a table; a global table is joined with a stream (`inputs = [stream, global table]`)",
            sources[i].name
        ));
    }
    let (with, reads) = match (table_of(left), table_of(right)) {
        (None, Some(table)) if global(table) => (
            with_global(owner, def, kind, table, (sources, base))?,
            vec![left],
        ),
        (Some(_), Some(r)) if def.foreign_key.is_some() => (
            super::foreign_key::with_foreign_key((owner, name), def, kind, r)?,
            vec![left],
        ),
        (Some(_), Some(_)) => (with_tables(owner, name, def)?, vec![left, right]),
        (Some(i), None) => {
            return Err(format!(
                "{owner} joins table `{}` with a stream; put the stream first (`inputs = [stream, table]`)",
                sources[i].name
            ));
        }
        (None, Some(table)) => (
            with_table((owner, name), def, kind, table, sources)?,
            vec![left],
        ),
        (None, None) => (with_stream(owner, name, def)?, vec![left, right]),
    };
    let kind = match kind {
        JoinKindDef::Inner => JoinKind::Inner,
        JoinKindDef::Left => JoinKind::Left,
        JoinKindDef::Outer => JoinKind::Outer,
    };
    Ok((Join { kind, joiner, with }, reads))
}

/// The table side of a stream–table join.
fn with_table(
    (owner, step): (&str, &str),
    def: &StepDef,
    kind: JoinKindDef,
    table: usize,
    sources: &[Source],
) -> Result<JoinWith, String> {
    if kind == JoinKindDef::Outer {
        return Err(format!(
            "{owner} `join = \"outer\"`: a stream–table join is \"inner\" or \"left\" (a table record alone emits nothing)"
        ));
    }
    let name = &sources[table].name;
    if def.join_window.is_some() {
        return Err(format!(
            "{owner} joins table `{name}`: `join-window` is for joins of two streams (a stream record meets the table's value for its key)"
        ));
    }
    let spec = sources[table].table.as_ref().expect("a table");
    let grace = match &def.join_grace {
        None if def.store.is_some() || def.close.is_some() => {
            return Err(format!(
                "{owner} joins table `{name}` without `join-grace`: `store` and `close.idle.after` are for the records a grace period keeps waiting (the table keeps its own store)"
            ));
        }
        None => None,
        Some(_) if spec.history.is_none() => {
            return Err(format!(
                "{owner} has `join-grace`, which joins late stream records with the table as of their time; table `{name}` keeps no history: give `[sources.{name}]` a `history` (at least as long as the grace)"
            ));
        }
        Some(v) => {
            let grace = millis("join-grace", v).map_err(|m| format!("{owner} {m}"))?;
            let history = spec.history.expect("checked");
            if grace > history {
                return Err(format!(
                    "{owner} `join-grace` ({grace} ms) is longer than table `{name}`'s `history` ({history} ms): records that waited would be joined with values the table no longer keeps"
                ));
            }
            Some(StreamGrace {
                grace,
                store: own_store(owner, step, def)?,
                idle_close: idle_close(owner, def)?,
            })
        }
    };
    Ok(JoinWith::Table {
        table,
        store: spec.store.clone(),
        wait_for_table: def.wait_for_table.unwrap_or(true),
        history: spec.history,
        grace,
    })
}

/// The global table of a stream–global-table join.
fn with_global(
    owner: &str,
    def: &StepDef,
    kind: JoinKindDef,
    table: usize,
    (sources, base): (&[Source], &Path),
) -> Result<JoinWith, String> {
    let name = &sources[table].name;
    if kind == JoinKindDef::Outer {
        return Err(format!(
            "{owner} `join = \"outer\"`: a join with a global table is \"inner\" or \"left\" (a table record alone emits nothing)"
        ));
    }
    if def.join_window.is_some()
        || def.store.is_some()
        || def.wait_for_table.is_some()
        || def.join_grace.is_some()
    {
        return Err(format!(
            "{owner} joins the global table `{name}`: `join-window`, `store`, `wait-for-table` and `join-grace` do not apply (a global table is restored in full before any stream record is processed)"
        ));
    }
    let key = match (&def.key_field, &def.key_plugin) {
        (None, None) => GlobalKey::RecordKey,
        (Some(path), None) => GlobalKey::Field(field_path(owner, "key-field", path)?),
        (None, Some(plugin)) => GlobalKey::Plugin(plugin_ref(base, plugin)),
        (Some(_), Some(_)) => {
            return Err(format!(
                "{owner} has `key-field` and `key-plugin`; the table key comes from one of them"
            ));
        }
    };
    let store = sources[table]
        .table
        .as_ref()
        .expect("a table")
        .store
        .clone();
    Ok(JoinWith::Global { table, store, key })
}

/// A dotted path of field names (`key = "user.id"`), split.
pub(super) fn field_path(owner: &str, key: &str, path: &str) -> Result<Vec<String>, String> {
    let path = path.trim();
    let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
    if parts.iter().any(String::is_empty) {
        return Err(format!(
            "{owner} `{key} = {path:?}` is not a dotted path of field names, such as \"user.id\""
        ));
    }
    Ok(parts)
}

/// The second table of a table–table join.
fn with_tables(owner: &str, name: &str, def: &StepDef) -> Result<JoinWith, String> {
    if def.join_window.is_some()
        || def.wait_for_table.is_some()
        || def.close.is_some()
        || def.join_grace.is_some()
    {
        return Err(format!(
            "{owner} joins two tables; `join-window`, `close.idle.after`, `wait-for-table` and `join-grace` are for joins with a stream"
        ));
    }
    Ok(JoinWith::Tables {
        store: own_store(owner, name, def)?,
    })
}

/// The second stream of a stream–stream join.
fn with_stream(owner: &str, name: &str, def: &StepDef) -> Result<JoinWith, String> {
    if def.wait_for_table.is_some() || def.join_grace.is_some() {
        return Err(format!(
            "{owner} joins two streams; `wait-for-table` and `join-grace` are for a join with a table (two streams take `grace` in `join-window`)"
        ));
    }
    let Some(w) = &def.join_window else {
        return Err(format!(
            "{owner} joins two streams, which needs `join-window = {{ before = \"5m\", after = \"5m\", grace = \"1m\" }}` (or `difference` for both); a table as the second input needs `table = true` on its source"
        ));
    };
    let window = join_window(w).map_err(|m| format!("{owner} `join-window`: {m}"))?;
    Ok(JoinWith::Stream {
        window,
        store: own_store(owner, name, def)?,
        idle_close: idle_close(owner, def)?,
    })
}

/// The store a join keeps of its own: `store`, or the step's `name`.
pub(super) fn own_store(owner: &str, name: &str, def: &StepDef) -> Result<String, String> {
    let store = def.store.clone().unwrap_or_else(|| name.to_owned());
    super::names::check_name(&store).map_err(|m| format!("{owner} `store` {m}"))?;
    Ok(store)
}

/// `close.idle.after`, in ms, if the step has it.
fn idle_close(owner: &str, def: &StepDef) -> Result<Option<i64>, String> {
    def.close
        .as_ref()
        .map(|c| super::windowing::duration("close.idle.after", &c.idle.after))
        .transpose()
        .map_err(|m| format!("{owner} {m}"))
}

/// `join-window`: `before` and `after`, or `difference` for both, and
/// `grace` (default 0); each at least 0 and at most 100 years.
fn join_window(w: &JoinWindowDef) -> Result<JoinWindow, String> {
    let get = |name: &str, v: &Option<toml::Value>| v.as_ref().map(|v| millis(name, v)).transpose();
    let difference = get("difference", &w.difference)?;
    let (before, after) = match (
        difference,
        get("before", &w.before)?,
        get("after", &w.after)?,
    ) {
        (Some(d), None, None) => (d, d),
        (None, Some(b), Some(a)) => (b, a),
        (Some(_), _, _) => {
            return Err("give `difference`, or `before` and `after`, not both".into());
        }
        _ => return Err("needs `difference`, or both `before` and `after`".into()),
    };
    let grace = get("grace", &w.grace)?.unwrap_or(0);
    Ok(JoinWindow {
        before,
        after,
        grace,
    })
}

/// A duration of at least 0: milliseconds or text such as `"5m"`.
fn millis(name: &str, v: &toml::Value) -> Result<i64, String> {
    let ms = match v {
        toml::Value::Integer(ms) => *ms,
        toml::Value::String(s) if s.trim() == "0" => 0,
        toml::Value::String(s) => {
            crate::window::duration::parse(s).map_err(|m| format!("`{name}`: {m}"))?
        }
        other => {
            return Err(format!(
                "`{name}` must be a number of milliseconds or a duration such as \"5m\", got {other}"
            ));
        }
    };
    if !(0..=MAX_WINDOW_DURATION).contains(&ms) {
        return Err(format!(
            "`{name}` is {ms} ms; it must be from 0 to {MAX_WINDOW_DURATION} ms (100 years)"
        ));
    }
    Ok(ms)
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
    use crate::topology::{JoinKind, JoinWith, JoinerRef, NodeId, Operation, StreamGrace};

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
    fn a_versioned_table_and_a_grace_period_are_read() {
        let text = ENRICH
            .replace("table = true", "table = true\n        history = \"1h\"")
            .replace(
                "joiner = \"merge\"",
                "joiner = \"merge\"\n        join-grace = \"10s\"\n        close.idle.after = \"1m\"",
            );
        let t = load(&text).unwrap();
        let Operation::Join(j) = &t.steps[0].op else {
            unreachable!()
        };
        let JoinWith::Table { history, grace, .. } = &j.with else {
            panic!("{:?}", j.with)
        };
        assert_eq!(*history, Some(3_600_000));
        assert_eq!(
            grace.as_ref(),
            Some(&StreamGrace {
                grace: 10_000,
                store: "enriched".into(),
                idle_close: Some(60_000),
            })
        );
        assert_eq!(
            t.sources[1].table.as_ref().unwrap().history,
            Some(3_600_000)
        );
        let stores: Vec<&str> = t.stores().map(|(s, _)| s).collect();
        assert_eq!(stores, ["users", "enriched"], "the waiting records' store");
        let shown = crate::topology::render::text(&t);
        assert!(
            shown.contains("versioned (3600000 ms of history) table")
                && shown.contains("as of each record's time; records wait 10000 ms in store enriched (changelog shop-enriched-changelog), all joined after 60000 ms without input"),
            "{shown}"
        );
        let dot = crate::topology::render::dot(&t);
        assert!(dot.contains("(versioned table users)"), "{dot}");
    }

    #[test]
    fn versioned_tables_and_grace_periods_that_cannot_work_are_refused() {
        let versioned = ENRICH.replace("table = true", "table = true\n        history = \"1m\"");
        let grace = |text: &str, g: &str| {
            text.replace(
                "joiner = \"merge\"",
                &format!("joiner = \"merge\"\n        join-grace = {g}"),
            )
        };
        let cases = [
            (
                grace(ENRICH, "\"5s\""),
                "table `users` keeps no history: give `[sources.users]` a `history`",
            ),
            (
                grace(&versioned, "\"2m\""),
                "`join-grace` (120000 ms) is longer than table `users`'s `history` (60000 ms)",
            ),
            (grace(&versioned, "-1"), "`join-grace` is -1 ms"),
            (
                ENRICH.replace(
                    "[sources.clicks]",
                    "[sources.clicks]\n        history = \"1m\"",
                ),
                "[sources.clicks] has a `store`, `format`, `global` or `history` but is not a table",
            ),
            (
                versioned.replace("history = \"1m\"", "history = 0"),
                "[sources.users] `history` must be a positive number",
            ),
            (
                versioned.replace(
                    "history = \"1m\"",
                    "history = \"1m\"\n        global = true",
                ),
                "is a global table, which is looked up as it is now",
            ),
            (
                versioned.replace(
                    "joiner = \"merge\"",
                    "joiner = \"merge\"\n        store = \"w\"",
                ),
                "without `join-grace`: `store` and `close.idle.after` are for the records a grace period keeps waiting",
            ),
            (
                versioned
                    .replace("join = \"left\"\n", "join-grace = \"1s\"\n")
                    .replace("joiner = \"merge\"\n", ""),
                "has `join-grace` but no `join`",
            ),
        ];
        for (text, expected) in cases {
            let e = load(&text).unwrap_err();
            assert!(e.contains(expected), "expected {expected:?} in: {e}");
        }
    }

    #[test]
    fn a_join_reads_its_stream_and_looks_up_its_table() {
        let t = load(ENRICH).unwrap();
        let step = &t.steps[0];
        let Operation::Join(j) = &step.op else {
            panic!("{:?}", step.op)
        };
        let JoinWith::Table {
            table,
            store,
            wait_for_table,
            history: None,
            grace: None,
        } = &j.with
        else {
            panic!("{:?}", j.with)
        };
        assert!(wait_for_table, "the default");
        assert_eq!(
            (j.kind, &j.joiner, store.as_str()),
            (JoinKind::Left, &JoinerRef::Merge, "users")
        );
        assert_eq!(t.sources[*table].name, "users");
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
                "a table as the second input needs `table = true` on its source",
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
                ENRICH.replace(
                    "inputs = [\"clicks\", \"users\"]",
                    "inputs = [\"users\", \"clicks\"]",
                ),
                "joins table `users` with a stream; put the stream first",
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
                    )
                    .replace(
                        "joiner = \"merge\"",
                        "joiner = \"merge\"\n        join-window = { difference = 5 }",
                    ),
                "joins two tables; `join-window`",
            ),
            (
                ENRICH.replace("join = \"left\"\n", ""),
                "has `joiner` but no `join`",
            ),
        ];
        for (text, expected) in cases {
            let e = load(&text).unwrap_err();
            assert!(e.contains(expected), "expected {expected:?} in: {e}");
        }
    }

    const SEARCH_CLICKS: &str = r#"
        application.id = "shop"
        [sources.searches]
        [sources.clicks]
        [steps.search-clicks]
        join = "outer"
        join-window = { before = "0s", after = "10m", grace = "1m" }
        inputs = ["searches", "clicks"]
        [sinks.out]
        inputs = ["search-clicks"]
    "#;

    #[test]
    fn a_join_of_two_streams_reads_both_and_keeps_them_in_its_store() {
        let t = load(SEARCH_CLICKS).unwrap();
        let step = &t.steps[0];
        let Operation::Join(j) = &step.op else {
            unreachable!()
        };
        let JoinWith::Stream {
            window,
            store,
            idle_close,
        } = &j.with
        else {
            panic!("{:?}", j.with)
        };
        assert_eq!(*idle_close, None);
        assert_eq!(
            (window.before, window.after, window.grace),
            (0, 600_000, 60_000)
        );
        assert_eq!(store, "search-clicks");
        assert_eq!(
            step.store(),
            Some("search-clicks"),
            "opened and changelogged as the step's own"
        );
        assert_eq!(
            step.inputs,
            [NodeId::Source(1), NodeId::Source(0)],
            "searches, then clicks"
        );
        assert_eq!(j.kind, JoinKind::Outer);
        let t =
            load(&SEARCH_CLICKS.replace("before = \"0s\", after = \"10m\"", "difference = 5000"))
                .unwrap();
        let Operation::Join(j) = &t.steps[0].op else {
            unreachable!()
        };
        let JoinWith::Stream { window, .. } = &j.with else {
            unreachable!()
        };
        assert_eq!(
            (window.before, window.after, window.grace),
            (5000, 5000, 60_000)
        );
        // Each re-keyed side through a topic of its own.
        let rekeyed = SEARCH_CLICKS
            .replace("[steps.search-clicks]", "[steps.by-query]\n        plugin = \"k.wasm\"\n        inputs = [\"clicks\"]\n        [steps.search-clicks]")
            .replace("inputs = [\"searches\", \"clicks\"]", "inputs = [\"searches\", \"by-query\"]");
        let t = load(&rekeyed).unwrap();
        let names: Vec<&str> = t
            .sources
            .iter()
            .filter(|s| s.repartition.is_some())
            .map(|s| s.topic.as_str())
            .collect();
        assert_eq!(names, ["shop-search-clicks-right-repartition"]);
    }

    #[test]
    fn stream_joins_that_cannot_work_are_refused_naming_why() {
        let cases = [
            (
                SEARCH_CLICKS.replace(
                    "join-window = { before = \"0s\", after = \"10m\", grace = \"1m\" }\n",
                    "",
                ),
                "joins two streams, which needs `join-window",
            ),
            (
                SEARCH_CLICKS.replace("before = \"0s\", ", ""),
                "needs `difference`, or both `before` and `after`",
            ),
            (
                SEARCH_CLICKS.replace("before = \"0s\"", "before = \"0s\", difference = 3"),
                "not both",
            ),
            (
                SEARCH_CLICKS.replace("grace = \"1m\"", "grace = -1"),
                "`grace` is -1 ms",
            ),
            (
                SEARCH_CLICKS.replace("grace = \"1m\"", "grace = \"soon\""),
                "`grace`:",
            ),
            (
                SEARCH_CLICKS.replace("grace = \"1m\"", "grace = \"1m\", size = 3"),
                "unknown field `size`",
            ),
            (
                SEARCH_CLICKS.replace(
                    "join = \"outer\"",
                    "join = \"outer\"\n        wait-for-table = true",
                ),
                "`wait-for-table` and `join-grace` are for a join with a table",
            ),
            (
                ENRICH.replace(
                    "joiner = \"merge\"",
                    "joiner = \"merge\"\n        join-window = { difference = 5 }",
                ),
                "`join-window` is for joins of two streams",
            ),
        ];
        for (text, expected) in cases {
            let e = load(&text).unwrap_err();
            assert!(e.contains(expected), "expected {expected:?} in: {e}");
        }
    }

    /// Orders on 4 partitions joined with a global table of rates on 1,
    /// by the value's `currency`.
    const GLOBAL: &str = r#"
        application.id = "shop"
        [sources.orders]
        partitions = 4
        [sources.rates]
        table = true
        global = true
        [steps.priced]
        join = "inner"
        joiner = "merge"
        key-field = "price.currency"
        inputs = ["orders", "rates"]
        [sinks.out]
        inputs = ["priced"]
    "#;

    #[test]
    fn a_global_join_reads_its_stream_alone_and_its_table_is_in_no_task() {
        let t = load(GLOBAL).unwrap();
        let Operation::Join(j) = &t.steps[0].op else {
            panic!("{:?}", t.steps[0].op)
        };
        let JoinWith::Global { table, store, key } = &j.with else {
            panic!("{:?}", j.with)
        };
        assert_eq!(
            (t.sources[*table].name.as_str(), store.as_str()),
            ("rates", "rates")
        );
        assert_eq!(
            key,
            &crate::topology::GlobalKey::Field(vec!["price".into(), "currency".into()])
        );
        assert_eq!(t.steps[0].inputs, vec![NodeId::Source(0)]);
        assert_eq!(t.subtopologies.len(), 1, "the global table is in none");
        assert_eq!(t.subtopologies[0].sources, vec![0]);
        assert_eq!(t.stores().count(), 0, "no task store, no changelog");
        assert_eq!(t.global_tables().collect::<Vec<_>>(), vec![1]);
        let by_key = load(&GLOBAL.replace("key-field = \"price.currency\"", "")).unwrap();
        let Operation::Join(j) = &by_key.steps[0].op else {
            unreachable!()
        };
        assert!(matches!(
            j.with,
            JoinWith::Global {
                key: crate::topology::GlobalKey::RecordKey,
                ..
            }
        ));
        let by_plugin = GLOBAL.replace(
            "key-field = \"price.currency\"",
            "key-plugin = \"currency-of\"",
        );
        let mut t = load(&by_plugin).unwrap();
        assert_eq!(
            t.steps[0].key_plugin(),
            Some(&crate::topology::PluginRef::Crate("/p/currency-of".into()))
        );
        let refs: Vec<String> = (t.plugin_refs_mut().into_iter())
            .map(|(owner, p)| format!("{owner} {}", p.path().display()))
            .collect();
        assert_eq!(refs, ["[steps.priced] key-plugin /p/currency-of"]);
        let shown = crate::topology::render::text(&t);
        assert!(
            shown.contains("by the key plugin /p/currency-of"),
            "{shown}"
        );
    }

    #[test]
    fn global_joins_that_cannot_work_are_refused_naming_why() {
        let cases = [
            (
                GLOBAL.replace("join = \"inner\"", "join = \"outer\""),
                "a join with a global table is \"inner\" or \"left\"",
            ),
            (
                GLOBAL.replace("global = true", ""),
                "the second input is not a global table",
            ),
            (
                GLOBAL.replace("key-field = \"price.currency\"", "key-field = \"price..x\""),
                "not a dotted path",
            ),
            (
                GLOBAL.replace(
                    "key-field = \"price.currency\"",
                    "key-field = \"price.currency\"\n        key-plugin = \"k.wasm\"",
                ),
                "[steps.priced] has `key-field` and `key-plugin`; the table key comes from one of them",
            ),
            (
                GLOBAL
                    .replace("global = true", "")
                    .replace("key-field = \"price.currency\"", "key-plugin = \"k.wasm\""),
                "[steps.priced] has `key-plugin`, which picks the key a stream record looks a global table up by",
            ),
            (
                GLOBAL.replace("key-field = \"price.currency\"", "wait-for-table = false"),
                "do not apply",
            ),
            (
                GLOBAL.replace("inputs = [\"priced\"]", "inputs = [\"priced\", \"rates\"]"),
                "[sinks.out] reads the global table `rates`",
            ),
            (
                GLOBAL.replace("global = true", "global = true\n        timestamp = \"wall-clock\""),
                "has no event time",
            ),
            (
                GLOBAL.replace("table = true\n        global = true", "global = true"),
                "is not a table; add `table = true`",
            ),
            (
                GLOBAL.replace(
                    "[sinks.out]",
                    "[sources.users]\n        table = true\n        [steps.both]\n        join = \"left\"\n        inputs = [\"users\", \"rates\"]\n        [sinks.o2]\n        inputs = [\"both\"]\n        [sinks.out]",
                ),
                "joins the global table `rates` with a table",
            ),
        ];
        for (text, expected) in cases {
            let e = load(&text).unwrap_err();
            assert!(e.contains(expected), "expected {expected:?} in: {e}");
        }
    }

    #[test]
    fn the_topology_shows_a_global_table_and_who_looks_it_up() {
        let t = load(GLOBAL).unwrap();
        let text = crate::topology::render::text(&t);
        assert!(
            text.contains("source rates <- topic rates  [global table, plain rows; store rates, in every task, restored from the topic]"),
            "{text}"
        );
        assert!(text.contains("··> looked up by step priced"), "{text}");
        assert!(
            text.contains(
                "inner join with global table rates (store rates) by value field price.currency"
            ),
            "{text}"
        );
        let dot = crate::topology::render::dot(&t);
        assert!(dot.contains("global store rates"), "{dot}");
        assert!(
            dot.contains("\"store:rates\" -> \"step:priced\" [style=dotted, label=\"lookup\"]"),
            "{dot}"
        );
    }
}
