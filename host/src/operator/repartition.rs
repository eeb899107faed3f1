//! The writing side of a repartition topic: what reaches its sink goes to
//! `<application.id>-<name>-repartition`, partitioned by murmur2 of its
//! key (the producer's partitioner, as Kafka Streams'), in the commit's
//! transaction under exactly-once; the sub-topology that reads it back is
//! another task. Each record carries its origin (the input record it was
//! made from, and its index among that record's outputs to the topic:
//! [`Origin`]), by which the reading side's stores mark it applied, so a
//! record written twice by an upstream task that crashed before its commit
//! is applied once. A record without a key cannot be routed: it is
//! dropped and counted (`unkeyed`), or dead-lettered under
//! `refused = "dlq"`.
//! The topics themselves are made ready at start ([`topics`]) and purged
//! of what is committed (`crate::runner::purge`).

use crate::error::RunError;
use crate::kafka::topics::TopicSpec;
use crate::operator::batch::BatchContext;
use crate::operator::dead_letter::Kind;
use crate::operator::error_policy::{self, Refused};
use bytes::Bytes;

use crate::record::{ORIGIN_HEADER, OUTPUTS_PER_ORIGIN, Origin, RecordRef};
use crate::topology::{NodeId, Sink, Topology};

/// The origin topic of what an idle close sends (no topic has a `~`).
const IDLE_CLOSE: &str = "~idle-close";

