//! State: every store belongs to one node (a table source, an
//! aggregation, or a processor that declares it with `stores = [...]`),
//! and the `[state]` table says where stores live and what they may take.

use std::collections::HashMap;
use std::path::Path;

use super::names::check_name;
use crate::topology::pipeline_file::StateDef;
use crate::topology::{Source, StateSettings, StoreUse};

/// The node that owns each store, by store name.
pub(super) struct Owners<'a>(HashMap<String, &'a str>);

impl<'a> Owners<'a> {
    /// The stores of the table sources; two tables may not share one.
    pub(super) fn of_tables(sources: &'a [Source]) -> Result<Owners<'a>, String> {
        let owners = sources
            .iter()
            .filter_map(|s| s.table.as_ref().map(|t| (t.store.clone(), s.name.as_str())))
            .collect();
        if let Some((a, b)) = sources.iter().enumerate().find_map(|(i, a)| {
            let store = &a.table.as_ref()?.store;
            sources[i + 1..]
                .iter()
                .find(|b| b.table.as_ref().is_some_and(|t| &t.store == store))
                .map(|b| (a, b))
        }) {
            return Err(format!(
                "the store `{}` is used by tables `{}` and `{}`; a store belongs to one node",
                a.table.as_ref().expect("found as a table").store,
                a.name,
                b.name
            ));
        }
        Ok(Owners(owners))
    }

    /// Gives `store` to the aggregation `name`, unless another node has it.
    pub(super) fn claim(&mut self, store: &str, name: &'a str) -> Result<(), String> {
        if let Some(other) = self.0.insert(store.to_owned(), name) {
            return Err(format!(
                "the store `{store}` is used by `{other}` and `{name}`; \
                 a store belongs to one node (give each its own `store` name)"
            ));
        }
        Ok(())
    }

    /// The stores the processor `name` (`owner` in messages) declares:
    /// a table's store, to read, or a store of its own, to read and write.
    pub(super) fn declare(
        &mut self,
        owner: &str,
        name: &'a str,
        stores: &[String],
        sources: &[Source],
    ) -> Result<Vec<StoreUse>, String> {
        let mut state = Vec::with_capacity(stores.len());
        for store in stores {
            check_name(store).map_err(|m| format!("{owner} `stores` {m}"))?;
            if state.iter().any(|u: &StoreUse| &u.name == store) {
                return Err(format!("{owner} declares the store `{store}` twice"));
            }
            let table = sources
                .iter()
                .find(|s| s.table.as_ref().is_some_and(|t| &t.store == store));
            let writable = match (table, self.0.get(store.as_str())) {
                (Some(_), _) => false,
                (None, Some(other)) => {
                    return Err(format!(
                        "{owner} declares the store `{store}`, which belongs to `{other}`; \
                         a processor may read a table's store, or own a store of its own"
                    ));
                }
                (None, None) => {
                    self.0.insert(store.clone(), name);
                    true
                }
            };
            state.push(StoreUse {
                name: store.clone(),
                writable,
            });
        }
        Ok(state)
    }
}

/// The `[state]` table; a relative `dir` is taken from `base`, the
/// directory of the pipeline file.
pub(super) fn settings(def: &StateDef, base: &Path) -> Result<StateSettings, String> {
    Ok(StateSettings {
        dir: def
            .dir
            .as_ref()
            .map(|d| base.join(d))
            .unwrap_or_else(|| StateSettings::default().dir),
        kind: def.store.unwrap_or_default(),
        restore_chunk: match def.restore_chunk {
            Some(0) => {
                return Err("[state] `restore-chunk` must be at least 1".into());
            }
            Some(n) => n,
            None => StateSettings::default().restore_chunk,
        },
        memory_bytes: match def.memory_mb {
            Some(mb @ 16..=1_048_576) => mb << 20,
            Some(mb) => {
                return Err(format!(
                    "[state] `memory-mb` = {mb} is outside 16..=1048576 (MiB): the memory every store of the pipeline may take together"
                ));
            }
            None => StateSettings::default().memory_bytes,
        },
    })
}
