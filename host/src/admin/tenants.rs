//! Tenants: who owns a pipeline, and the limits its pipelines run under.
//!
//! A tenants file (`sluice serve --tenants tenants.toml`) declares them:
//!
//! ```toml
//! [tenants.payments]
//! topics = ["payments."]     # prefixes of every topic it reads or writes
//! state-dir = "/var/lib/sluice/payments"
//! dlq-topic = "payments.dead-letters"  # its pipelines' dead letters
//! plugin-memory-mb = 64       # per plugin instance
//! plugin-deadline-ms = 500    # per call
//! plugin-output-kb = 4096     # per call
//! log-lines-per-second = 100  # all its plugins together
//! max-instances = 64          # plugin instances alive at once
//! quarantine-after-traps = 10 # within a minute: the pipeline is paused
//! max-pipelines = 16          # deployed at once
//! components-mb = 512         # its uploaded components together
//! token-sha256 = "9f86d0…"    # SHA-256 of its API token (optional)
//! ```
//!
//! Tenants can also be created through the admin API (`POST /tenants`),
//! with the same fields in JSON.
//!
//! At deploy, a tenant's pipeline must keep to its prefixes: its sources,
//! sinks, dead-letter topic and `application.id` (so its changelog topics,
//! `<application.id>-<store>-changelog`, and its consumer group) all start
//! with one of them; a pipeline that does not is refused, naming the
//! topic. Its `[kafka]` table may hold only tuning properties
//! ([`crate::kafka::allow_list`]), and it may not name a state directory:
//! its stores live under the tenant's (`state-dir`, set by the operator,
//! or `<data dir>/tenants/<name>/state`), and its
//! plugins get the tenant's limits where they are tighter than the
//! pipeline's own. A pipeline that names no dead-letter topic uses the
//! tenant's, and a trap never stops a tenant's pipeline: `trap = "fail"`
//! becomes `dlq` (the record is dead-lettered, and the traps count towards
//! the quarantine). At run time the producer refuses any topic outside the
//! prefixes ([`crate::kafka::producer::OutputProducer`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Safe defaults for a tenant that names no limits.
const DEFAULT_MEMORY_MB: usize = 64;
const DEFAULT_DEADLINE_MS: u64 = 1_000;
const DEFAULT_QUARANTINE_TRAPS: u64 = 10;
const DEFAULT_OUTPUT_KB: usize = 4 << 10;
const DEFAULT_LOG_LINES: u32 = 100;
const DEFAULT_MAX_INSTANCES: usize = 64;
const DEFAULT_MAX_PIPELINES: usize = 16;
const DEFAULT_COMPONENTS_MB: u64 = 512;

/// One tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tenant {
    /// Prefixes of the topics (and the `application.id`) it may use.
    pub topics: Vec<String>,
    /// Root of its pipelines' state stores.
    pub state_dir: Option<PathBuf>,
    /// Memory cap of one plugin instance, in MiB.
    #[serde(default = "default_memory")]
    pub plugin_memory_mb: usize,
    /// Deadline of one plugin call, in milliseconds.
    #[serde(default = "default_deadline")]
    pub plugin_deadline_ms: u64,
    /// Traps within a minute after which a pipeline is quarantined.
    #[serde(default = "default_quarantine")]
    pub quarantine_after_traps: u64,
    /// Where its pipelines' dead letters go, unless a pipeline names its
    /// own `dlq-topic`.
    pub dlq_topic: Option<String>,
    /// Bytes one plugin call may return, in KiB.
    #[serde(default = "default_output")]
    pub plugin_output_kb: usize,
    /// Log lines per second, all its plugins together; more are dropped
    /// (and counted).
    #[serde(default = "default_log_lines")]
    pub log_lines_per_second: u32,
    /// Plugin instances alive at once, all its pipelines together.
    #[serde(default = "default_max_instances")]
    pub max_instances: usize,
    /// Pipelines deployed at once (deploys under way count).
    #[serde(default = "default_max_pipelines")]
    pub max_pipelines: usize,
    /// MiB its uploaded components may take together.
    #[serde(default = "default_components_mb")]
    pub components_mb: u64,
    /// MiB the stores of one of its pipelines may take in memory together
    /// (the most its pipelines' `[state] memory-mb` may be).
    #[serde(default = "default_state_memory_mb")]
    pub state_memory_mb: u64,
    /// SHA-256 (hex) of the tenant's API token. Tokens issued through the
    /// API (`POST /tenants/{name}/token`) are kept in memory only.
    #[serde(default, skip_serializing)]
    pub token_sha256: Option<String>,
}

fn default_max_pipelines() -> usize {
    DEFAULT_MAX_PIPELINES
}

fn default_components_mb() -> u64 {
    DEFAULT_COMPONENTS_MB
}

