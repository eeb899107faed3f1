//! Where a pipeline's state stores live and what they may take: the
//! `[state]` table, validated (by `topology/validate/state.rs`) into
//! [`StateSettings`].

use std::path::PathBuf;

use serde::Deserialize;

/// Where a task's stores live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// RocksDB, one directory per application, task and store.
    #[default]
    Rocksdb,
    /// In memory; restored in full from the changelog at every start.
    Memory,
}

/// Where state stores are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSettings {
    /// Root directory; a store lives in `<dir>/<application.id>/<task>/<store>`.
    pub dir: PathBuf,
    /// RocksDB or in-memory.
    pub kind: StoreKind,
    /// Changelog records a restore writes at a time.
    pub restore_chunk: usize,
    /// Bytes every store of the pipeline may take together in memory
    /// (`memory-mb`).
    pub memory_bytes: u64,
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings {
            dir: std::env::temp_dir().join("sluice-state"),
            kind: StoreKind::Rocksdb,
            restore_chunk: 10_000,
            memory_bytes: super::memory_budget::DEFAULT_MEMORY_MB << 20,
        }
    }
}
