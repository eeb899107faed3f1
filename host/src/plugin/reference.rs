//! How a pipeline names a plugin: a built component, or a crate to build.

use std::path::{Path, PathBuf};

/// Where a step's plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    /// A built component file.
    Component(PathBuf),
    /// A plugin crate directory, built on demand.
    Crate(PathBuf),
}

impl PluginRef {
    /// The path as resolved against the pipeline file.
    pub fn path(&self) -> &Path {
        match self {
            PluginRef::Component(p) | PluginRef::Crate(p) => p,
        }
    }
}
