//! Hot swap: how long a running pipeline stands still for a plugin swap,
//! and how long one plugin instance takes to start.
//!
//! - **swap gap**: a pipeline (a tagging processor on two partitions)
//!   under steady input has its plugin swapped
//!   back and forth. A consumer reads the output as it comes; per swap and
//!   partition, the gap is the time between receiving the last output of
//!   the old version and the first of the new one, p50 and p99. The
//!   baseline, from the same run, is the gap between consecutive outputs
//!   of one partition without a swap between them.
//! - **swap pause**: the poll loop's own time from taking the request to
//!   swapping (drain the batches in flight, commit, swap in every stream
//!   thread). The commit interval is 100 ms, so a swap costs about what one
//!   more commit does.
//! - **instantiation**: one instance of a processor component, started
//!   with its `init`, with on-demand allocation and with the pooling
//!   allocator (`sluice serve`'s default).
//!
//! Run: `cargo bench -p sluice --bench swap`: on the embedded broker, or
//! on a real Kafka when `SLUICE_BENCH_BROKERS` names one.
//! `SLUICE_BENCH_SWAP_KAFKA` is appended to the pipeline file (a `[kafka]`
//! table, say). Under `cargo test` (no `--bench` argument) it runs a few
//! swaps, as a smoke test.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::Producer;
use sluice::kafka::embedded::EmbeddedKafka;
use sluice::runner::control::{self, Control};
use sluice::runner::{self, RunOptions};
use sluice::toolchain::{self, BuildOptions};
use sluice::topology::Topology;
use sluice::topology::pipeline_file::PipelineFile;

