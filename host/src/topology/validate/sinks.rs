//! `[sinks.<name>]`: the topics a pipeline writes, none of which it reads,
//! and the nodes that feed each.

use std::collections::BTreeMap;

use super::names::{Nodes, check_name};
use crate::topology::pipeline_file::SinkDef;
use crate::topology::{Sink, Source};

/// Every sink, in name order.
pub(super) fn sinks(
    defs: &BTreeMap<String, SinkDef>,
    sources: &[Source],
    nodes: &Nodes,
) -> Result<Vec<Sink>, String> {
    defs.iter()
        .map(|(name, def)| {
            let topic = def.topic.clone().unwrap_or_else(|| name.clone());
            check_name(&topic).map_err(|m| format!("[sinks.{name}] `topic` {m}"))?;
            if sources.iter().any(|s| s.topic == topic) {
                return Err(format!(
                    "[sinks.{name}] writes to `{topic}`, which is also a source topic: the pipeline would read its own output"
                ));
            }
            Ok(Sink {
                name: name.clone(),
                topic,
                inputs: nodes.resolve(&format!("[sinks.{name}]"), &def.inputs)?,
                repartition: false,
            })
        })
        .collect()
}
