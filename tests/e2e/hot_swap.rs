//! Hot swap: a running pipeline's plugins are replaced at committed batch
//! boundaries while input keeps arriving, with no restart and no
//! rebalance. Every input record is processed exactly once, by the version
//! active at its batch, and an aggregator's state carries over.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sluice::kafka::embedded::EmbeddedKafka;
use sluice::runner::control::{self, Control, Swapped};
use sluice::runner::{self, RunOptions};
use sluice::state::changelog;
use sluice::topology::Topology;

use crate::support;

const PARTITIONS: i32 = 2;
const RECORDS: usize = 12_000;
const SWAPS: usize = 20;
const KEYS: usize = 10;

/// A test plugin's component.
pub fn component(name: &str) -> std::path::PathBuf {
    support::component(&format!("tests/plugins/{name}"))
}

/// A pipeline for swap tests: `tag` (the `tag-v1` processor) and `counts`
/// (the `count-v1` aggregator) over one source, into two sinks; its
/// topics created with `partitions` each.
pub struct SwapPipeline {
    pub app: String,
    pub source: String,
    pub tagged: String,
    pub counted: String,
    pub file: std::path::PathBuf,
}

impl SwapPipeline {
    pub fn create(
        kafka: &EmbeddedKafka,
        dir: &std::path::Path,
        prefix: &str,
        partitions: i32,
        processing: &str,
    ) -> SwapPipeline {
        let app = support::unique(prefix);
        let (source, tagged, counted) = (
            format!("{app}-in"),
            format!("{app}-tagged"),
            format!("{app}-counted"),
        );
        for t in [
            &source,
            &tagged,
            &counted,
            &changelog::topic(&app, "counts"),
        ] {
            kafka.create_topic(t, partitions).unwrap();
        }
        let file = support::write_pipeline(
            dir,
            &format!(
                r#"
application.id = "{app}"
[processing]
commit.interval.ms = 100
{processing}
[state]
dir = "{state}"
[sources.events]
topic = "{source}"
[steps.tag]
plugin = "{tag}"
inputs = ["events"]
[steps.counts]
aggregate = "{count}"
inputs = ["events"]
[sinks.tagged]
topic = "{tagged}"
inputs = ["tag"]
[sinks.counted]
topic = "{counted}"
inputs = ["counts"]
"#,
                state = dir.join("state").display(),
                tag = component("tag-v1").display(),
                count = component("count-v1").display(),
            ),
        );
        SwapPipeline {
            app,
            source,
            tagged,
            counted,
            file,
        }
    }
}

