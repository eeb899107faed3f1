//! `[sources.<name>]`: the topics a pipeline reads, how many partitions
//! `sluice dev` creates them with, which are read as tables (and into
//! which store), and where their records' event time comes from.

use std::collections::BTreeMap;
use std::path::Path;

use super::names::check_name;
use crate::time::Extractor;
use crate::topology::pipeline_file::{SourceDef, flatten};
use crate::topology::{MAX_PARTITIONS, PluginRef, Source, Table};

/// Every source, in name order.
pub(super) fn sources(
    defs: &BTreeMap<String, SourceDef>,
    base: &Path,
) -> Result<Vec<Source>, String> {
    defs.iter()
        .map(|(name, def)| source(name, def, base))
        .collect()
}

/// One source; `base` is the directory of the pipeline file.
fn source(name: &str, def: &SourceDef, base: &Path) -> Result<Source, String> {
    let topic = def.topic.clone().unwrap_or_else(|| name.to_owned());
    check_name(&topic).map_err(|m| format!("[sources.{name}] `topic` {m}"))?;
    let partitions = def.partitions.unwrap_or(1);
    if !(1..=MAX_PARTITIONS).contains(&partitions) {
        return Err(format!(
            "[sources.{name}] `partitions` (the partitions `sluice dev` creates the topic with) must be from 1 to {MAX_PARTITIONS}, got {partitions}"
        ));
    }
    let table = table(name, def)?;
    let timestamp = timestamp(name, def, base)?;
    let timestamp_config = flatten(
        &def.timestamp_config,
        &format!("[sources.{name}] timestamp-config"),
    )?
    .into_iter()
    .map(|(k, v)| (k, v.to_text()))
    .collect();
    Ok(Source {
        name: name.to_owned(),
        topic,
        partitions,
        table,
        timestamp,
        timestamp_config,
        invalid_timestamp: def.invalid_timestamp.unwrap_or_default(),
        repartition: None,
    })
}

/// The table a source is read as (`table = true`), if it is one.
fn table(name: &str, def: &SourceDef) -> Result<Option<Table>, String> {
    match (def.table, &def.store, &def.format) {
        (true, store, format) => {
            let store = store.clone().unwrap_or_else(|| name.to_owned());
            check_name(&store).map_err(|m| format!("[sources.{name}] `store` {m}"))?;
            if def.global && def.timestamp.is_some() {
                return Err(format!(
                    "[sources.{name}] is a global table, which has no event time (a join looks it up as it is now); remove `timestamp`"
                ));
            }
            let history = def
                .history
                .as_ref()
                .map(|v| super::windowing::duration("history", v))
                .transpose()
                .map_err(|m| format!("[sources.{name}] {m}"))?;
            if def.global && history.is_some() {
                return Err(format!(
                    "[sources.{name}] is a global table, which is looked up as it is now, never as of a time; remove `history`"
                ));
            }
            Ok(Some(Table {
                store,
                format: format.unwrap_or_default(),
                global: def.global,
                history,
            }))
        }
        (false, None, None) if !def.global && def.history.is_none() => Ok(None),
        (false, _, _) => Err(format!(
            "[sources.{name}] has a `store`, `format`, `global` or `history` but is not a table; add `table = true`"
        )),
    }
}

/// Where a source's records get their event time: a kind of the record
/// (`timestamp`, `timestamp-field`), or an extractor plugin.
fn timestamp(name: &str, def: &SourceDef, base: &Path) -> Result<Extractor, String> {
    match (def.timestamp.as_deref(), &def.timestamp_plugin) {
        (Some("plugin"), Some(path)) => {
            let path = base.join(path);
            Ok(Extractor::Plugin(
                if path.extension().is_some_and(|e| e == "wasm") {
                    PluginRef::Component(path)
                } else {
                    PluginRef::Crate(path)
                },
            ))
        }
        (Some("plugin"), None) => Err(format!(
            "[sources.{name}] `timestamp = \"plugin\"` needs `timestamp-plugin`, a crate directory or .wasm"
        )),
        (kind, None) => Extractor::parse(kind.unwrap_or("record"), def.timestamp_field.as_deref())
            .map_err(|m| format!("[sources.{name}] {m}")),
        (_, Some(_)) => Err(format!(
            "[sources.{name}] has `timestamp-plugin`; add `timestamp = \"plugin\"`"
        )),
    }
}
