//! Loading a plugin: read, check the world and imports, compile once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use super::bindings::aggregator::RecordAggregatorPre;
use super::bindings::extractor::TimestampExtractorPre;
use super::bindings::joiner::ValueJoinerPre;
use super::bindings::{
    AGGREGATOR_INTERFACE, ALLOWED_IMPORTS, EXTRACTOR_INTERFACE, JOINER_INTERFACE,
    PROCESSOR_INTERFACE, RecordProcessor, RecordProcessorPre,
};
use super::cache::ComponentCache;
use super::instance::{Bindings, HostState, InitOutcome, PluginInstance};
use super::limits::Limits;
use crate::error::PluginError;

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    /// `record-processor`: map, filter, flat-map.
    Processor,
    /// `record-aggregator`: keyed aggregation.
    Aggregator,
    /// `timestamp-extractor`: event times of a source's records.
    Extractor,
    /// `value-joiner`: the value of a joined record from a matched pair.
    Joiner,
}

impl PluginKind {
    /// The versioned interface a plugin of this kind exports.
    pub fn interface(self) -> &'static str {
        match self {
            PluginKind::Processor => PROCESSOR_INTERFACE,
            PluginKind::Aggregator => AGGREGATOR_INTERFACE,
            PluginKind::Extractor => EXTRACTOR_INTERFACE,
            PluginKind::Joiner => JOINER_INTERFACE,
        }
    }

    /// Every kind, in the order a component's exports are matched.
    const ALL: [PluginKind; 4] = [
        PluginKind::Processor,
        PluginKind::Aggregator,
        PluginKind::Extractor,
        PluginKind::Joiner,
    ];
}

#[derive(Clone)]
enum Pre {
    Processor(RecordProcessorPre<HostState>),
    Aggregator(RecordAggregatorPre<HostState>),
    Extractor(TimestampExtractorPre<HostState>),
    Joiner(ValueJoinerPre<HostState>),
}

