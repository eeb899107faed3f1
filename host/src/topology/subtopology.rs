//! Sub-topologies: the parts of a topology that a repartition topic (or
//! nothing at all) separates. A task runs one sub-topology on one
//! partition number, so each has its own partition count: its sources
//! must agree on it, and its stores' changelogs have it. A repartition
//! topic has the count it declares; else the count of the other sources
//! of the sub-topology that reads it (so that a join stays co-partitioned),
//! else the largest of the sub-topologies that write it (Kafka Streams'
//! rule).

use std::collections::HashMap;

use super::{NodeId, SubTopology, Topology};
use crate::error::KafkaError;

/// The parts of a set of nodes joined so far (a union-find).
struct Parts(Vec<usize>);

impl Parts {
    fn root(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        self.0[a.max(b)] = a.min(b);
    }
}

impl Topology {
    /// Finds the sub-topologies (nodes joined by `inputs`, by a store a
    /// step reads, or by reading one topic; global tables are in none),
    /// numbered in the order of
    /// their first source, and gives each repartition source without a
    /// declared count the count `sluice dev` creates its topic with.
    pub(super) fn split(mut self) -> Topology {
        let s = self.sources.len();
        let node = |n: NodeId| match n {
            NodeId::Source(i) => i,
            NodeId::Step(i) => s + i,
        };
        let mut parts = Parts((0..s + self.steps.len()).collect());
        for (i, step) in self.steps.iter().enumerate() {
            for &input in &step.inputs {
                parts.join(s + i, node(input));
            }
            if let super::Operation::Join(super::Join {
                with: super::JoinWith::Table { table, .. },
                ..
            }) = &step.op
            {
                parts.join(s + i, *table);
            }
        }
        let mut by_store: HashMap<&str, usize> = HashMap::new();
        let mut by_topic: HashMap<&str, usize> = HashMap::new();
        for (i, source) in self.sources.iter().enumerate() {
            if let Some(t) = &source.table {
                by_store.insert(&t.store, i);
            }
            match by_topic.get(source.topic.as_str()) {
                Some(&first) => parts.join(first, i),
                None => {
                    by_topic.insert(&source.topic, i);
                }
            }
        }
        for (i, step) in self.steps.iter().enumerate() {
            let stores = step
                .store()
                .into_iter()
                .chain(step.state.iter().map(|u| u.name.as_str()));
            for store in stores {
                match by_store.get(store) {
                    Some(&other) => parts.join(s + i, other),
                    None => {
                        by_store.insert(store, s + i);
                    }
                }
            }
        }
        let mut number: HashMap<usize, usize> = HashMap::new();
        let mut subs: Vec<SubTopology> = Vec::new();
        // A global table is in no sub-topology: every task reads it whole.
        for i in (0..s).filter(|&i| !self.sources[i].is_global()) {
            let root = parts.root(i);
            let n = *number.entry(root).or_insert_with(|| {
                subs.push(SubTopology::default());
                subs.len() - 1
            });
            subs[n].sources.push(i);
        }
        for i in 0..self.steps.len() {
            let n = number[&parts.root(s + i)];
            subs[n].steps.push(i);
        }
        for (k, sink) in self.sinks.iter().enumerate() {
            let mut of: Vec<usize> = (sink.inputs.iter())
                .map(|&n| number[&parts.root(node(n))])
                .collect();
            of.sort_unstable();
            of.dedup();
            for n in of {
                subs[n].sinks.push(k);
            }
        }
        self.subtopologies = subs;
        self.set_dev_partitions();
        self
    }

    /// Repartition sources without a declared count get the largest count
    /// of the sources upstream, as `sluice dev` creates them.
    fn set_dev_partitions(&mut self) {
        let counts: HashMap<String, i32> = (self.sources.iter())
            .filter(|s| s.repartition.is_none())
            .map(|s| (s.topic.clone(), s.partitions))
            .collect();
        if let Ok(per_sub) = self.partition_counts(|t| counts.get(t).copied()) {
            for (n, sub) in self.subtopologies.iter().enumerate() {
                for &i in &sub.sources {
                    self.sources[i].partitions = per_sub[n];
                }
            }
        }
    }