fn default_state_memory_mb() -> u64 {
    crate::state::memory_budget::DEFAULT_MEMORY_MB
}

fn default_output() -> usize {
    DEFAULT_OUTPUT_KB
}

fn default_log_lines() -> u32 {
    DEFAULT_LOG_LINES
}

fn default_max_instances() -> usize {
    DEFAULT_MAX_INSTANCES
}

fn default_quarantine() -> u64 {
    DEFAULT_QUARANTINE_TRAPS
}

fn default_memory() -> usize {
    DEFAULT_MEMORY_MB
}

fn default_deadline() -> u64 {
    DEFAULT_DEADLINE_MS
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    #[serde(default)]
    tenants: BTreeMap<String, Tenant>,
}

/// Reads a tenants file.
pub fn load(path: &Path) -> Result<BTreeMap<String, Tenant>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the tenants file {}: {e}", path.display()))?;
    let file: TenantsFile =
        toml::from_str(&text).map_err(|e| format!("tenants file {}: {e}", path.display()))?;
    for (name, t) in &file.tenants {
        t.check(name)
            .map_err(|e| format!("tenants file {}: {e}", path.display()))?;
        let others = file.tenants.iter().filter(|(n, _)| *n != name);
        check_disjoint(name, t, others)
            .map_err(|e| format!("tenants file {}: {e}", path.display()))?;
    }
    Ok(file.tenants)
}

/// Refuses a tenant whose topic prefixes overlap another's: one prefix
/// starting with the other would let one tenant name topics, consumer
/// groups and transactional ids inside the other's.
pub fn check_disjoint<'a>(
    name: &str,
    tenant: &Tenant,
    others: impl IntoIterator<Item = (&'a String, &'a Tenant)>,
) -> Result<(), String> {
    for (other, t) in others {
        for a in &tenant.topics {
            for b in &t.topics {
                if a.starts_with(b.as_str()) || b.starts_with(a.as_str()) {
                    return Err(format!(
                        "tenant `{name}`'s topic prefix `{a}` overlaps tenant `{other}`'s `{b}`; tenants' prefixes must not start with one another"
                    ));
                }
            }
        }
    }
    Ok(())
}

