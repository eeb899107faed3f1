//! The shape of the DAG: the order in which steps run (each after the
//! steps it reads from), and the steps that read a node.

use std::collections::{BTreeMap, HashMap};

use super::pipeline_file::StepDef;
use super::{NodeId, Topology};

impl Topology {
    /// Steps that take `node` as an input.
    pub fn consumers_of(&self, node: NodeId) -> impl Iterator<Item = usize> + '_ {
        self.steps
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.inputs.contains(&node))
            .map(|(i, _)| i)
    }
}

/// Orders steps so that each comes after the steps it reads from; a cycle
/// is reported with the steps on it. `kinds` is the kind of every node
/// (`source`, `step` or `sink`), by name.
pub(super) fn topological_order(
    steps: &BTreeMap<String, StepDef>,
    kinds: &HashMap<&str, &str>,
) -> Result<Vec<String>, String> {
    let mut indegree: BTreeMap<&str, usize> = steps.keys().map(|k| (k.as_str(), 0)).collect();
    for (name, def) in steps {
        for input in &def.inputs {
            if kinds.get(input.as_str()) == Some(&"step") {
                *indegree.get_mut(name.as_str()).expect("step") += 1;
            }
        }
    }
    let mut ready: Vec<&str> = indegree
        .iter()
        .filter(|(_, d)| **d == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut consumers: HashMap<&str, Vec<&str>> = HashMap::new();
    for (name, def) in steps {
        for input in &def.inputs {
            consumers.entry(input.as_str()).or_default().push(name);
        }
    }
    let mut order = Vec::with_capacity(steps.len());
    while let Some(next) = ready.pop() {
        order.push(next.to_owned());
        for &name in consumers.get(next).map_or(&[][..], Vec::as_slice) {
            let d = indegree.get_mut(name).expect("step");
            *d -= 1;
            if *d == 0 {
                ready.push(name);
            }
        }
    }
    if order.len() < steps.len() {
        let cycle: Vec<&str> = indegree
            .iter()
            .filter(|(_, d)| **d > 0)
            .map(|(n, _)| *n)
            .collect();
        return Err(format!(
            "the steps {} form a cycle; a topology must be acyclic",
            cycle.join(", ")
        ));
    }
    Ok(order)
}
