//! A RocksDB store restored from its changelog on the embedded broker:
//! complete commits are applied, an incomplete one is held back, a lost
//! local directory is rebuilt identically, and a store that is present
//! replays only the changelog's tail.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sluice::kafka::client_config::ClientSettings;
use sluice::state::changelog::{self, Applied};
use sluice::state::restore::{RESTORE_CHUNK, restore_from_kafka};
use sluice::state::rocksdb::RocksDbStore;
use sluice::state::{KeyValueStore, store_dir};

use crate::support::{self, Rng};

/// Writes one commit: data records, then (if `complete`) its marker.
/// Returns the writes, for the expected state.
fn commit(
    producer: &BaseProducer,
    topic: &str,
    rng: &mut Rng,
    next: i64,
    complete: bool,
) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut writes = Vec::new();
    for _ in 0..2_000 {
        let key = format!("ticker-{:03}", rng.below(500)).into_bytes();
        let value = (rng.below(10) > 0).then(|| rng.next().to_string().into_bytes());
        let (k, v) = changelog::data_record(&key, value.as_deref());
        let mut rec: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).key(k.as_slice()).partition(0);
        if let Some(v) = &v {
            rec = rec.payload(v.as_slice());
        }
        producer.send(rec).map_err(|(e, _)| e).unwrap();
        writes.push((key, value));
    }
    if complete {
        let (k, v) = changelog::marker_record(&[Applied {
            topic: "trades".into(),
            partition: 0,
            next,
        }]);
        producer
            .send(
                BaseRecord::<[u8], [u8]>::to(topic)
                    .key(k.as_slice())
                    .payload(v.as_slice())
                    .partition(0),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    writes
}

fn apply(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
    for (k, v) in writes {
        match v {
            Some(v) => state.insert(k, v),
            None => state.remove(&k),
        };
    }
}

fn contents(store: &dyn KeyValueStore) -> BTreeMap<Vec<u8>, Vec<u8>> {
    store
        .range(None, None)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn restore_is_exact_resumable_and_rebuilds_a_lost_directory() {
    let kafka = sluice::kafka::embedded::EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let topic = changelog::topic(&support::unique("stats"), "by-ticker");
    kafka.create_topic(&topic, 1).unwrap();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("queue.buffering.max.messages", "100000")
        .create()
        .unwrap();
    let mut rng = Rng::new(3);
    let mut expected = BTreeMap::new();
    apply(
        &mut expected,
        commit(&producer, &topic, &mut rng, 100, true),
    );
    apply(
        &mut expected,
        commit(&producer, &topic, &mut rng, 200, true),
    );
    let incomplete = commit(&producer, &topic, &mut rng, 300, false);

    let settings = ClientSettings::new(&brokers, &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = store_dir(dir.path(), "stats", 0, "by-ticker");
    let first = {
        let mut store = RocksDbStore::open(&path, "by-ticker").unwrap();
        let r = restore_from_kafka(&settings, &topic, 0, &mut store, RESTORE_CHUNK).unwrap();
        assert_eq!(contents(&store), expected, "complete commits only");
        r
    };
    assert_eq!(first.records, 6_002);
    assert_eq!(first.position, 4_002, "just after the second marker");
    assert_eq!(first.applied[0].next, 200);
    let mut tail_keys: Vec<Vec<u8>> = incomplete.iter().map(|(k, _)| k.clone()).collect();
    tail_keys.sort();
    tail_keys.dedup();
    assert_eq!(first.incomplete_keys, tail_keys);

    // The local directory is lost: a full replay gives the same state.
    std::fs::remove_dir_all(&path).unwrap();
    let mut store = RocksDbStore::open(&path, "by-ticker").unwrap();
    let again = restore_from_kafka(&settings, &topic, 0, &mut store, RESTORE_CHUNK).unwrap();
    assert_eq!(contents(&store), expected);
    assert_eq!(again, first);

    // A later commit: a store that is present replays only the tail (the
    // held-back records, then the new commit).
    let mut extra = commit(&producer, &topic, &mut rng, 400, true);
    let mut all = incomplete;
    all.append(&mut extra);
    apply(&mut expected, all);
    let tail = restore_from_kafka(&settings, &topic, 0, &mut store, RESTORE_CHUNK).unwrap();
    assert_eq!(
        tail.records, 4_001,
        "from the position on, not from the start"
    );
    assert_eq!(tail.applied[0].next, 400);
    assert!(tail.incomplete_keys.is_empty());
    assert_eq!(contents(&store), expected);
}

#[test]
fn changelog_topics_are_created_compacted_and_checked_on_real_kafka() {
    use sluice::error::KafkaError;
    use sluice::kafka::topics::{TopicSpec, ensure};

    let Some(kafka) = support::RealKafka::start(19396) else {
        return;
    };
    let settings = ClientSettings::new(&kafka.brokers, &[]);
    let app = support::unique("topics");
    let changelog = changelog::topic(&app, "counts");
    let spec = |name: &str, partitions, compacted| TopicSpec {
        name: name.to_owned(),
        partitions,
        compacted,
    };
    let timeout = Duration::from_secs(30);

    let made = ensure(&settings, &[spec(&changelog, 3, true)], timeout).unwrap();
    assert_eq!(made.created, vec![changelog.clone()]);
    assert!(made.warnings.is_empty(), "{:?}", made.warnings);
    // Present and right: nothing to do.
    let again = ensure(&settings, &[spec(&changelog, 3, true)], timeout).unwrap();
    assert!(
        again.created.is_empty() && again.warnings.is_empty(),
        "{again:?}"
    );
    // Another partition count is refused, naming both counts.
    let e = ensure(&settings, &[spec(&changelog, 4, true)], timeout).unwrap_err();
    assert!(
        matches!(
            e,
            KafkaError::PartitionMismatch {
                expected: 4,
                found: 3,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains(&changelog), "{e}");
    // A changelog that exists without compaction gets a warning.
    let plain = format!("{app}-plain-changelog");
    support::create_topics(&kafka.brokers, &[(&plain, 1)]);
    let warned = ensure(&settings, &[spec(&plain, 1, true)], timeout).unwrap();
    assert_eq!(warned.warnings.len(), 1, "{warned:?}");
    assert!(
        warned.warnings[0].contains("cleanup.policy=delete"),
        "{:?}",
        warned.warnings
    );
}
