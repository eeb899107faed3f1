//! A pipeline's plugins: each step's and each extractor's component,
//! loaded from its path (or built from its crate or package first), checked
//! against what the step expects, and given the pipeline's limits.

use crate::error::PluginError;
use crate::plugin::{self, PluginKind};
use crate::time;
use crate::toolchain::{self, BuildOptions};
use crate::topology::{Operation, PluginRef, Topology};

/// The loaded plugins of a topology.
#[derive(Debug, Clone, Default)]
pub struct Plugins {
    /// Per step, in step order; `None` for a step without a plugin (the
    /// built-in count).
    pub steps: Vec<Option<plugin::Plugin>>,
    /// Per source, in source order: its timestamp-extractor plugin, if it
    /// has one.
    pub extractors: Vec<Option<plugin::Plugin>>,
    /// Per step, in step order: the key plugin of a join with a global
    /// table (`key-plugin`), if it has one.
    pub keys: Vec<Option<plugin::Plugin>>,
}

impl Plugins {
    /// No plugins at all, shaped for `topology` (for topologies without
    /// plugin steps or extractors, and tests).
    pub fn none(topology: &Topology) -> Plugins {
        Plugins {
            steps: vec![None; topology.steps.len()],
            extractors: vec![None; topology.sources.len()],
            keys: vec![None; topology.steps.len()],
        }
    }
}

/// Loads every plugin of `topology`: each step's (in step order), each
/// source's timestamp extractor, and each global join's key plugin. A
/// plugin that names a crate directory is built first (cargo decides
/// whether anything changed). A plugin of the wrong kind for its place (an
/// aggregator under `plugin`, a processor under `aggregate`, …) is
/// refused.
pub fn load_plugins(
    engine: &wasmtime::Engine,
    topology: &Topology,
    build: &BuildOptions,
) -> Result<Plugins, PluginError> {
    let steps = topology
        .steps
        .iter()
        .map(|step| {
            let Some(plugin_ref) = step.plugin() else {
                return Ok(None);
            };
            let wanted = match step.op {
                Operation::Process(_) => PluginKind::Processor,
                Operation::Aggregate { .. } => PluginKind::Aggregator,
                Operation::Join(_) => PluginKind::Joiner,
                Operation::ForeignKey(_) => unreachable!("a foreign-key join's part has no plugin"),
            };
            load_one(engine, &step.name, plugin_ref, wanted, build)
                .map(|p| Some(limited(p, topology)))
        })
        .collect::<Result<_, _>>()?;
    let extractors = topology
        .sources
        .iter()
        .map(|source| match &source.timestamp {
            time::Extractor::Plugin(plugin_ref) => load_one(
                engine,
                &source.name,
                plugin_ref,
                PluginKind::Extractor,
                build,
            )
            .map(|p| Some(limited(p, topology))),
            _ => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    let keys = (topology.steps.iter())
        .map(|step| match step.key_plugin() {
            None => Ok(None),
            Some(plugin_ref) => {
                let name = format!("{} key-plugin", step.name);
                load_one(engine, &name, plugin_ref, PluginKind::Processor, build)
                    .map(|p| Some(limited(p, topology)))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Plugins {
        steps,
        extractors,
        keys,
    })
}

/// A plugin with the topology's limits (`plugin.deadline.ms`,
/// `plugin.memory.mb`, `plugin.output.max.kb`, and its tenant's budget).
pub fn limited(plugin: plugin::Plugin, topology: &Topology) -> plugin::Plugin {
    let p = &topology.processing;
    plugin.with_limits(plugin::Limits {
        memory: p.plugin_memory,
        deadline: p.plugin_deadline,
        output: p.plugin_output,
        tenant: topology.tenant.clone(),
    })
}

fn load_one(
    engine: &wasmtime::Engine,
    name: &str,
    plugin_ref: &PluginRef,
    wanted: PluginKind,
    build: &BuildOptions,
) -> Result<plugin::Plugin, PluginError> {
    let path = match plugin_ref {
        PluginRef::Component(p) => p.clone(),
        PluginRef::Crate(dir) => {
            if !dir.exists() {
                return Err(PluginError::NotFound {
                    plugin: name.to_owned(),
                    path: dir.clone(),
                });
            }
            toolchain::build(dir, build).map_err(|source| PluginError::Build {
                plugin: name.to_owned(),
                source,
            })?
        }
    };
    let plugin = plugin::Plugin::load(engine, name, &path)?;
    if plugin.kind() != wanted {
        let (found, hint) = match plugin.kind() {
            PluginKind::Aggregator => ("an aggregator", "use it as a step's `aggregate = ...`"),
            PluginKind::Processor => ("a record processor", "use it as a step's `plugin = ...`"),
            PluginKind::Extractor => (
                "a timestamp extractor",
                "use it as a source's `timestamp-plugin = ...`",
            ),
            PluginKind::Joiner => ("a value joiner", "use it as a join's `joiner = ...`"),
        };
        return Err(PluginError::WrongWorld {
            plugin: name.to_owned(),
            expected: wanted.interface().to_owned(),
            found: format!("{} is {found}; {hint}", path.display()),
        });
    }
    tracing::info!(plugin = %name, digest = %&plugin.digest()[..12], path = %path.display(), "plugin loaded");
    Ok(plugin)
}