/// A checked, compiled plugin, ready to be instantiated for each task.
#[derive(Clone)]
pub struct Plugin {
    name: Arc<str>,
    path: PathBuf,
    digest: String,
    engine: Engine,
    pre: Pre,
    limits: Limits,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Reads a component file, checks it exports one of the worlds of
    /// `sluice:plugin@0.1.0` (a record processor, an aggregator, a
    /// timestamp extractor or a value joiner) and imports nothing else,
    /// and compiles it.
    pub fn load(engine: &Engine, name: &str, path: &Path) -> Result<Plugin, PluginError> {
        let bytes = std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => PluginError::NotFound {
                plugin: name.to_owned(),
                path: path.to_owned(),
            },
            _ => PluginError::Read {
                plugin: name.to_owned(),
                path: path.to_owned(),
                source: e,
            },
        })?;
        Self::from_bytes(engine, name, path, &bytes)
    }

    /// As [`Plugin::load`], from bytes already in memory.
    pub fn from_bytes(
        engine: &Engine,
        name: &str,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Plugin, PluginError> {
        let not_component = |detail: &str| PluginError::NotAComponent {
            plugin: name.to_owned(),
            path: path.to_owned(),
            detail: detail.to_owned(),
        };
        if !bytes.starts_with(b"\0asm") {
            return Err(not_component(
                "it does not start with the WebAssembly magic bytes",
            ));
        }
        if wasmparser::Parser::is_core_wasm(bytes) {
            return Err(not_component(
                "it is a core WebAssembly module; make a component of it with `sluice plugin build` \
                 (or `wasm-tools component new`)",
            ));
        }
        let digest = hex::encode(Sha256::digest(bytes));
        let (component, _) = process_cache()
            .component(engine, name, bytes, &digest)
            .map_err(|e| PluginError::Compile {
                plugin: name.to_owned(),
                message: format!("{e:#}"),
            })?;
        let kind = check_imports_and_exports(engine, name, &component)?;

        let mut linker = Linker::new(engine);
        // One linker serves every world: the processor's imports (`types`,
        // `log`, `state`) include those of the aggregator, the extractor and
        // the joiner (`types`, `log`).
        RecordProcessor::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .expect("fresh linker has no conflicting definitions");
        let wrong_world = |e: wasmtime::Error| PluginError::WrongWorld {
            plugin: name.to_owned(),
            expected: kind.interface().to_owned(),
            found: format!("{e:#}"),
        };
        // Only imports are checked here (exports below): an import of the
        // host's name with another signature is named as such.
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| import_mismatch(name, &e))?;
        let pre = match kind {
            PluginKind::Processor => {
                Pre::Processor(RecordProcessorPre::new(pre).map_err(wrong_world)?)
            }
            PluginKind::Aggregator => {
                Pre::Aggregator(RecordAggregatorPre::new(pre).map_err(wrong_world)?)
            }
            PluginKind::Extractor => {
                Pre::Extractor(TimestampExtractorPre::new(pre).map_err(wrong_world)?)
            }
            PluginKind::Joiner => Pre::Joiner(ValueJoinerPre::new(pre).map_err(wrong_world)?),
        };
        Ok(Plugin {
            name: name.into(),
            path: path.to_owned(),
            digest,
            engine: engine.clone(),
            pre,
            limits: Limits::default(),
        })
    }

    /// Sets the limits of its instances: the memory cap, the deadline and
    /// output cap of each call, and the tenant's shared budget. A call past
    /// any of them traps; only that call fails.
    pub fn with_limits(mut self, limits: Limits) -> Plugin {
        self.limits = limits;
        self
    }

    /// The limits its instances run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Which world it implements.
    pub fn kind(&self) -> PluginKind {
        match self.pre {
            Pre::Processor(_) => PluginKind::Processor,
            Pre::Aggregator(_) => PluginKind::Aggregator,
            Pre::Extractor(_) => PluginKind::Extractor,
            Pre::Joiner(_) => PluginKind::Joiner,
        }
    }

    /// The name this plugin was loaded under (usually the step name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the component bytes, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The component file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a fresh instance and calls its `init` with `config`.
    pub fn instantiate(&self, config: &[(String, String)]) -> Result<PluginInstance, PluginError> {
        let ticket = match &self.limits.tenant {
            Some(budget) => Some(
                budget
                    .take_instance()
                    .map_err(|message| PluginError::Quota {
                        plugin: self.name.to_string(),
                        message,
                    })?,
            ),
            None => None,
        };
        let mut store = Store::new(
            &self.engine,
            HostState::new(self.name.clone(), &self.limits, ticket),
        );
        store.limiter(|s| s.limiter());
        store.set_epoch_deadline(store.data().deadline_ticks());
        let trapped = |message: String| PluginError::StartTrap {
            plugin: self.name.to_string(),
            message,
        };
        let bindings = match &self.pre {
            Pre::Processor(pre) => pre.instantiate(&mut store).map(Bindings::Processor),
            Pre::Aggregator(pre) => pre.instantiate(&mut store).map(Bindings::Aggregator),
            Pre::Extractor(pre) => pre.instantiate(&mut store).map(Bindings::Extractor),
            Pre::Joiner(pre) => pre.instantiate(&mut store).map(Bindings::Joiner),
        }
        .map_err(|e| trapped(format!("{e:#}")))?;
        match PluginInstance::start(store, bindings, config) {
            InitOutcome::Ready(instance) => Ok(instance),
            InitOutcome::Refused { code, message } => Err(PluginError::Init {
                plugin: self.name.to_string(),
                code,
                message,
            }),
            InitOutcome::Trapped(t) => Err(trapped(t.0)),
        }
    }
}

/// The component cache of this process ([`ComponentCache::from_env`]).
fn process_cache() -> &'static ComponentCache {
    static CACHE: std::sync::OnceLock<ComponentCache> = std::sync::OnceLock::new();
    CACHE.get_or_init(ComponentCache::from_env)
}

/// An import the linker refused: wasmtime says "component imports instance
/// `<name>`, but a matching implementation was not found in the linker",
/// with what differs in the causes.
fn import_mismatch(name: &str, e: &wasmtime::Error) -> PluginError {
    let mut chain = e.chain().map(|c| c.to_string());
    let head = chain.next().unwrap_or_default();
    let causes: Vec<String> = chain.collect();
    let import = head
        .strip_prefix("component imports ")
        .and_then(|rest| rest.split('`').nth(1))
        .map(|import| format!("`{import}`"));
    match import {
        Some(import) => PluginError::ImportMismatch {
            plugin: name.to_owned(),
            import,
            detail: if causes.is_empty() {
                head
            } else {
                causes.join(": ")
            },
        },
        None => PluginError::ImportMismatch {
            plugin: name.to_owned(),
            import: "an interface of the host".to_owned(),
            detail: std::iter::once(head)
                .chain(causes)
                .collect::<Vec<_>>()
                .join(": "),
        },
    }
}

