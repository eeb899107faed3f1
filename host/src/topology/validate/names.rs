//! Names: Kafka's rule for names (topics, stores, `application.id`), the
//! one namespace of node names, and the `inputs` of steps and sinks,
//! resolved from names to nodes.

use std::collections::{HashMap, HashSet};

use crate::topology::pipeline_file::PipelineFile;
use crate::topology::{NodeId, Source};

/// Kafka's rule for topic names, also used for `application.id`.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "`{}…` is longer than 249 characters",
            name.chars().take(40).collect::<String>()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!(
            "must not be `{name}` (it is a path component of the state directory)"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "`{name}` contains {c:?}; use only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// The kind of every node (`source`, `step` or `sink`), by name: one
/// namespace for all node names. A pipeline needs a source and a sink.
pub(super) fn node_kinds(file: &PipelineFile) -> Result<HashMap<&str, &'static str>, String> {
    let mut kinds: HashMap<&str, &str> = HashMap::new();
    for (kind, names) in [
        ("source", file.sources.keys().collect::<Vec<_>>()),
        ("step", file.steps.keys().collect()),
        ("sink", file.sinks.keys().collect()),
    ] {
        for name in names {
            if let Some(other) = kinds.insert(name, kind) {
                return Err(format!(
                    "the name `{name}` is used by a {other} and a {kind}; node names must be unique"
                ));
            }
        }
    }
    if file.sources.is_empty() {
        return Err("declare at least one [sources.<name>] table".into());
    }
    if file.sinks.is_empty() {
        return Err("declare at least one [sinks.<name>] table".into());
    }
    Ok(kinds)
}

/// Each step and sink names each of its inputs once.
pub(super) fn inputs_once(file: &PipelineFile) -> Result<(), String> {
    for (owner, inputs) in file
        .steps
        .iter()
        .map(|(n, d)| (format!("[steps.{n}]"), &d.inputs))
        .chain(
            file.sinks
                .iter()
                .map(|(n, d)| (format!("[sinks.{n}]"), &d.inputs)),
        )
    {
        let mut seen = HashSet::new();
        if let Some(twice) = inputs.iter().find(|i| !seen.insert(i.as_str())) {
            return Err(format!(
                "{owner} `inputs` names `{twice}` twice; each input is read once (naming it twice would process every record twice)"
            ));
        }
    }
    Ok(())
}

/// The nodes that can feed another, by name: sources by their index,
/// steps by their place in the topological order.
pub(super) struct Nodes<'a> {
    sources: HashMap<&'a str, usize>,
    steps: HashMap<&'a str, usize>,
    kinds: &'a HashMap<&'a str, &'a str>,
}

impl<'a> Nodes<'a> {
    /// The nodes of `sources` and of the steps in `order`.
    pub(super) fn new(
        sources: &'a [Source],
        order: &'a [String],
        kinds: &'a HashMap<&'a str, &'a str>,
    ) -> Nodes<'a> {
        Nodes {
            sources: sources
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.as_str(), i))
                .collect(),
            steps: order
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect(),
            kinds,
        }
    }

    /// The `inputs` of `owner` (`[steps.x]` or `[sinks.y]`), as nodes.
    pub(super) fn resolve(&self, owner: &str, inputs: &[String]) -> Result<Vec<NodeId>, String> {
        if inputs.is_empty() {
            return Err(format!(
                "{owner} `inputs` is empty; name at least one source or step"
            ));
        }
        inputs
            .iter()
            .map(|i| {
                if let Some(&s) = self.sources.get(i.as_str()) {
                    Ok(NodeId::Source(s))
                } else if let Some(&s) = self.steps.get(i.as_str()) {
                    Ok(NodeId::Step(s))
                } else if self.kinds.get(i.as_str()) == Some(&"sink") {
                    Err(format!(
                        "{owner} `inputs` names sink `{i}`; a sink cannot feed anything"
                    ))
                } else {
                    Err(format!(
                        "{owner} `inputs` names `{i}`, which is not a source or step (known: {})",
                        self.known()
                    ))
                }
            })
            .collect()
    }

    /// The names of every source and step, sorted.
    fn known(&self) -> String {
        let mut names: Vec<&str> = self
            .sources
            .keys()
            .chain(self.steps.keys())
            .copied()
            .collect();
        names.sort();
        names.join(", ")
    }
}
