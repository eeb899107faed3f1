//! `sluice:plugin/log`: a plugin's log lines, into the host's log under
//! the target `sluice::plugin`, named by plugin; a tenant's lines share a
//! rate (`log-lines-per-second`), and lines past it are dropped and
//! counted.

use super::super::bindings::sluice::plugin::log::{self, Level};
use super::super::instance::HostState;

impl log::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        if self
            .limits
            .tenant
            .as_ref()
            .is_some_and(|budget| !budget.admit_log_line())
        {
            return;
        }
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(target: "sluice::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "sluice::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "sluice::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "sluice::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "sluice::plugin", plugin, "{message}"),
        }
    }
}
