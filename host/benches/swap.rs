//! Hot swap: how long a running pipeline stands still for a plugin swap,
//! and how long one plugin instance takes to start.
//!
//! - **swap gap**: a pipeline (a tagging processor on two partitions)
//!   under steady input on the embedded broker has its plugin swapped
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
//! Run: `cargo bench -p sluice --bench swap`. Under `cargo test` (no
//! `--bench` argument) it runs a few swaps, as a smoke test.

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
    let kafka = EmbeddedKafka::start(1).expect("embedded kafka");
    let brokers = kafka.bootstrap_servers();
    let app = format!("swap-bench-{}", std::process::id());
    for t in [format!("{app}-in"), format!("{app}-out")] {
        kafka.create_topic(&t, 2).expect("topic");
    }
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
"#,
        v1.display()
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
            let mut seen: Vec<(Instant, i32, bool)> = Vec::new();
            while reading.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(10)) {
                    let v2 = m.headers().is_some_and(|h| {
                        h.iter()
                            .any(|h| h.key == "version" && h.value == Some(&b"v2"[..]))
                    });
                    seen.push((Instant::now(), m.partition(), v2));
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

    println!(
        "\nhot swap of a processor under steady input ({produced} records produced, {} processed), embedded broker",
        summary.counts.records_in
    );
    println!("{:<44} {:>10} {:>10}", "measurement", "p50", "p99");
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms",
        format!("swap gap, last old to first new ({})", swap_gaps.len()),
        percentile(&swap_gaps, 0.5),
        percentile(&swap_gaps, 0.99)
    );
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms",
        "baseline: gap between outputs, no swap",
        percentile(&gaps, 0.5),
        percentile(&gaps, 0.99)
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