/// The `p` percentile of `sorted`; NaN (printed as such) when empty.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p).round() as usize],
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let swaps = if full { 100 } else { 4 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let build = |name: &str| {
        toolchain::build(
            &root.join("tests/plugins").join(name),
            &BuildOptions {
                quiet: true,
                ..BuildOptions::default()
            },
        )
        .expect("building a test plugin")
    };
    let (v1, v2) = (build("tag-v1"), build("tag-v2"));
    let embedded = match std::env::var("SLUICE_BENCH_BROKERS") {
        Ok(_) => None,
        Err(_) => Some(EmbeddedKafka::start(1).expect("embedded kafka")),
    };
    let brokers = match &embedded {
        Some(k) => k.bootstrap_servers(),
        None => std::env::var("SLUICE_BENCH_BROKERS").expect("set"),
    };
    let app = format!("swap-bench-{}", std::process::id());
    let topics = [format!("{app}-in"), format!("{app}-out")];
    match &embedded {
        Some(kafka) => {
            for t in &topics {
                kafka.create_topic(t, 2).expect("topic");
            }
        }
        None => {
            let specs: Vec<_> = (topics.iter())
                .map(|name| sluice::kafka::topics::TopicSpec {
                    name: name.clone(),
                    partitions: 2,
                    compacted: false,
                })
                .collect();
            sluice::kafka::topics::create_missing(
                &sluice::kafka::client_config::ClientSettings::new(&brokers, &[]),
                &specs,
                Duration::from_secs(30),
            )
            .expect("topics");
        }
    }
    let broker = if embedded.is_some() {
        "embedded broker"
    } else {
        "SLUICE_BENCH_BROKERS"
    };
    let text = format!(
        r#"
application.id = "{app}"
[processing]
max.batch.records = 100
commit.interval.ms = 100
[sources.events]
topic = "{app}-in"
[steps.tag]
plugin = "{}"
inputs = ["events"]
[sinks.out]
topic = "{app}-out"
inputs = ["tag"]
{kafka}
"#,
        v1.display(),
        kafka = std::env::var("SLUICE_BENCH_SWAP_KAFKA").unwrap_or_default(),
    );
    let path = root.join("pipeline.toml");
    let topology = Arc::new(
        Topology::from_file(&path, PipelineFile::parse(&path, &text).expect("parse"))
            .expect("topology"),
    );
    let engine = sluice::plugin::engine();
    let plugins =
        sluice::load_plugins(&engine, &topology, &BuildOptions::default()).expect("plugins");

    // Instantiation time of one instance (with init), on demand and pooled.
    let n = if full { 2000 } else { 5 };
    let instantiate_us = |plugin: &sluice::plugin::Plugin| {
        let started = Instant::now();
        for _ in 0..n {
            std::hint::black_box(plugin.instantiate(&[]).expect("instance"));
        }
        started.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let on_demand_us = instantiate_us(&plugins.steps[0].clone().expect("a plugin step"));
    let pooled = sluice::plugin::new_engine(sluice::plugin::EngineSettings {
        pooled_instances: Some(100),
    })
    .expect("a pooling engine");
    let pooled_us = instantiate_us(
        &sluice::plugin::Plugin::load(&pooled, "tag", &v1).expect("loading on the pool"),
    );

    // What a downstream consumer sees: each output's version, partition
    // and time of arrival.
    let reading = Arc::new(AtomicBool::new(true));
    let outputs = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let (brokers, topic, reading, outputs) = (
            brokers.clone(),
            format!("{app}-out"),
            Arc::clone(&reading),
            Arc::clone(&outputs),
        );
        std::thread::spawn(move || {
            let consumer: BaseConsumer = rdkafka::ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", format!("{topic}-reader"))
                .set("auto.offset.reset", "earliest")
                .set("fetch.wait.max.ms", "5")
                .create()
                .expect("consumer");
            consumer.subscribe(&[&topic]).expect("subscribe");
            let mut seen: Vec<(Instant, i32, bool, i64)> = Vec::new();
            while reading.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(10)) {
                    let v2 = m.headers().is_some_and(|h| {
                        h.iter()
                            .any(|h| h.key == "version" && h.value == Some(&b"v2"[..]))
                    });
                    let created = m.timestamp().to_millis().unwrap_or(0);
                    seen.push((Instant::now(), m.partition(), v2, created));
                    outputs.fetch_add(1, Ordering::Relaxed);
                }
            }
            seen
        })
    };

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
    let producing = Arc::new(AtomicBool::new(true));
    let producer = {
        let (brokers, topic, producing) =
            (brokers.clone(), format!("{app}-in"), Arc::clone(&producing));
        std::thread::spawn(move || {
            let producer: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("linger.ms", "5")
                .create()
                .expect("producer");
            let mut i: u64 = 0;
            while producing.load(Ordering::Relaxed) {
                for _ in 0..50 {
                    let key = (i % 16).to_string();
                    let value = i.to_string();
                    let _ = producer.send(
                        rdkafka::producer::BaseRecord::to(&topic)
                            .key(&key)
                            .payload(&value),
                    );
                    i += 1;
                }
                producer.poll(Duration::from_millis(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = producer.flush(Duration::from_secs(10));
            i
        })
    };
    // Swaps start once outputs flow (the consumer group has formed and
    // the reader sees them), and after two seconds of steady input.
    let give_up = Instant::now() + Duration::from_secs(120);
    while outputs.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < give_up, "no output within two minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut pauses = Vec::with_capacity(swaps);
    let mut answered = Vec::with_capacity(swaps);
    for k in 0..swaps {
        let component = if k % 2 == 0 { &v2 } else { &v1 };
        let (step, plugin) =
            control::prepare_swap(&engine, &topology, "tag", component).expect("prepared");
        let swapped = control
            .swap(step, plugin)
            .recv_timeout(Duration::from_secs(60))
            .expect("answered")
            .expect("swapped");
        pauses.push(swapped.pause.as_secs_f64() * 1e3);
        answered.push(Instant::now());
        std::thread::sleep(Duration::from_millis(50));
    }
    producing.store(false, Ordering::Relaxed);
    let produced = producer.join().expect("producer");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let summary = runner.join().expect("runner").expect("run");
    std::thread::sleep(Duration::from_millis(500));
    reading.store(false, Ordering::Relaxed);
    let seen = reader.join().expect("reader");
    pauses.sort_by(f64::total_cmp);
    // Per partition, in order of arrival: gaps across a version change,
    // and gaps without one.
    let (mut swap_gaps, mut gaps) = (Vec::new(), Vec::new());
    for partition in 0..2 {
        let arrivals: Vec<_> = seen.iter().filter(|s| s.1 == partition).collect();
        for pair in arrivals.windows(2) {
            let gap = pair[1].0.duration_since(pair[0].0).as_secs_f64() * 1e3;
            if pair[0].2 == pair[1].2 {
                gaps.push(gap);
            } else {
                swap_gaps.push(gap);
            }
        }
    }
    swap_gaps.sort_by(f64::total_cmp);
    gaps.sort_by(f64::total_cmp);
    // Where a swap's gap goes, per swap and partition: from the last old
    // output's arrival to the swap's answer, from the answer to the first
    // new output's arrival, and the gap in the two outputs' timestamps
    // (their inputs' creation times).
    let (mut before_answer, mut after_answer, mut created_gaps) =
        (Vec::new(), Vec::new(), Vec::new());
    for (k, at) in answered.iter().enumerate() {
        let new = k % 2 == 0;
        for partition in 0..2 {
            let arrivals: Vec<_> = seen.iter().filter(|s| s.1 == partition).collect();
            let Some(first) = arrivals.iter().position(|s| s.0 >= *at && s.2 == new) else {
                continue;
            };
            let Some(last_old) = arrivals[..first].iter().rev().find(|s| s.2 != new) else {
                continue;
            };
            let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1e3;
            before_answer.push(ms(last_old.0, *at));
            after_answer.push(ms(*at, arrivals[first].0));
            created_gaps.push((arrivals[first].3 - last_old.3) as f64);
        }
    }
    for v in [&mut before_answer, &mut after_answer, &mut created_gaps] {
        v.sort_by(f64::total_cmp);
    }

    println!(
        "\nhot swap of a processor under steady input ({produced} records produced, {} processed), {broker}",
        summary.counts.records_in
    );
    println!("{:<44} {:>10} {:>10}", "measurement", "p50", "p99");
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms",
        format!("swap gap, last old to first new ({})", swap_gaps.len()),
        percentile(&swap_gaps, 0.5),
        percentile(&swap_gaps, 0.99)
    );
    for (what, v) in [
        ("  last old output to the swap's answer", &before_answer),
        ("  the swap's answer to first new output", &after_answer),
        ("  the two outputs' timestamps apart", &created_gaps),
    ] {
        println!(
            "{:<44} {:>8.1}ms {:>8.1}ms",
            what,
            percentile(v, 0.5),
            percentile(v, 0.99)
        );
    }
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms",
        "baseline: gap between outputs, no swap",
        percentile(&gaps, 0.5),
        percentile(&gaps, 0.99)
    );
    // Regular commits stand the loop still too: the largest gaps without
    // a swap, as many as there were swap gaps.
    let largest = &gaps[gaps.len().saturating_sub(swap_gaps.len())..];
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms",
        format!("baseline: its {} largest gaps", largest.len()),
        percentile(largest, 0.5),
        percentile(largest, 0.99)
    );
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms",
        format!("swap pause in the poll loop ({swaps} swaps)"),
        percentile(&pauses, 0.5),
        percentile(&pauses, 0.99)
    );
    println!(
        "{:<44} {:>8.1}us",
        "instantiation with init, on demand", on_demand_us
    );
    println!(
        "{:<44} {:>8.1}us",
        "instantiation with init, pooling allocator", pooled_us
    );
}
