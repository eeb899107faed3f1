//! `sluice serve`: many pipelines in one long-running process, managed
//! through an HTTP admin API.
//!
//! - [`pipelines`]: the pipelines a host runs: deploy, status, pause and
//!   resume, plugin swaps (and their rollback), removal.
//! - [`tenants`]: who owns a pipeline: topic prefixes, state directory,
//!   plugin limits.
//! - [`api`]: the HTTP admin API over them (axum), with Prometheus
//!   `/metrics`; [`client`] is what the CLI subcommands call it with.
//!
//! Each pipeline runs on threads of its own (a poll loop, its stream
//! threads); the API's async runtime never runs Wasm. A swap's component is
//! compiled and its `init` run on a blocking thread of the API, then the
//! running pipeline swaps it at a committed batch boundary
//! (`runner::control`).

pub mod api;
pub mod client;
pub mod pipelines;
pub mod tenants;