#[test]
fn plugins_swapped_20_times_under_steady_input_process_each_record_once_with_the_version_of_its_batch()
 {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let p = SwapPipeline::create(
        &kafka,
        dir.path(),
        "swap",
        PARTITIONS,
        "max.batch.records = 64",
    );
    let (app, source, tagged, counted, pipeline) = (p.app, p.source, p.tagged, p.counted, p.file);
    let topology = Arc::new(Topology::load(&pipeline).unwrap());
    let engine = sluice::plugin::engine();
    let plugins = sluice::load_plugins(&engine, &topology, &Default::default()).unwrap();
    let versions = ["v1", "v2"].map(|v| {
        let tag = control::prepare_swap(&engine, &topology, "tag", &component(&format!("tag-{v}")))
            .unwrap();
        let count = control::prepare_swap(
            &engine,
            &topology,
            "counts",
            &component(&format!("count-{v}")),
        )
        .unwrap();
        (tag, count)
    });
    // A swap the step cannot take is refused before it reaches the run.
    let e = control::prepare_swap(&engine, &topology, "tag", &component("count-v2")).unwrap_err();
    assert!(e.contains("sluice:plugin/aggregator"), "{e}");
    let e = control::prepare_swap(&engine, &topology, "nope", &component("tag-v2")).unwrap_err();
    assert!(e.contains("no step `nope`"), "{e}");

    let control = Control::new();
    let stop = Arc::new(AtomicBool::new(false));
    let runner = {
        let (topology, brokers, stop, control) = (
            Arc::clone(&topology),
            brokers.clone(),
            Arc::clone(&stop),
            control.clone(),
        );
        std::thread::spawn(move || {
            runner::run(
                topology,
                plugins,
                RunOptions {
                    brokers,
                    connect_timeout: Duration::from_secs(30),
                    stop,
                    stop_at: None,
                    idle_close_at_end: false,
                    control: Some(control),
                    park: None,
                },
            )
        })
    };
    // Steady input: a burst every few milliseconds while the swaps run.
    let producer = {
        let (brokers, source) = (brokers.clone(), source.clone());
        std::thread::spawn(move || {
            for burst in (0..RECORDS).collect::<Vec<_>>().chunks(100) {
                let records: Vec<(Option<String>, Vec<u8>, i64)> = burst
                    .iter()
                    .map(|i| {
                        (
                            Some(format!("k{}", i % KEYS)),
                            i.to_string().into_bytes(),
                            1,
                        )
                    })
                    .collect();
                support::produce(&brokers, &source, &records);
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };

    // The swaps start once the run is processing: a swap is quick (about
    // 12 ms), and twenty of them could all be over before the group has
    // assigned the run its partitions.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while support::high_watermarks(&brokers, &tagged, PARTITIONS)
        .iter()
        .sum::<i64>()
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run produced nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut swaps: Vec<(&str, Swapped)> = Vec::new();
    for n in 0..SWAPS {
        std::thread::sleep(Duration::from_millis(60));
        let (version, ((tag_step, tag), (count_step, count))) = match n % 2 {
            0 => ("v2", versions[1].clone()),
            _ => ("v1", versions[0].clone()),
        };
        let swapped = control
            .swap(tag_step, tag)
            .recv_timeout(Duration::from_secs(60))
            .unwrap()
            .unwrap();
        assert_eq!(swapped.step, "tag");
        assert_ne!(swapped.old_digest, swapped.new_digest);
        control
            .swap(count_step, count)
            .recv_timeout(Duration::from_secs(60))
            .unwrap()
            .unwrap();
        swaps.push((version, swapped));
    }
    producer.join().unwrap();
    let ends = support::high_watermarks(&brokers, &source, PARTITIONS);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while support::committed(&brokers, &app, &source, PARTITIONS) != ends {
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not catch up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let summary = runner.join().unwrap().unwrap();
    assert_eq!(
        summary.counts.records_in, RECORDS as u64,
        "no restart, no replay"
    );
    assert!(
        swaps
            .iter()
            .any(|(_, s)| s.boundary.iter().any(|(_, _, o)| *o > 0)),
        "the swaps happened under input"
    );

    // Which input each output came from, by its value (unique per input).
    let position: BTreeMap<String, (i32, i64)> = support::read_all(&brokers, &source, PARTITIONS)
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.value.unwrap()).unwrap(),
                (r.partition, r.offset),
            )
        })
        .collect();
    assert_eq!(position.len(), RECORDS);
    // The version that must have processed the record at `offset` of
    // `partition`: that of the last swap whose boundary is at or before it.
    let expected = |partition: i32, offset: i64| -> &str {
        let mut version = "v1";
        for (v, s) in &swaps {
            let boundary = s
                .boundary
                .iter()
                .find(|(t, p, _)| *t == source && *p == partition)
                .map_or(0, |(_, _, o)| *o);
            if offset >= boundary {
                version = v;
            }
        }
        version
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_version: BTreeMap<String, usize> = BTreeMap::new();
    for r in support::read_all(&brokers, &tagged, PARTITIONS) {
        let value = String::from_utf8(r.value.clone().unwrap()).unwrap();
        let (partition, offset) = position[&value];
        let version = r.header("version").unwrap().to_owned();
        assert_eq!(
            version,
            expected(partition, offset),
            "input {partition}@{offset} (value {value})"
        );
        *seen.entry(value).or_default() += 1;
        *by_version.entry(version).or_default() += 1;
    }
    assert_eq!(seen.len(), RECORDS, "every input has an output");
    assert!(seen.values().all(|n| *n == 1), "no input has two outputs");
    assert!(by_version.len() == 2, "both versions ran: {by_version:?}");

    // The count went on across every swap: the last count of each key is
    // its number of records.
    let mut last: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let mut counts = support::read_all(&brokers, &counted, PARTITIONS);
    counts.sort_by_key(|r| (r.partition, r.offset));
    for r in counts {
        last.insert(
            String::from_utf8(r.key.unwrap()).unwrap(),
            serde_json::from_slice(&r.value.unwrap()).unwrap(),
        );
    }
    for k in 0..KEYS {
        let c = &last[&format!("k{k}")];
        assert_eq!(c["count"], (RECORDS / KEYS) as u64, "k{k}: {c}");
        assert_eq!(c["by"], swaps.last().unwrap().0, "k{k}: {c}");
    }
}