/// Sends `record`, made from the batch's record `origin` by `node` (whose
/// plugin has `digest`), to the repartition topic of `sink`, with its
/// origin in a header if `origins` (see `Topology::writes_origins`; a
/// record without one needs no index among its input's outputs, so there
/// is no bound on how many one input makes). `sent` counts, per batch
/// record, what it sent to this topic so far. A record without a key meets
/// the `unkeyed` policy.
pub fn send(
    topology: &Topology,
    ctx: &mut BatchContext<'_>,
    (sink, origins): (&Sink, bool),
    (node, digest): (NodeId, &str),
    (origin, record): (usize, RecordRef<'_>),
    sent: &mut Vec<i64>,
) -> Result<(), RunError> {
    let refused = |code, message| Refused {
        node,
        digest,
        kind: Kind::Unkeyed,
        code,
        message,
    };
    if record.key.is_none() {
        let why = refused(
            "no-key",
            "the record has no key, so it cannot be repartitioned (grouped or joined by key)",
        );
        return error_policy::apply(topology, ctx, why, (origin, record));
    }
    let mut owned = record.to_owned_record();
    if origins {
        let header = origin_header(topology, ctx, node, origin, sent)?;
        (owned.headers).push((ORIGIN_HEADER.to_owned(), Some(Bytes::from(header))));
    }
    if let Some(refusal) = ctx.out.refusal(&sink.topic, owned.as_ref()) {
        let message = refusal.to_string();
        let why = Refused {
            kind: Kind::Refused,
            ..refused(refusal.code(), &message)
        };
        return error_policy::apply(topology, ctx, why, (origin, record));
    }
    ctx.out.send(&sink.topic, owned.as_ref())?;
    ctx.counts.records_out += 1;
    Ok(())
}

/// The origin header of the next record made from the batch's record
/// `origin` by `node`; `sent` counts, per batch record, what it sent to
/// this topic so far.
fn origin_header(
    topology: &Topology,
    ctx: &BatchContext<'_>,
    node: NodeId,
    origin: usize,
    sent: &mut Vec<i64>,
) -> Result<String, RunError> {
    if sent.len() < ctx.batch.len() {
        sent.resize(ctx.batch.len(), 0);
    }
    let input = &ctx.batch[origin];
    // What an idle close emits has no input record: it is told apart by
    // the stream time the close moved to, which a replay moves to again.
    let (topic, at) = match input.offset {
        o if o < 0 => (IDLE_CLOSE, ctx.stream_at.get(origin).copied().unwrap_or(0)),
        o => (&*input.topic, o),
    };
    let Some(header) = Origin::header(topic, input.partition, at, sent[origin]) else {
        return Err(RunError::RecordFailed {
            step: topology.node_name(node).to_owned(),
            outcome: "made too many records for one repartition topic from",
            policy: "fail",
            topic: input.topic.to_string(),
            partition: input.partition,
            offset: input.offset,
            reason: format!(
                "more than {OUTPUTS_PER_ORIGIN} records from one input record cannot be told apart downstream"
            ),
        });
    };
    sent[origin] += 1;
    Ok(header)
}

/// The repartition topics of `topology`, each with the partition count of
/// the sub-topology that reads it (`per_sub`, from
/// [`Topology::partition_counts`]): created where missing, with
/// `cleanup.policy=delete` and no retention limit (records are deleted
/// once committed, not by age, so a pipeline stopped for long loses
/// nothing).
pub fn topics(topology: &Topology, per_sub: &[i32]) -> Vec<TopicSpec> {
    let mut specs: Vec<TopicSpec> = Vec::new();
    for (n, sub) in topology.subtopologies.iter().enumerate() {
        for &i in &sub.sources {
            let source = &topology.sources[i];
            if source.repartition.is_some() && !specs.iter().any(|s| s.name == source.topic) {
                specs.push(TopicSpec {
                    name: source.topic.clone(),
                    partitions: per_sub[n],
                    compacted: false,
                });
            }
        }
    }
    specs
}

#[cfg(test)]
mod tests {
    use crate::task::testing::Driver;

    const COUNT_BY_KEY: &str = r#"
        application.id = "shop"
        [errors]
        refused = "skip"
        [sources.orders]
        [steps.by-key]
        repartition = true
        inputs = ["orders"]
        [steps.counts]
        aggregate = "count"
        inputs = ["by-key"]
        [sinks.out]
        inputs = ["counts"]
    "#;

    fn values(d: &Driver, topic: &str) -> Vec<(Option<String>, Option<String>)> {
        let text =
            |b: &Option<bytes::Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        d.outputs(topic)
            .iter()
            .map(|r| (text(&r.key), text(&r.value)))
            .collect()
    }

    #[test]
    fn records_pass_through_the_topic_and_unkeyed_ones_are_dropped_and_counted() {
        let mut d = Driver::from_toml(COUNT_BY_KEY).unwrap();
        d.push("orders", Some(b"a"), Some(b"1"), Some(10));
        d.push("orders", None, Some(b"2"), Some(11));
        d.push("orders", Some(b"b"), Some(b"3"), Some(12));
        d.push("orders", Some(b"a"), Some(b"4"), Some(13));
        let c = d.process().unwrap();
        let through = values(&d, "shop-by-key-repartition");
        let some = |k: &str, v: &str| (Some(k.to_owned()), Some(v.to_owned()));
        assert_eq!(through, [some("a", "1"), some("b", "3"), some("a", "4")]);
        assert_eq!(
            values(&d, "out"),
            [some("a", "1"), some("b", "1"), some("a", "2")]
        );
        assert_eq!(c.unkeyed, 1);
        assert_eq!(
            (c.records_in, c.repartitioned),
            (4, 3),
            "the source's records, then the topic's"
        );
        assert!(d.dead_letters().is_empty());
        // Timestamps cross the topic: they are the records' event times.
        let times: Vec<Option<i64>> = d
            .outputs("shop-by-key-repartition")
            .iter()
            .map(|r| r.timestamp)
            .collect();
        assert_eq!(times, [Some(10), Some(12), Some(13)]);
        assert_eq!(d.get("counts", b"a").unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn a_record_written_twice_upstream_is_applied_once_downstream() {
        let mut d = Driver::from_toml(COUNT_BY_KEY).unwrap();
        d.push("orders", Some(b"a"), Some(b"1"), Some(10));
        d.push("orders", Some(b"a"), Some(b"2"), Some(11));
        d.process().unwrap();
        // The upstream task processes its input again from offset 0, as
        // after a crash before its commit: the repartition topic gets the
        // same records again, at new offsets, with the same origins.
        d.seek("orders", 0);
        d.push("orders", Some(b"a"), Some(b"1"), Some(10));
        d.push("orders", Some(b"a"), Some(b"2"), Some(11));
        d.push("orders", Some(b"a"), Some(b"3"), Some(12));
        let c = d.process().unwrap();
        assert_eq!(
            d.outputs("shop-by-key-repartition").len(),
            5,
            "written twice"
        );
        assert_eq!(c.skipped, 2, "applied once");
        assert_eq!(d.get("counts", b"a").unwrap(), Some(b"3".to_vec()));
        let origins: Vec<&str> = (d.outputs("shop-by-key-repartition").iter())
            .map(|r| std::str::from_utf8(r.header(crate::record::ORIGIN_HEADER).unwrap()).unwrap())
            .collect();
        assert_eq!(
            origins,
            [
                "0/0/orders",
                "0/65536/orders",
                "0/0/orders",
                "0/65536/orders",
                "0/131072/orders"
            ]
        );
    }

    #[test]
    fn copies_written_before_and_after_an_upstream_crash_are_applied_once_in_one_batch() {
        // The downstream task had not read the first copies when the
        // upstream one crashed: it polls both copies together, and the
        // second must be skipped though no earlier batch took the first.
        let mut d = Driver::from_toml(COUNT_BY_KEY).unwrap();
        let copy = |position: i64| {
            let mut r = crate::record::Record::new(Some(b"a"), Some(b"v"), Some(10 + position));
            let origin = format!("0/{}/orders", position * super::OUTPUTS_PER_ORIGIN);
            r.headers.push((
                crate::record::ORIGIN_HEADER.into(),
                Some(bytes::Bytes::from(origin)),
            ));
            r
        };
        for position in [0, 1, 2, 0, 1, 2, 3] {
            d.push_record("shop-by-key-repartition", copy(position));
        }
        let c = d.process().unwrap();
        assert_eq!((c.repartitioned, c.skipped), (4, 3), "each origin once");
        assert_eq!(d.get("counts", b"a").unwrap(), Some(b"4".to_vec()));
        let counts: Vec<_> = values(&d, "out")
            .into_iter()
            .map(|(_, v)| v.unwrap())
            .collect();
        assert_eq!(counts, ["1", "2", "3", "4"]);
    }

    #[test]
    fn unkeyed_records_are_dead_lettered_under_refused_dlq_and_never_fail_the_run() {
        let mut d =
            Driver::from_toml(&COUNT_BY_KEY.replace("refused = \"skip\"", "refused = \"dlq\""))
                .unwrap();
        d.push("orders", None, Some(b"lost?"), Some(10));
        d.process().unwrap();
        let letters = d.dead_letters();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].value.as_deref(), Some(&b"lost?"[..]));
        let reason = letters[0]
            .headers
            .iter()
            .find(|(n, _)| n == "sluice.error.kind");
        assert!(
            reason.is_some_and(|(_, v)| v.as_deref() == Some(&b"unkeyed"[..])),
            "{:?}",
            letters[0].headers
        );
        let mut d =
            Driver::from_toml(&COUNT_BY_KEY.replace("refused = \"skip\"", "refused = \"fail\""))
                .unwrap();
        d.push("orders", None, Some(b"x"), Some(10));
        assert_eq!(d.process().unwrap().unkeyed, 1);
    }
}
