//! A pipeline's changelog topics, made ready before its first record:
//! every store's changelog must exist, compacted, with as many partitions
//! as the sub-topology of its store has (task `p` owns partition `p` of
//! each changelog; that the sources of a sub-topology agree on the count
//! is [`crate::topology::Topology::partition_counts`]' business).
//! The record format of a changelog is in [`super::changelog`].

use std::time::Duration;

use super::changelog;
use super::settings::StateSettings;
use super::task_state::StateContext;
use crate::error::RunError;
use crate::kafka::client_config::ClientSettings;
use crate::kafka::topics::{self, TopicSpec};

/// Makes sure every store's changelog exists, compacted, with its
/// partition count. `stores` are the pipeline's store names with the
/// partition counts of their sub-topologies, `state` its `[state]`
/// settings.
pub fn prepare_state(
    application_id: &str,
    stores: &[(&str, i32)],
    state: &StateSettings,
    settings: &ClientSettings,
    timeout: Duration,
) -> Result<StateContext, RunError> {
    let specs: Vec<TopicSpec> = stores
        .iter()
        .map(|&(store, partitions)| TopicSpec {
            name: changelog::topic(application_id, store),
            partitions,
            compacted: true,
        })
        .collect();
    let ensured = topics::create_missing(settings, &specs, timeout)?;
    for created in &ensured.created {
        tracing::info!(topic = %created, "changelog topic created");
    }
    // Only a warning can come of it, and a broker that cannot describe
    // configs (the embedded one) would hold the start up until a timeout.
    {
        let settings = settings.clone();
        std::thread::spawn(move || topics::check_compaction(&settings, &specs, timeout));
    }
    tracing::info!(
        dir = %state.dir.display(),
        kind = ?state.kind,
        stores = stores.len(),
        "state stores"
    );
    Ok(StateContext::new(
        application_id,
        state.clone(),
        Some(settings.clone()),
    ))
}
