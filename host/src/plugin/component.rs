//! Loading a plugin: read, check the world and imports, compile once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use super::bindings::{ALLOWED_IMPORTS, PROCESSOR_INTERFACE, RecordProcessor, RecordProcessorPre};
use super::instance::{HostState, InitOutcome, PluginInstance};
use crate::error::PluginError;

/// Default cap on one instance's linear memory.
pub const DEFAULT_MAX_MEMORY: usize = 256 << 20;

/// A checked, compiled plugin, ready to be instantiated for each task.
#[derive(Clone)]
pub struct Plugin {
    name: Arc<str>,
    path: PathBuf,
    digest: String,
    engine: Engine,
    pre: RecordProcessorPre<HostState>,
    max_memory: usize,
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
    /// Reads a component file, checks it is a record processor of
    /// `sluice:plugin@0.1.0` that imports nothing else, and compiles it.
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
        let component = Component::new(engine, bytes).map_err(|e| PluginError::Compile {
            plugin: name.to_owned(),
            message: format!("{e:#}"),
        })?;
        check_imports_and_exports(engine, name, &component)?;

        let mut linker = Linker::new(engine);
        RecordProcessor::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .expect("fresh linker has no conflicting definitions");
        let wrong_world = |e: wasmtime::Error| PluginError::WrongWorld {
            plugin: name.to_owned(),
            expected: PROCESSOR_INTERFACE.to_owned(),
            found: format!("{e:#}"),
        };
        let pre = linker.instantiate_pre(&component).map_err(wrong_world)?;
        let pre = RecordProcessorPre::new(pre).map_err(wrong_world)?;
        Ok(Plugin {
            name: name.into(),
            path: path.to_owned(),
            digest: hex::encode(Sha256::digest(bytes)),
            engine: engine.clone(),
            pre,
            max_memory: DEFAULT_MAX_MEMORY,
        })
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
        let mut store = Store::new(
            &self.engine,
            HostState::new(self.name.clone(), self.max_memory),
        );
        store.limiter(|s| s.limiter());
        let trapped = |message: String| PluginError::StartTrap {
            plugin: self.name.to_string(),
            message,
        };
        let bindings = self
            .pre
            .instantiate(&mut store)
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

fn check_imports_and_exports(
    engine: &Engine,
    name: &str,
    component: &Component,
) -> Result<(), PluginError> {
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
    if exports.iter().any(|e| e == PROCESSOR_INTERFACE) {
        return Ok(());
    }
    let unversioned = PROCESSOR_INTERFACE.split('@').next().expect("has a name");
    let found = match exports
        .iter()
        .find(|e| e.starts_with(&format!("{unversioned}@")))
    {
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
        expected: PROCESSOR_INTERFACE.to_owned(),
        found,
    })
}
