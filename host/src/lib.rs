//! Sluice: stateful stream processing on Kafka, with the per-record logic
//! in sandboxed WebAssembly components.
//!
//! The host owns Kafka I/O, batching, delivery and error policies; a
//! plugin (a component exporting `sluice:plugin/processor@0.1.0`) owns the
//! logic.
//!
//! - [`topology`]: the pipeline file, validated into a DAG.
//! - [`plugin`]: loading and calling plugins (the runtime).
//! - [`plugins`]: a pipeline's plugins, loaded (or built) for its steps.
//! - [`toolchain`]: `sluice plugin new` and `build`: templates and builders per language.
//! - [`operator`]: what each node of the DAG does with a batch's records.
//! - [`task`]: per-partition tasks and the stream threads they run on.
//! - [`runner`]: the poll / dispatch / commit loop.
//! - [`time`]: timestamp extractors and stream time.
//! - [`window`]: window arithmetic (tumbling, hopping, sliding, session)
//!   and when windows close.
//! - [`state`]: task-local stores (RocksDB, in-memory), key layouts, changelogs.
//! - [`cdc`]: Debezium change events, read into rows.
//! - [`kafka`]: client settings, connection checks, the embedded broker.
//! - [`dev`]: `sluice dev`, a pipeline on an embedded broker with sample input.
//! - [`admin`]: `sluice serve`: many pipelines behind an admin API.
//! - [`error`]: typed errors.
//!
//! Where each concept lives, and one record's path from poll to commit:
//! `docs/architecture.md`.

pub mod admin;
pub mod cdc;
pub mod dev;
pub mod error;
pub mod fault;
pub mod kafka;
pub mod operator;
pub mod plugin;
pub mod plugins;
pub mod record;
pub mod runner;
pub mod state;
pub mod task;
pub mod time;
pub mod toolchain;
pub mod topology;
pub mod window;

pub use plugins::{Plugins, limited, load_plugins};
