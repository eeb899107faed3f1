//! Hot swap: how long a running pipeline stands still for a plugin swap,
//! and how long one plugin instance takes to start.
//!
//! - **swap pause**: a pipeline (a tagging processor on two partitions)
//!   under steady input on the embedded broker has its plugin swapped
//!   back and forth; the pause is the poll loop's time from taking the
//!   request to swapping (drain the batches in flight, commit, swap in
//!   every stream thread), p50 and p99. The commit interval is 100 ms, so
//!   a swap costs about what one more commit does.
//! - **instantiation**: one instance of a processor component, started
//!   with its `init` (on-demand allocation).
//!
//! Run: `cargo bench -p sluice --bench swap`. Under `cargo test` (no
//! `--bench` argument) it runs a few swaps, as a smoke test.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::producer::Producer;
use sluice::kafka::embedded::EmbeddedKafka;
use sluice::plugin::builder::{self, BuildOptions};
use sluice::runner::control::{self, Control};
use sluice::runner::{self, RunOptions};
use sluice::topology::Topology;
use sluice::topology::pipeline_file::PipelineFile;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let swaps = if full { 100 } else { 4 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let build = |name: &str| {
        builder::build(
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

    // Instantiation time of one instance (with init).
    let plugin = plugins.steps[0].clone().expect("a plugin step");
    let n = if full { 200 } else { 5 };
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(plugin.instantiate(&[]).expect("instance"));
    }
    let instantiate_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;

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
    pauses.sort_by(f64::total_cmp);

    println!(
        "\nhot swap of a processor under steady input ({produced} records produced, {} processed), embedded broker",
        summary.counts.records_in
    );
    println!("{:<44} {:>10} {:>10}", "measurement", "p50", "p99");
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms",
        format!("swap pause ({swaps} swaps)"),
        percentile(&pauses, 0.5),
        percentile(&pauses, 0.99)
    );
    println!(
        "{:<44} {:>8.0}us",
        "instantiation, one instance with init", instantiate_us
    );
}