impl Tenant {
    /// Checks a tenant's own settings.
    pub fn check(&self, name: &str) -> Result<(), String> {
        if name.is_empty()
            || name.len() > 64
            || name.starts_with('.')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(format!(
                "tenant name `{}` must be 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'",
                name.chars().take(64).collect::<String>()
            ));
        }
        if let Some(digest) = &self.token_sha256 {
            crate::admin::auth::parse_digest(digest)
                .map_err(|e| format!("tenant `{name}`: {e}"))?;
        }
        if self.topics.is_empty() || self.topics.iter().any(String::is_empty) {
            return Err(format!(
                "tenant `{name}` needs non-empty topic prefixes (`topics = [\"{name}.\"]`)"
            ));
        }
        if let Some(dlq) = self.dlq_topic.as_ref().filter(|d| !self.allows(d)) {
            return Err(format!(
                "tenant `{name}`'s `dlq-topic` `{dlq}` is outside its own topic prefixes"
            ));
        }
        for (what, zero) in [
            ("plugin-memory-mb", self.plugin_memory_mb == 0),
            ("plugin-deadline-ms", self.plugin_deadline_ms == 0),
            ("plugin-output-kb", self.plugin_output_kb == 0),
            ("max-instances", self.max_instances == 0),
            ("max-pipelines", self.max_pipelines == 0),
            ("components-mb", self.components_mb == 0),
            ("state-memory-mb", self.state_memory_mb == 0),
            ("quarantine-after-traps", self.quarantine_after_traps == 0),
        ] {
            if zero {
                return Err(format!("tenant `{name}`: `{what}` must be at least 1"));
            }
        }
        Ok(())
    }

    /// The budget its plugins share: log lines and live instances.
    pub fn budget(&self, name: &str) -> std::sync::Arc<crate::plugin::TenantBudget> {
        std::sync::Arc::new(crate::plugin::TenantBudget::new(
            name,
            self.log_lines_per_second,
            self.max_instances,
        ))
    }

    /// Whether `topic` is one of its topics.
    pub fn allows(&self, topic: &str) -> bool {
        self.topics.iter().any(|p| topic.starts_with(p.as_str()))
    }

    /// Where its pipelines' stores live: its `state-dir`, set by the
    /// operator, or `<data dir>/tenants/<name>/state`.
    pub fn state_root(&self, name: &str, data_dir: &Path) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("tenants").join(name).join("state"))
    }

    /// Checks a pipeline against the tenant's prefixes and the Kafka
    /// properties a tenant may set, and applies the tenant's state
    /// directory (`state_root`) and limits to it.
    pub fn admit(
        &self,
        budget: &std::sync::Arc<crate::plugin::TenantBudget>,
        topology: &mut crate::topology::Topology,
        state_root: &Path,
    ) -> Result<(), String> {
        let tenant = budget.tenant();
        crate::kafka::allow_list::check(&topology.kafka)?;
        if let Some(dlq) = self
            .dlq_topic
            .as_ref()
            .filter(|_| !topology.errors.dlq_named)
        {
            topology.errors.dlq_topic = dlq.clone();
        }
        if topology.errors.trap == crate::topology::ErrorPolicy::Fail {
            topology.errors.trap = crate::topology::ErrorPolicy::Dlq;
        }
        let mut named: Vec<(String, &str)> = vec![(
            topology.application_id.clone(),
            "`application.id` (its changelogs and consumer group start with it)",
        )];
        named.extend(
            topology
                .sources
                .iter()
                .map(|s| (s.topic.clone(), "source topic")),
        );
        named.extend(
            topology
                .output_topics()
                .into_iter()
                .map(|t| (t, "output topic")),
        );
        for (topic, what) in named {
            if !self.allows(&topic) {
                return Err(format!(
                    "tenant `{tenant}` may use topics starting with {}; the pipeline's {what} `{topic}` does not",
                    self.topics
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ));
            }
        }
        topology.state.dir = state_root.to_owned();
        topology.topic_prefixes = Some(self.topics.clone());
        topology.tenant = Some(std::sync::Arc::clone(budget));
        topology.state.memory_bytes = topology
            .state
            .memory_bytes
            .min(self.state_memory_mb.saturating_mul(1 << 20));
        let p = &mut topology.processing;
        p.plugin_memory = p
            .plugin_memory
            .min(self.plugin_memory_mb.saturating_mul(1 << 20));
        p.plugin_output = p
            .plugin_output
            .min(self.plugin_output_kb.saturating_mul(1 << 10));
        p.plugin_deadline = p
            .plugin_deadline
            .min(Duration::from_millis(self.plugin_deadline_ms));
        p.quarantine_traps = Some(p.quarantine_traps.map_or(self.quarantine_after_traps, |n| {
            n.min(self.quarantine_after_traps)
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(text: &str) -> crate::topology::Topology {
        let path = Path::new("/p/pipeline.toml");
        crate::topology::Topology::from_file(
            path,
            crate::topology::pipeline_file::PipelineFile::parse(path, text).unwrap(),
        )
        .unwrap()
    }

    const PIPELINE: &str = r#"
        application.id = "pay.fraud"
        [errors]
        rejected = "dlq"
        [sources.tx]
        topic = "pay.tx"
        [steps.c]
        aggregate = "count"
        inputs = ["tx"]
        [sinks.out]
        topic = "pay.counts"
        inputs = ["c"]
    "#;

    #[test]
    fn a_pipeline_keeps_to_its_tenants_prefixes_and_gets_its_limits() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tenants.toml");
        std::fs::write(
            &file,
            "[tenants.pay]\ntopics = [\"pay.\"]\nstate-dir = \"/state/pay\"\nplugin-deadline-ms = 200\nstate-memory-mb = 64\n",
        )
        .unwrap();
        let tenants = load(&file).unwrap();
        let pay = &tenants["pay"];
        assert_eq!(pay.plugin_memory_mb, DEFAULT_MEMORY_MB, "a safe default");
        let budget = pay.budget("pay");
        admitted_pipelines_get_the_tenants_limits(pay, &budget);
        the_tenants_dead_letter_topic_unless_the_pipeline_names_one(pay, &budget);
        a_tenants_settings_and_name_are_checked(pay);
        what_is_outside_the_tenants_prefixes_is_refused(pay, &budget);
        state_roots_names_and_overlapping_prefixes(pay);

        std::fs::write(&file, "[tenants.x]\ntopics = []\n").unwrap();
        assert!(
            load(&file)
                .unwrap_err()
                .contains("non-empty topic prefixes")
        );
    }

    /// `pay`'s state directory and limits, applied to a pipeline it admits;
    /// its defaults where it sets none.
    fn admitted_pipelines_get_the_tenants_limits(
        pay: &Tenant,
        budget: &std::sync::Arc<crate::plugin::TenantBudget>,
    ) {
        let mut t = topology(PIPELINE);
        pay.admit(budget, &mut t, &pay.state_root("pay", Path::new("/data")))
            .unwrap();
        assert_eq!(t.state.dir, PathBuf::from("/state/pay"));
        assert_eq!(t.state.memory_bytes, 64 << 20, "the tenant's cap");
        assert_eq!(t.processing.plugin_deadline, Duration::from_millis(200));
        assert_eq!(t.processing.plugin_memory, 64 << 20);
        assert_eq!(t.processing.quarantine_traps, Some(10));
        assert_eq!(t.processing.plugin_output, DEFAULT_OUTPUT_KB << 10);
        assert_eq!(
            t.errors.trap,
            crate::topology::ErrorPolicy::Dlq,
            "a trap never stops a tenant's pipeline"
        );
        assert_eq!(t.errors.dlq_topic, "pay.fraud-dlq", "no tenant DLQ named");
        assert!(
            t.tenant
                .is_some_and(|b| b.max_instances() == DEFAULT_MAX_INSTANCES)
        );
    }

    /// The tenant's dead-letter topic, unless the pipeline names one.
    fn the_tenants_dead_letter_topic_unless_the_pipeline_names_one(
        pay: &Tenant,
        budget: &std::sync::Arc<crate::plugin::TenantBudget>,
    ) {
        let with_dlq = Tenant {
            dlq_topic: Some("pay.dead".into()),
            ..pay.clone()
        };
        let mut t = topology(PIPELINE);
        with_dlq.admit(budget, &mut t, Path::new("/s")).unwrap();
        assert_eq!(t.errors.dlq_topic, "pay.dead");
        let mut t = topology(&PIPELINE.replace(
            "rejected = \"dlq\"",
            "rejected = \"dlq\"\n        dlq-topic = \"pay.own\"",
        ));
        with_dlq.admit(budget, &mut t, Path::new("/s")).unwrap();
        assert_eq!(t.errors.dlq_topic, "pay.own");
    }

    /// A tenant's dead-letter topic keeps to its prefixes, it has at least
    /// one instance, and its name is a plain one.
    fn a_tenants_settings_and_name_are_checked(pay: &Tenant) {
        let stray = Tenant {
            dlq_topic: Some("ops.dead".into()),
            ..pay.clone()
        };
        let e = stray.check("pay").unwrap_err();
        assert!(e.contains("`ops.dead` is outside"), "{e}");
        let e = Tenant {
            max_instances: 0,
            ..pay.clone()
        }
        .check("pay")
        .unwrap_err();
        assert!(e.contains("`max-instances` must be at least 1"), "{e}");
        assert!(pay.check("no spaces").is_err());
    }

    /// Topics and an `application.id` outside the tenant's prefixes, and
    /// Kafka properties a tenant may not set, are refused with the reason.
    fn what_is_outside_the_tenants_prefixes_is_refused(
        pay: &Tenant,
        budget: &std::sync::Arc<crate::plugin::TenantBudget>,
    ) {
        for (from, to, what) in [
            (
                "topic = \"pay.counts\"",
                "topic = \"ops.counts\"",
                "output topic `ops.counts`",
            ),
            (
                "topic = \"pay.tx\"",
                "topic = \"ops.tx\"",
                "source topic `ops.tx`",
            ),
            (
                "application.id = \"pay.fraud\"",
                "application.id = \"fraud\"",
                "`application.id` (its changelogs and consumer group start with it) `fraud`",
            ),
            (
                "rejected = \"dlq\"",
                "rejected = \"dlq\"\n        dlq-topic = \"dead\"",
                "output topic `dead`",
            ),
        ] {
            let mut t = topology(&PIPELINE.replace(from, to));
            let e = pay.admit(budget, &mut t, Path::new("/s")).unwrap_err();
            assert!(e.contains(what) && e.contains("`pay.`"), "{e}");
        }
        let mut t = topology(&PIPELINE.replace(
            "[errors]",
            "[kafka]\n        \"plugin.library.paths\" = \"/tmp/evil.so\"\n        [errors]",
        ));
        let e = pay.admit(budget, &mut t, Path::new("/s")).unwrap_err();
        assert!(
            e.contains("`plugin.library.paths`") && e.contains("native library"),
            "{e}"
        );
    }

    /// The default state root, names that are not plain, and tenants whose
    /// prefixes overlap.
    fn state_roots_names_and_overlapping_prefixes(pay: &Tenant) {
        let no_dir = Tenant {
            state_dir: None,
            ..pay.clone()
        };
        assert_eq!(
            no_dir.state_root("pay", Path::new("/data")),
            PathBuf::from("/data/tenants/pay/state")
        );
        for bad in ["..", ".", ".hidden", "a/b"] {
            assert!(pay.check(bad).is_err(), "{bad}");
        }
        let others = BTreeMap::from([("pay".to_owned(), pay.clone())]);
        let nested = Tenant {
            topics: vec!["pay.fraud.".into()],
            ..pay.clone()
        };
        let e = check_disjoint("fraud", &nested, &others).unwrap_err();
        assert!(e.contains("overlaps tenant `pay`"), "{e}");
        let apart = Tenant {
            topics: vec!["payroll.".into()],
            ..pay.clone()
        };
        check_disjoint("payroll", &apart, &others).unwrap();
    }
}
