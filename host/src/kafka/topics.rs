//! Internal topics: created where missing, checked where present.
//!
//! Changelog topics must be compacted and have exactly as many partitions
//! as the source topics of their tasks; a mismatch would send a task's
//! state to another task, so it is refused.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::client_config::ClientSettings;
use crate::error::KafkaError;

/// A topic Sluice needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Required partition count.
    pub partitions: i32,
    /// Whether it must be compacted (changelogs); else it is a repartition
    /// topic, created with `cleanup.policy=delete` and no retention limit
    /// (Sluice deletes its records once committed).
    pub compacted: bool,
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ensured {
    /// Topics it created.
    pub created: Vec<String>,
    /// Warnings it logged (wrong cleanup policy, configs not readable).
    pub warnings: Vec<String>,
}

/// Makes sure every topic of `specs` exists with its partition count:
/// missing topics are created (compacted ones with
/// `cleanup.policy=compact`); a topic with another partition count is an
/// error; a changelog that is not compacted is a warning.
pub fn ensure(
    settings: &ClientSettings,
    specs: &[TopicSpec],
    timeout: Duration,
) -> Result<Ensured, KafkaError> {
    let mut out = create_missing(settings, specs, timeout)?;
    out.warnings = check_compaction(settings, specs, timeout)?;
    Ok(out)
}

/// The first half of [`ensure`]: creates missing topics and checks
/// partition counts, without reading topic configs.
pub fn create_missing(
    settings: &ClientSettings,
    specs: &[TopicSpec],
    timeout: Duration,
) -> Result<Ensured, KafkaError> {
    let brokers = settings.brokers().to_owned();
    let consumer: BaseConsumer = settings
        .plain()
        .create()
        .map_err(KafkaError::client("creating a metadata client"))?;
    let metadata = consumer
        .fetch_metadata(None, timeout)
        .map_err(KafkaError::client(format!(
            "reading topic metadata from {brokers}"
        )))?;
    let mut out = Ensured::default();
    let mut missing = Vec::new();
    for spec in specs {
        match metadata
            .topics()
            .iter()
            .find(|t| t.name() == spec.name && t.error().is_none())
        {
            Some(t) if t.partitions().len() as i32 != spec.partitions => {
                return Err(KafkaError::PartitionMismatch {
                    topic: spec.name.clone(),
                    expected: spec.partitions,
                    found: t.partitions().len() as i32,
                });
            }
            Some(_) => {}
            None => missing.push(spec),
        }
    }
    let admin: AdminClient<DefaultClientContext> = settings
        .admin()
        .create()
        .map_err(KafkaError::client("creating an admin client"))?;
    // Bounded: the broker's operation, and each request to it.
    let opts = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    if !missing.is_empty() {
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|s| {
                let t = NewTopic::new(&s.name, s.partitions, TopicReplication::Fixed(-1));
                if s.compacted {
                    t.set("cleanup.policy", "compact")
                } else {
                    // A repartition topic: Sluice deletes what is committed.
                    t.set("cleanup.policy", "delete").set("retention.ms", "-1")
                }
            })
            .collect();
        let results = futures_executor::block_on(admin.create_topics(&new, &opts))
            .map_err(KafkaError::client(format!("creating topics on {brokers}")))?;
        for r in results {
            match r {
                Ok(name) => {
                    tracing::info!(topic = %name, "created topic");
                    out.created.push(name);
                }
                Err((name, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                    tracing::debug!(topic = %name, "created concurrently by another instance");
                }
                Err((name, code)) => {
                    return Err(KafkaError::CreateTopic {
                        topic: name,
                        reason: code.to_string(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Reads the `cleanup.policy` of the compacted topics of `specs` and
/// returns (and logs) a warning for each that is not compacted. A broker
/// that cannot describe configs (the embedded one) gives one warning.
pub fn check_compaction(
    settings: &ClientSettings,
    specs: &[TopicSpec],
    timeout: Duration,
) -> Result<Vec<String>, KafkaError> {
    let mut warnings = Vec::new();
    let admin: AdminClient<DefaultClientContext> = settings
        .admin()
        .create()
        .map_err(KafkaError::client("creating an admin client"))?;
    let opts = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let compacted: Vec<ResourceSpecifier<'_>> = specs
        .iter()
        .filter(|s| s.compacted)
        .map(|s| ResourceSpecifier::Topic(&s.name))
        .collect();
    if !compacted.is_empty() {
        match futures_executor::block_on(admin.describe_configs(&compacted, &opts)) {
            Ok(results) => {
                for r in results.into_iter().flatten() {
                    let policy = r
                        .get("cleanup.policy")
                        .and_then(|e| e.value.clone())
                        .unwrap_or_default();
                    if !policy.split(',').any(|p| p.trim() == "compact") {
                        let topic = match &r.specifier {
                            rdkafka::admin::OwnedResourceSpecifier::Topic(t) => t.clone(),
                            other => format!("{other:?}"),
                        };
                        let w = format!(
                            "changelog topic `{topic}` has cleanup.policy={policy}, not compact: it will grow without bound and old state may be deleted by retention"
                        );
                        tracing::warn!("{w}");
                        warnings.push(w);
                    }
                }
            }
            Err(e) => {
                let w = format!(
                    "cannot read the configs of the changelog topics ({e}); their cleanup policy is unchecked"
                );
                tracing::warn!("{w}");
                warnings.push(w);
            }
        }
    }
    Ok(warnings)
}
