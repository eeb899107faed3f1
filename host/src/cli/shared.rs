//! What several subcommands share: loading a pipeline with its plugins,
//! and stopping on SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use sluice::Plugins;
use sluice::toolchain::BuildOptions;
use sluice::topology::Topology;

/// Reads a pipeline file and loads its plugins (building plugin crates
/// on demand).
pub(crate) fn load(pipeline: &Path) -> Result<(Arc<Topology>, Plugins)> {
    let topology = Topology::load(pipeline)?;
    let engine = sluice::plugin::engine();
    let plugins = sluice::load_plugins(&engine, &topology, &BuildOptions::default())
        .with_context(|| format!("loading the plugins of {}", pipeline.display()))?;
    Ok((Arc::new(topology), plugins))
}

/// A flag SIGINT and SIGTERM set; a second signal while stopping exits at
/// once.
pub(crate) fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    Ok(stop)
}
