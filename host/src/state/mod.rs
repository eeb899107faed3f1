//! Task-local state: stores, their key layouts, and their changelogs.
//!
//! - [`store`]: the [`KeyValueStore`] trait, atomic [`WriteBatch`]es, and
//!   the [`StoreBuffer`] that holds a commit interval's writes.
//! - [`memory`]: an in-memory store for tests and the test driver.
//! - [`memory_budget`]: the memory one pipeline's stores may take
//!   (`[state] memory-mb`).
//! - [`rocksdb`]: the RocksDB store, one directory per application, task
//!   and store under `state.dir`.
//! - [`key_layout`]: how window and session keys are laid out so that
//!   per-key, time-ordered range scans are single seeks.
//! - [`changelog`]: changelog topics, their record format, and restore.
//! - [`global_table`]: global tables, copied whole into every instance
//!   and restored from their topics before processing starts.
//! - [`versioned`]: versioned tables, each key's values over time, looked
//!   up as of a stream record's time.
//! - [`changelog_topics`]: a pipeline's changelog topics, made ready at
//!   start (co-partitioning checked, missing ones created).
//! - [`restore`]: restoring a store from its changelog partition in Kafka.
//! - [`settings`]: where a pipeline's stores live and what they may take.
//!
//! The protocol that keeps state exact under at-least-once delivery is in
//! `docs/state.md`.

pub mod changelog;
pub mod changelog_topics;
pub mod global_table;
pub mod key_layout;
pub mod memory;
pub mod memory_budget;
pub mod restore;
pub mod rocksdb;
pub mod settings;
pub mod store;
pub mod task_state;
pub mod versioned;

pub use store::{KeyValueStore, StoreBuffer, WriteBatch};

use std::path::{Path, PathBuf};

/// Where a task's store lives: `<state.dir>/<application.id>/<task>/<store>`.
pub fn store_dir(state_dir: &Path, application_id: &str, task: i32, store: &str) -> PathBuf {
    state_dir
        .join(application_id)
        .join(task.to_string())
        .join(store)
}
