//! A pipeline's changelog topics, made ready before its first record:
//! the sources must be co-partitioned (task `p` covers partition `p` of
//! each source, and owns partition `p` of each changelog), and every
//! store's changelog must exist, compacted, with that many partitions.
//! The record format of a changelog is in [`super::changelog`].

use std::time::Duration;

use super::changelog;
use super::settings::StateSettings;
use super::task_state::StateContext;
use crate::error::{KafkaError, RunError};
use crate::kafka::client_config::ClientSettings;
use crate::kafka::topics::{self, TopicSpec};

/// Checks that the sources are co-partitioned (task `p` covers partition
/// `p` of each, and owns partition `p` of each changelog), and makes sure
/// every store's changelog exists, compacted, with that many partitions.
/// `counts` are the sources' partition counts, `stores` the pipeline's
/// store names, `state` its `[state]` settings.
pub fn prepare_state(
    application_id: &str,
    stores: &[&str],
    state: &StateSettings,
    settings: &ClientSettings,
    counts: &[(String, usize)],
    timeout: Duration,
) -> Result<StateContext, RunError> {
    let partitions = counts.first().map_or(1, |(_, n)| *n as i32);
    if let Some((topic, n)) = counts.iter().find(|(_, n)| *n as i32 != partitions) {
        return Err(KafkaError::PartitionMismatch {
            topic: topic.clone(),
            expected: partitions,
            found: *n as i32,
        }
        .into());
    }
    let specs: Vec<TopicSpec> = stores
        .iter()
        .map(|store| TopicSpec {
            name: changelog::topic(application_id, store),
            partitions,
            compacted: true,
        })
        .collect();
    let ensured = topics::create_missing(settings, &specs, timeout)?;
    for created in &ensured.created {
        tracing::info!(topic = %created, partitions, "changelog topic created");
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
