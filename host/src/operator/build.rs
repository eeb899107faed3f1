//! Which operator each node of a pipeline gets, made for one task.

use std::sync::Arc;

use crate::error::RunError;
use crate::operator::Operator;
use crate::operator::aggregate::{KeyedAggregate, Logic};
use crate::operator::call::PluginStep;
use crate::operator::join::built_in::BuiltIn;
use crate::operator::join::foreign_key::answer::AnswerPart;
use crate::operator::join::foreign_key::result::ForeignKeyJoin;
use crate::operator::join::foreign_key::subscribe::Subscribe;
use crate::operator::join::joiner::ValueJoiner;
use crate::operator::join::stream_global::StreamGlobalJoin;
use crate::operator::join::stream_stream::StreamStreamJoin;
use crate::operator::join::stream_table::StreamTableJoin;
use crate::operator::join::table_table::TableTableJoin;
use crate::operator::process::Processor;
use crate::operator::table::Table;
use crate::operator::window::WindowedAggregate;
use crate::plugin::Plugin;
use crate::state::global_table::GlobalTables;
use crate::state::task_state::TaskStores;
use crate::state::versioned::Versioned;
use crate::topology::{ForeignKeyPart, JoinWith, JoinerRef, Operation, Source, Step};

/// The operator of step `index`, calling `plugin` (none for the built-in
/// count) and, for a global join, its `key` plugin, over the task's
/// `stores` and the instance's `globals`. Its plugins are instantiated now.
pub fn step(
    index: usize,
    step: &Step,
    (plugin, key): (Option<&Plugin>, Option<&Plugin>),
    (stores, globals): (Option<&TaskStores>, Option<&Arc<GlobalTables>>),
) -> Result<Box<dyn Operator>, RunError> {
    let plugin_step = || -> Result<PluginStep, RunError> {
        let plugin = plugin.expect("a plugin step has its plugin loaded").clone();
        Ok(PluginStep::new(plugin, step.config.clone())?)
    };
    let store_of = |name: &str| stores.and_then(|s| s.index(name));
    Ok(match &step.op {
        Operation::ForeignKey(part) => {
            let store = step
                .store()
                .and_then(store_of)
                .expect("a foreign-key join's part has its store opened with the task");
            match part {
                ForeignKeyPart::Subscribe { kind, field, .. } => {
                    Box::new(Subscribe::new(index, *kind, field.clone(), store))
                }
                ForeignKeyPart::Answer { .. } => Box::new(AnswerPart::new(index, store)),
            }
        }
        Operation::Process(_) => {
            let state = step
                .state
                .iter()
                .filter_map(|u| Some((store_of(&u.name)?, u.writable)))
                .collect();
            Box::new(Processor::new(index, plugin_step()?, step.keeps_key, state))
        }
        Operation::Aggregate { window, .. } => {
            let logic = match plugin {
                None => Logic::Count,
                Some(_) => Logic::Plugin(Box::new(plugin_step()?)),
            };
            let store = step
                .store()
                .and_then(store_of)
                .expect("an aggregation's store is opened with the task");
            let agg = KeyedAggregate::new(index, logic, store);
            match window {
                None => Box::new(agg),
                Some(spec) => Box::new(WindowedAggregate::new(agg, *spec)),
            }
        }
        Operation::Join(join) => {
            let joiner = match &join.joiner {
                JoinerRef::Merge => ValueJoiner::from(BuiltIn::Merge),
                JoinerRef::Pair => ValueJoiner::from(BuiltIn::Pair),
                JoinerRef::Plugin(_) => {
                    let plugin = plugin.expect("a joiner plugin is loaded").clone();
                    ValueJoiner::plugin(plugin, step.config.clone())?
                }
            };
            match &join.with {
                JoinWith::Table {
                    store,
                    history,
                    grace,
                    ..
                } => {
                    let store =
                        store_of(store).expect("a joined table's store is opened with the task");
                    let grace = grace.as_ref().map(|g| {
                        let buffer =
                            store_of(&g.store).expect("a join's store is opened with the task");
                        (g.grace, buffer)
                    });
                    let versioned = history.map(|history| Versioned { history });
                    Box::new(StreamTableJoin::new(
                        index,
                        (join.kind, joiner),
                        (store, versioned),
                        grace,
                    ))
                }
                JoinWith::Global { store, key: by, .. } => {
                    let globals = globals.expect("global tables come with the state context");
                    let key_plugin = match key {
                        Some(p) => Some(PluginStep::new(p.clone(), step.config.clone())?),
                        None => None,
                    };
                    Box::new(StreamGlobalJoin::new(
                        index,
                        join.kind,
                        (joiner, key_plugin),
                        (Arc::clone(globals), store, by.clone()),
                    ))
                }
                JoinWith::Tables { store } => {
                    let store = store_of(store).expect("a join's store is opened with the task");
                    Box::new(TableTableJoin::new(index, join.kind, joiner, store))
                }
                JoinWith::ForeignKey { field, store, .. } => {
                    let store = store_of(store).expect("a join's store is opened with the task");
                    Box::new(ForeignKeyJoin::new(
                        index,
                        join.kind,
                        joiner,
                        (field.clone(), store),
                    ))
                }
                JoinWith::Stream { window, store, .. } => {
                    let store = store_of(store).expect("a join's store is opened with the task");
                    Box::new(StreamStreamJoin::new(
                        index, join.kind, *window, joiner, store,
                    ))
                }
            }
        }
    })
}

/// The operator of source `index` when it is read as a table.
pub fn table(index: usize, source: &Source, stores: Option<&TaskStores>) -> Option<Table> {
    let table = source.table.as_ref()?;
    let store = stores
        .and_then(|s| s.index(&table.store))
        .expect("a table's store is opened with the task");
    Some(Table::new(index, store, table.format, table.history))
}
