//! How each record of a batch gets its event time: its source's
//! extractor (`crate::time::extractor`), or the source's extractor plugin,
//! called once per call batch; then the task's stream time advances, and
//! a record without a valid time meets its source's `invalid-timestamp`
//! policy.

use crate::error::RunError;
use crate::operator::batch::BatchContext;
use crate::operator::call::PluginStep;
use crate::plugin::frame;
use crate::record::InputRecord;
use crate::time::{InvalidTimestamp, StreamTime};
use crate::topology::Topology;

/// Finds each record's event time, advances stream time (records
/// skipped as already applied too, so that a restart counts the same
/// records as out of order), and applies the `invalid-timestamp` policy.
pub fn assign(
    topology: &Topology,
    extractors: &mut [Option<PluginStep>],
    stream_time: &mut StreamTime,
    now: i64,
    frame_buf: &mut Vec<u8>,
    ctx: &mut BatchContext<'_>,
) -> Result<(), RunError> {
    let mut from_plugins = plugin_times(topology, extractors, frame_buf, ctx.batch)?;
    for (i, r) in ctx.batch.iter().enumerate() {
        let Some(source) = topology.sources.iter().find(|s| *s.topic == *r.topic) else {
            let t = r.record.timestamp.unwrap_or(0);
            ctx.times.push(t);
            ctx.stream_at.push(t);
            continue;
        };
        let extracted = match from_plugins[i].take() {
            Some(t) => t.and_then(|t| crate::time::event_time(t, "the extractor plugin's time")),
            None => source.timestamp.extract(
                r.record.timestamp,
                r.timestamp_kind,
                r.record.value.as_deref(),
                now,
            ),
        };
        let time = match extracted {
            Ok(t) => {
                if stream_time.observe(t) && ctx.live[i] {
                    ctx.counts.out_of_order += 1;
                }
                Some(t)
            }
            Err(reason) => {
                let fallback = match source.invalid_timestamp {
                    InvalidTimestamp::Fail => {
                        return Err(RunError::InvalidTimestamp {
                            source_name: source.name.clone(),
                            topic: r.topic.to_string(),
                            partition: r.partition,
                            offset: r.offset,
                            reason,
                        });
                    }
                    InvalidTimestamp::Skip => None,
                    InvalidTimestamp::UsePartitionTime => stream_time.get(),
                };
                if ctx.live[i] {
                    ctx.counts.invalid_timestamps += 1;
                    tracing::debug!(topic = %r.topic, partition = r.partition, offset = r.offset, "invalid timestamp: {reason}");
                }
                fallback
            }
        };
        match time {
            Some(t) => ctx.times.push(t),
            None => {
                if ctx.live[i] {
                    ctx.live[i] = false;
                    match r.origin {
                        Some(_) => ctx.counts.repartitioned -= 1,
                        None => ctx.counts.records_in -= 1,
                    }
                    ctx.counts.timestamp_dropped += 1;
                }
                ctx.times.push(0);
            }
        }
        ctx.stream_at
            .push(stream_time.get().unwrap_or(ctx.times[i]));
    }
    Ok(())
}

/// Calls the extractor plugins, once per source that has one, with
/// that source's records of the batch; per batch record, the plugin's
/// answer (`None` for records of other sources).
#[allow(clippy::type_complexity)]
fn plugin_times(
    topology: &Topology,
    extractors: &mut [Option<PluginStep>],
    frame_buf: &mut Vec<u8>,
    batch: &[InputRecord],
) -> Result<Vec<Option<Result<i64, String>>>, RunError> {
    let mut out: Vec<Option<Result<i64, String>>> = vec![None; batch.len()];
    for (s, source) in topology.sources.iter().enumerate() {
        let Some(rt) = extractors[s].as_mut() else {
            continue;
        };
        let at: Vec<usize> = (0..batch.len())
            .filter(|&i| *batch[i].topic == *source.topic)
            .collect();
        if at.is_empty() {
            continue;
        }
        let input = frame::encode(
            std::mem::take(frame_buf),
            at.iter().map(|&i| batch[i].record.as_ref()),
        );
        let protocol = |message: String| RunError::Protocol {
            step: format!("{} (timestamp extractor)", source.name),
            message,
        };
        let result = rt.instance()?.extract(&input);
        *frame_buf = input;
        let times = match result {
            Ok(Ok(times)) => times,
            Ok(Err((code, message))) => {
                return Err(protocol(format!(
                    "the extractor refused the whole call batch: {code}: {message}"
                )));
            }
            Err(trap) => {
                rt.discard_instance();
                return Err(protocol(format!("the extractor trapped: {trap}")));
            }
        };
        if times.len() != at.len() {
            return Err(protocol(format!(
                "the extractor returned {} times for {} records",
                times.len(),
                at.len()
            )));
        }
        for (&i, t) in at.iter().zip(times) {
            out[i] = Some(if t >= 0 {
                Ok(t)
            } else {
                Err("the extractor plugin found no valid time".to_owned())
            });
        }
    }
    Ok(out)
}
