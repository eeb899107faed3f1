//! What a plugin may import from the host, one file per interface of
//! `wit/plugin.wit`: [`log`] (lines into the host's log, rate-limited per
//! tenant) and [`state`] (the task stores its step declares, lent for one
//! call). `types` carries no functions. Anything else a component imports
//! (WASI, sockets, files) is refused when it is loaded
//! (`plugin::component`).

pub mod log;
pub mod state;

use super::bindings::sluice::plugin::types;
use super::instance::HostState;

/// `sluice:plugin/types`: shared types, no functions.
impl types::Host for HostState {}