fn check_imports_and_exports(
    engine: &Engine,
    name: &str,
    component: &Component,
) -> Result<PluginKind, PluginError> {
    let ty = component.component_type();
    let forbidden: Vec<String> = ty
        .imports(engine)
        .map(|(n, _)| n.to_owned())
        .filter(|n| !ALLOWED_IMPORTS.contains(&n.as_str()))
        .collect();
    if !forbidden.is_empty() {
        return Err(PluginError::ForbiddenImport {
            plugin: name.to_owned(),
            imports: forbidden,
            allowed: ALLOWED_IMPORTS.iter().map(|s| s.to_string()).collect(),
        });
    }
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    for kind in PluginKind::ALL {
        if exports.iter().any(|e| e == kind.interface()) {
            return Ok(kind);
        }
    }
    let versionless = |i: &str| format!("{}@", i.split('@').next().expect("has a name"));
    let found = match exports.iter().find(|e| {
        PluginKind::ALL
            .iter()
            .any(|k| e.starts_with(&versionless(k.interface())))
    }) {
        Some(other) => format!(
            "it exports `{other}`, a version this host does not speak; rebuild it against sluice:plugin@0.1.0"
        ),
        None if exports.is_empty() => "it exports nothing".to_owned(),
        None => format!(
            "it exports {}; is it a plugin for another world?",
            exports
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Err(PluginError::WrongWorld {
        plugin: name.to_owned(),
        expected: format!(
            "{PROCESSOR_INTERFACE}`, `{AGGREGATOR_INTERFACE}`, `{EXTRACTOR_INTERFACE}` or `{JOINER_INTERFACE}"
        ),
        found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A processor in component text: it imports `sluice:plugin/types`
    /// and `sluice:plugin/log` (the latter as `log` declares it), and
    /// exports `sluice:plugin/processor@0.1.0` with the host's signatures.
    fn processor(log: &str) -> Vec<u8> {
        let text = format!(
            r#"(component
              (import "sluice:plugin/types@0.1.0" (instance $types
                (type $e (record (field "code" string) (field "message" string)))
                (export "error" (type (eq $e)))))
              (alias export $types "error" (type $error))
              (import "sluice:plugin/log@0.1.0" (instance $log {log}))
              (core module $m
                (memory (export "memory") 1)
                (global $heap (mut i32) (i32.const 1024))
                (func (export "realloc") (param i32 i32 i32 i32) (result i32)
                  (local $p i32)
                  (local.set $p (global.get $heap))
                  (global.set $heap
                    (i32.and (i32.add (i32.add (global.get $heap) (local.get 3)) (i32.const 7))
                      (i32.const -8)))
                  (local.get $p))
                ;; ok(()), and ok(empty frame): zeroed memory at 0.
                (func (export "init") (param i32 i32) (result i32) (i32.const 0))
                (func (export "process") (param i32 i32) (result i32) (i32.const 0)))
              (core instance $i (instantiate $m))
              (alias core export $i "memory" (core memory $mem))
              (func $init (param "config" (list (tuple string string))) (result (result (error $error)))
                (canon lift (core func $i "init") (memory $mem) (realloc (func $i "realloc"))))
              (func $process (param "batch" (list u8)) (result (result (list u8) (error $error)))
                (canon lift (core func $i "process") (memory $mem) (realloc (func $i "realloc"))))
              (instance $processor
                (export "error" (type $error))
                (export "init" (func $init))
                (export "process" (func $process)))
              (export "sluice:plugin/processor@0.1.0" (instance $processor)))"#
        );
        wat::parse_str(text).expect("valid component text")
    }

    /// `log` as wit/plugin.wit declares it.
    const LOG: &str = r#"
        (type $l (enum "trace" "debug" "info" "warn" "error"))
        (export "level" (type $level (eq $l)))
        (export "log" (func (param "level" $level) (param "message" string)))"#;

    /// A component that imports a host interface by its right name and
    /// version but with another signature (here `log`'s level as a
    /// number) is refused naming that import and the mismatch, not as a
    /// component that "does not export" the processor it does export.
    #[test]
    fn an_import_of_the_hosts_name_with_another_signature_is_named() {
        let engine = crate::plugin::engine();
        let load = |name: &str, log: &str| {
            Plugin::from_bytes(&engine, name, Path::new("p.wasm"), &processor(log))
        };
        let right = load("right", LOG).expect("the host's signatures load");
        assert_eq!(right.kind(), PluginKind::Processor);

        let number = r#"(export "log" (func (param "level" u32) (param "message" string)))"#;
        let e = load("number", number).unwrap_err().to_string();
        assert!(
            e.starts_with("plugin `number` imports `sluice:plugin/log@0.1.0`, but not with the signature of this host's WIT"),
            "{e}"
        );
        assert!(e.contains("`log`"), "names the function: {e}");
        assert!(!e.contains("does not export"), "{e}");

        // A function the host's `log` does not have.
        let extra = format!(
            r#"{LOG}
            (export "flush" (func))"#
        );
        let e = load("extra", &extra).unwrap_err().to_string();
        assert!(
            e.starts_with("plugin `extra` imports `sluice:plugin/log@0.1.0`, but not with"),
            "{e}"
        );
        assert!(e.contains("`flush`"), "names the function: {e}");
    }
}