    /// Whether what sub-topology `n` writes to a repartition topic carries
    /// each record's origin, by which the reading side applies a record
    /// written twice (by a task that crashed before its commit) once. Only
    /// where a task reads one topic: its outputs for an input record are
    /// then the same when it is read again. A task that reads two (a
    /// join's sides, a foreign-key join's answers and right rows) may
    /// give an input record other outputs when they interleave otherwise,
    /// so that the index of an output among its input's would name another
    /// record: there a record written twice is read twice (at-least-once).
    pub fn writes_origins(&self, n: usize) -> bool {
        let mut topics = (self.subtopologies[n].sources.iter()).map(|&i| &self.sources[i].topic);
        let first = topics.next();
        topics.all(|t| Some(t) == first)
    }

    /// The sub-topology that reads `topic`.
    pub fn subtopology_of_topic(&self, topic: &str) -> Option<usize> {
        self.subtopologies
            .iter()
            .position(|sub| (sub.sources.iter()).any(|&i| self.sources[i].topic == topic))
    }

    /// The sub-topology of step `step`.
    pub fn subtopology_of_step(&self, step: usize) -> usize {
        (self.subtopologies.iter())
            .position(|sub| sub.steps.contains(&step))
            .expect("every step is in a sub-topology")
    }

    /// The sub-topology of store `store`.
    pub fn subtopology_of_store(&self, store: &str) -> Option<usize> {
        let (_, owner) = self.stores().find(|(name, _)| *name == store)?;
        Some(match owner {
            NodeId::Source(i) => (self.subtopologies.iter())
                .position(|sub| sub.sources.contains(&i))
                .expect("every source is in a sub-topology"),
            NodeId::Step(i) => self.subtopology_of_step(i),
        })
    }

    /// The partition count of each sub-topology: its sources' common count,
    /// a repartition topic's declared one, or for an undeclared one the
    /// count of the sub-topology that writes it. `external` gives the
    /// count of each topic the pipeline does not own. Sources of one
    /// sub-topology that disagree are refused, naming the topics and
    /// counts: task `p` reads partition `p` of each.
    pub fn partition_counts(
        &self,
        external: impl Fn(&str) -> Option<i32>,
    ) -> Result<Vec<i32>, KafkaError> {
        let mut counts: Vec<Option<i32>> = vec![None; self.subtopologies.len()];
        // Each pass settles at least one sub-topology: the writer of a
        // repartition topic comes before its reader (no cycles).
        for _ in 0..self.subtopologies.len() {
            for n in 0..self.subtopologies.len() {
                if counts[n].is_none() {
                    counts[n] = self.count_of(n, &counts, &external)?;
                }
            }
        }
        Ok(counts.into_iter().map(|c| c.unwrap_or(1)).collect())
    }

