//! `[processing]`: batching and commits, threads, the delivery guarantee,
//! and the limits and quarantine of plugin calls, read from Kafka-style
//! dotted names into [`Processing`].

use std::time::Duration;

use crate::topology::pipeline_file::{Scalar, flatten};
use crate::topology::{Guarantee, Processing};

const PROCESSING_KEYS: &str = "max.batch.records, commit.interval.ms, num.stream.threads, processing.guarantee, plugin.deadline.ms, plugin.memory.mb, plugin.output.max.kb, quarantine.after.traps, quarantine.window.ms, repartition.purge.interval.ms, cache.max.bytes";

/// Reads the `[processing]` table; a setting left out keeps its default.
pub(super) fn parse_processing(table: &toml::Table) -> Result<Processing, String> {
    let mut p = Processing::default();
    for (key, value) in flatten(table, "[processing]")? {
        let positive = |max: i64| match &value {
            Scalar::Integer(i) if (1..=max).contains(i) => Ok(*i),
            other => Err(format!(
                "[processing] `{key}` must be an integer from 1 to {max}, got {}",
                match other {
                    Scalar::Integer(i) => i.to_string(),
                    other => other.type_name().to_owned(),
                }
            )),
        };
        match key.as_str() {
            "max.batch.records" => p.max_batch_records = positive(1_000_000)? as usize,
            "commit.interval.ms" => {
                p.commit_interval = Duration::from_millis(positive(3_600_000)? as u64)
            }
            "num.stream.threads" => p.num_stream_threads = positive(256)? as usize,
            "plugin.deadline.ms" => {
                p.plugin_deadline = Duration::from_millis(positive(3_600_000)? as u64)
            }
            "plugin.memory.mb" => p.plugin_memory = (positive(4_096)? as usize) << 20,
            "plugin.output.max.kb" => p.plugin_output = (positive(4 << 20)? as usize) << 10,
            "quarantine.after.traps" => p.quarantine_traps = Some(positive(1_000_000)? as u64),
            "quarantine.window.ms" => {
                p.quarantine_window = Duration::from_millis(positive(86_400_000)? as u64)
            }
            "repartition.purge.interval.ms" => {
                p.repartition_purge_interval = Duration::from_millis(positive(86_400_000)? as u64)
            }
            "cache.max.bytes" => {
                p.cache_max_bytes = match &value {
                    Scalar::Integer(i) if (0..=1 << 40).contains(i) => *i as usize,
                    other => {
                        return Err(format!(
                            "[processing] `cache.max.bytes` must be an integer from 0 (off) to {}, got {}",
                            1_i64 << 40,
                            match other {
                                Scalar::Integer(i) => i.to_string(),
                                other => other.type_name().to_owned(),
                            }
                        ));
                    }
                }
            }
            "processing.guarantee" => {
                p.guarantee = match &value {
                    Scalar::String(s) if s == "at-least-once" => Guarantee::AtLeastOnce,
                    Scalar::String(s) if s == "exactly-once" => Guarantee::ExactlyOnce,
                    other => {
                        return Err(format!(
                            "[processing] `processing.guarantee` is \"at-least-once\" or \"exactly-once\", got {}",
                            match other {
                                Scalar::String(s) => format!("{s:?}"),
                                other => other.type_name().to_owned(),
                            }
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "[processing] unknown setting `{key}` (known: {PROCESSING_KEYS})"
                ));
            }
        }
    }
    Ok(p)
}
