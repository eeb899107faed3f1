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
    let joiner = match def.joiner.as_deref() {
        None | Some("pair") => JoinerRef::Pair,
        Some("merge") => JoinerRef::Merge,
        Some("") => {
            return Err(format!(
                "{owner} `joiner` is empty; use \"merge\", \"pair\" or a plugin path"
            ));
        }
        Some(path) => JoinerRef::Plugin(plugin_ref(base, Path::new(path))),
    };
    Ok((
        Join {
            kind,
            joiner,
            table,
        },
        stream,
    ))
}