    /// Sub-topology `n`'s count, or `None` while a writer's is unknown:
    /// the count its sources agree on (topics of their own, declared
    /// repartitions), which its inserted repartition topics take too; else,
    /// with only inserted ones, the largest count of their writers.
    fn count_of(
        &self,
        n: usize,
        counts: &[Option<i32>],
        external: &impl Fn(&str) -> Option<i32>,
    ) -> Result<Option<i32>, KafkaError> {
        let mut fixed: Vec<(&str, i32)> = Vec::new();
        let mut writers: Vec<usize> = Vec::new();
        for &i in &self.subtopologies[n].sources {
            let source = &self.sources[i];
            match &source.repartition {
                None => fixed.extend(external(&source.topic).map(|c| (source.topic.as_str(), c))),
                Some(r) => match r.partitions {
                    Some(p) => fixed.push((&source.topic, p)),
                    None => writers.extend(self.writers_of(&source.topic)),
                },
            }
        }
        if let Some(&(_, first)) = fixed.first() {
            if fixed.iter().any(|&(_, c)| c != first) {
                return Err(KafkaError::NotCoPartitioned {
                    subtopology: n,
                    topics: (fixed.iter())
                        .map(|(t, c)| format!("`{t}` ({c})"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            return Ok(Some(first));
        }
        if writers.iter().any(|&w| counts[w].is_none()) {
            return Ok(None);
        }
        Ok(Some(
            writers.iter().filter_map(|&w| counts[w]).max().unwrap_or(1),
        ))
    }

    /// The sub-topologies that write repartition topic `topic` (a
    /// repartition fed from several sub-topologies has several).
    fn writers_of(&self, topic: &str) -> Vec<usize> {
        let Some(sink) = (self.sinks.iter()).position(|s| s.repartition && s.topic == topic) else {
            return Vec::new();
        };
        (self.subtopologies.iter().enumerate())
            .filter(|(_, sub)| sub.sinks.contains(&sink))
            .map(|(n, _)| n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::topology::Topology;
    use crate::topology::pipeline_file::PipelineFile;

    fn load(text: &str) -> Result<Topology, String> {
        let path = std::path::Path::new("/p/pipeline.toml");
        PipelineFile::parse(path, text)
            .and_then(|f| Topology::from_file(path, f))
            .map_err(|e| e.to_string())
    }

    const TWO_PARTS: &str = r#"
        application.id = "app"
        [sources.clicks]
        [sources.users]
        table = true
        [sources.orders]
        [steps.enrich]
        plugin = "enrich.wasm"
        stores = ["users"]
        inputs = ["clicks"]
        [steps.rekey]
        plugin = "rekey.wasm"
        inputs = ["orders"]
        [steps.counts]
        aggregate = "count"
        inputs = ["rekey"]
        [sinks.out]
        inputs = ["enrich", "counts"]
    "#;

    #[test]
    fn inputs_stores_and_repartitions_make_the_sub_topologies() {
        let t = load(TWO_PARTS).unwrap();
        let names = |n: usize| -> Vec<&str> {
            let sub = &t.subtopologies[n];
            (sub.sources.iter().map(|&i| t.sources[i].name.as_str()))
                .chain(sub.steps.iter().map(|&i| t.steps[i].name.as_str()))
                .collect()
        };
        // Sources in name order: clicks, orders, users; then the inserted
        // repartition's source.
        assert_eq!(
            names(0),
            ["clicks", "users", "enrich"],
            "the table's store joins them"
        );
        assert_eq!(names(1), ["orders", "rekey"]);
        assert_eq!(names(2), ["counts-repartition", "counts"]);
        assert_eq!(t.subtopologies.len(), 3);
        let out = t.sinks.iter().position(|s| s.name == "out").unwrap();
        assert!(t.subtopologies[0].sinks.contains(&out) && t.subtopologies[2].sinks.contains(&out));
        assert_eq!(t.subtopology_of_topic("app-counts-repartition"), Some(2));
        assert_eq!(t.subtopology_of_store("users"), Some(0));
        assert_eq!(t.subtopology_of_store("counts"), Some(2));
    }

    #[test]
    fn partition_counts_follow_the_writers_and_disagreeing_sources_are_refused() {
        let t = load(TWO_PARTS).unwrap();
        let counts = |clicks, users, orders| {
            t.partition_counts(|topic| match topic {
                "clicks" => Some(clicks),
                "users" => Some(users),
                "orders" => Some(orders),
                _ => None,
            })
        };
        assert_eq!(counts(4, 4, 6).unwrap(), [4, 6, 6]);
        let e = counts(4, 5, 6).unwrap_err().to_string();
        assert!(
            e.contains("sub-topology 0 reads `clicks` (4), `users` (5)"),
            "{e}"
        );
        let declared = load(&TWO_PARTS.replace(
            "[steps.counts]",
            "[steps.by-key]\n        repartition = true\n        partitions = 2\n        inputs = [\"rekey\"]\n        [steps.counts]",
        ).replace("aggregate = \"count\"\n        inputs = [\"rekey\"]", "aggregate = \"count\"\n        inputs = [\"by-key\"]"))
        .unwrap();
        let n = declared
            .subtopology_of_topic("app-by-key-repartition")
            .unwrap();
        assert_eq!(declared.partition_counts(|_| Some(6)).unwrap()[n], 2);
    }
}
