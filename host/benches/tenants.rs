//! Tenants in one host: how much a hostile neighbour slows a well-behaved
//! tenant, and how many idle tenant pipelines fit in 2 GiB of RSS.
//!
//! - **isolation**: tenant `ops` runs a tagging processor on one partition;
//!   for each phase it is paused, given a backlog, and resumed, and its
//!   records per second until the backlog is done are measured (sampled
//!   every millisecond, from the first progress to the last sample short
//!   of the end). The baseline is the mean of a phase alone before the
//!   attacks and one after, in the same run; each other phase runs
//!   while tenant `evil`'s plugin attacks on every 10th record of its own
//!   backlog (loops, allocates, traps, reads a store it was not given,
//!   floods its output), with its quarantine off so that the attack lasts
//!   the whole phase. Deadline 200 ms, memory cap 64 MiB, output cap
//!   256 KiB per call. The attacker's progress meanwhile is shown too.
//! - **idle pipelines**: tenants, each with one pipeline (a tagging
//!   processor, one partition, one record processed), deployed into one
//!   host until its resident memory reaches 2 GiB or the run's limit
//!   (1,000, or `SLUICE_BENCH_IDLE_LIMIT`). Each parks 5 s after its
//!   record (`--park-after`). Once all are parked: the host's RSS,
//!   threads (librdkafka's among them) and CPU, and then how long 10 of
//!   them take to wake and process a record each.
//!
//! All in one process on the embedded broker, with the pooling allocator
//! as `sluice serve` has it. Run: `cargo bench -p sluice --bench tenants`.
//! Under `cargo test` (no `--bench` argument) it runs small, as a smoke
//! test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sluice::admin::auth::Caller;
use sluice::admin::pipelines::{Host, HostSettings};
use sluice::admin::tenants::Tenant;
use sluice::kafka::embedded::EmbeddedKafka;
use sluice::toolchain::{self, BuildOptions};

const GIB: u64 = 1 << 30;

/// When, and how many records a pipeline had processed then.
type Sample = (Instant, u64);

fn build(root: &Path, dir: &str) -> PathBuf {
    toolchain::build(
        &root.join(dir),
        &BuildOptions {
            quiet: true,
            ..BuildOptions::default()
        },
    )
    .expect("building a plugin")
}

fn tenant(settings: serde_json::Value) -> Tenant {
    serde_json::from_value(settings).expect("tenant settings")
}

fn produce(brokers: &str, topic: &str, values: impl Iterator<Item = String>) {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for v in values {
        loop {
            match producer.send(BaseRecord::<(), _>::to(topic).payload(&v)) {
                Ok(()) => break,
                Err((_, _)) => {
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flushed");
}

/// A one-step pipeline of `app`: `<app>-in` through `plugin` to `<app>-out`.
fn pipeline(dir: &Path, app: &str, plugin: &Path) -> PathBuf {
    let file = dir.join(format!("{app}.toml"));
    std::fs::write(
        &file,
        format!(
            "application.id = \"{app}\"\n[processing]\ncommit.interval.ms = 100\n[sources.events]\ntopic = \"{app}-in\"\n[steps.work]\nplugin = \"{}\"\ninputs = [\"events\"]\n[sinks.out]\ntopic = \"{app}-out\"\ninputs = [\"work\"]\n",
            plugin.display()
        ),
    )
    .expect("writing a pipeline");
    file
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(300);
    while !done() {
        assert!(Instant::now() < give_up, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A number from `/proc/self/status` (`VmRSS` in kB, `Threads`).
fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// CPU time the process has used, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // After the command name in parentheses, utime and stime are the 12th
    // and 13th fields.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a command name")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf only reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / per_second
}

/// The process's resident memory, in bytes.
fn rss() -> u64 {
    proc_status("VmRSS") * 1024
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    sluice::plugin::configure(sluice::plugin::EngineSettings {
        pooled_instances: Some(1000),
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (tag, hostile) = (
        build(&root, "tests/plugins/tag-v1"),
        build(&root, "tests/plugins/hostile"),
    );
    let kafka = EmbeddedKafka::start(1).expect("embedded kafka");
    let brokers = kafka.bootstrap_servers();
    let dir = tempfile::tempdir().expect("temp dir");
    let host = Host::new(
        sluice::plugin::engine(),
        HostSettings::new(&brokers, &dir.path().join("data")),
    );
    let records_in = |name: &str| {
        host.status(&Caller::Operator, name)
            .expect("status")
            .records_in
    };

    // Isolation.
    // The embedded broker keeps about 170,000 records of a partition.
    let backlog: usize = if full { 150_000 } else { 2_000 };
    host.create_tenant(
        &Caller::Operator,
        "ops",
        tenant(serde_json::json!({ "topics": ["ops."] })),
    )
    .expect("tenant ops");
    // The attacks go on for the whole phase: no quarantine.
    host.create_tenant(
        &Caller::Operator,
        "evil",
        tenant(serde_json::json!({
            "topics": ["evil."],
            "plugin-deadline-ms": 200,
            "plugin-output-kb": 256,
            "quarantine-after-traps": 1_000_000,
        })),
    )
    .expect("tenant evil");
    let ops = "ops.work";
    for t in [format!("{ops}-in"), format!("{ops}-out")] {
        kafka.create_topic(&t, 1).expect("topic");
    }
    host.deploy_file(&pipeline(dir.path(), ops, &tag), Some("ops"))
        .expect("deploying ops");
    let mut sent = 0;
    // One phase: `ops` paused, given a backlog (the attacker, running
    // already, given its input), resumed; returns `ops`' rate and how many
    // records the attacker got through meanwhile.
    let mut phase = |attack: Option<(&str, &str)>| -> (f64, u64) {
        let evil = attack.map(|(name, marker)| {
            let app = format!("evil.{name}");
            for t in [
                format!("{app}-in"),
                format!("{app}-out"),
                format!("{app}-dlq"),
            ] {
                kafka.create_topic(&t, 1).expect("topic");
            }
            host.deploy_file(&pipeline(dir.path(), &app, &hostile), Some("evil"))
                .expect("deploying an attack");
            produce(
                &brokers,
                &format!("{app}-in"),
                std::iter::once("warm".to_owned()),
            );
            wait_until("the attacker to run", || records_in(&app) == 1);
            (app, marker)
        });
        host.pause(&Caller::Operator, ops, true).expect("paused");
        produce(
            &brokers,
            &format!("{ops}-in"),
            (sent..sent + backlog).map(|i| format!("ops-{i}")),
        );
        sent += backlog;
        if let Some((app, marker)) = &evil {
            produce(
                &brokers,
                &format!("{app}-in"),
                (0..backlog).map(|i| {
                    if i % 10 == 9 {
                        (*marker).to_owned()
                    } else {
                        format!("plain-{i}")
                    }
                }),
            );
        }
        let before = records_in(ops);
        host.pause(&Caller::Operator, ops, false).expect("resumed");
        // From the first sample that moved to the last one short of the
        // end: the rate once the backlog flows, without the resume's own
        // latency.
        let mut first: Option<Sample> = None;
        let mut last: Option<Sample> = None;
        let give_up = Instant::now() + Duration::from_secs(300);
        loop {
            let n = records_in(ops);
            let now = Instant::now();
            if n > before && first.is_none() {
                first = Some((now, n));
            }
            if last.is_none_or(|(_, l)| l < sent as u64) {
                last = Some((now, n));
            }
            if n >= sent as u64 {
                break;
            }
            assert!(now < give_up, "gave up waiting for the backlog");
            std::thread::sleep(Duration::from_millis(1));
        }
        let attacked = evil.map_or(0, |(app, _)| {
            let done = records_in(&app) - 1;
            host.remove(&Caller::Operator, &app)
                .expect("removing the attack");
            done
        });
        let ((t0, n0), (t1, n1)) = (first.expect("moved"), last.expect("sampled"));
        (
            (n1 - n0) as f64 / t1.duration_since(t0).as_secs_f64().max(1e-3),
            attacked,
        )
    };
    phase(None); // warming up
    let (alone_before, _) = phase(None);
    let attacks = [
        ("loop", "SPIN"),
        ("allocate", "GRAB"),
        ("trap", "TRAP"),
        ("peek", "PEEK"),
        ("flood", "FLOOD"),
    ];
    let rates: Vec<(&str, (f64, u64))> = attacks
        .iter()
        .map(|&(name, marker)| (name, phase(Some((name, marker)))))
        .collect();
    let (alone_after, _) = phase(None);
    let alone = (alone_before + alone_after) / 2.0;
    host.shutdown();

    println!(
        "\nisolation: tenant `ops` (tag-v1, {backlog}-record backlogs) while tenant `evil` attacks on every 10th of {backlog} records, embedded broker"
    );
    println!(
        "{:<20} {:>14} {:>10} {:>26}",
        "attack", "ops records/s", "vs alone", "attacker's records meanwhile"
    );
    println!(
        "{:<20} {:>14.0} {:>9.2}× {:>26}",
        "none (baseline)", alone, 1.0, ""
    );
    for (name, (rate, attacked)) in &rates {
        println!(
            "{name:<20} {rate:>14.0} {:>9.2}× {attacked:>26}",
            rate / alone,
        );
    }

    // Idle pipelines in one host: they park once idle.
    let limit = match std::env::var("SLUICE_BENCH_IDLE_LIMIT") {
        Ok(n) => n.parse().expect("SLUICE_BENCH_IDLE_LIMIT is a number"),
        Err(_) if full => 1_000,
        Err(_) => 3,
    };
    let mut settings = HostSettings::new(&brokers, &dir.path().join("data"));
    settings.park_after = Some(PARK_AFTER);
    let host = Host::new(sluice::plugin::engine(), settings);
    let base = rss();
    let base_threads = proc_status("Threads");
    let base_rdk_threads = librdkafka_threads();
    let mut samples: Vec<(usize, u64)> = vec![(0, base)];
    let started = Instant::now();
    let mut deployed = 0;
    let mut stalled = None;
    println!(
        "\nidle tenant pipelines, as they are added (each parks {} s after its record):",
        PARK_AFTER.as_secs()
    );
    while deployed < limit && samples.last().expect("a sample").1 < 2 * GIB {
        let batch = 25.min(limit - deployed);
        let apps: Vec<String> = (deployed..deployed + batch)
            .map(|i| format!("t{i}.idle"))
            .collect();
        for (i, app) in (deployed..).zip(&apps) {
            let name = format!("t{i}");
            host.create_tenant(
                &Caller::Operator,
                &name,
                tenant(serde_json::json!({ "topics": [format!("{name}.")] })),
            )
            .expect("tenant");
            for t in [
                format!("{app}-in"),
                format!("{app}-out"),
                format!("{app}-dlq"),
            ] {
                kafka.create_topic(&t, 1).expect("topic");
            }
            host.deploy_file(&idle_pipeline(dir.path(), app, &tag), Some(&name))
                .expect("deploying an idle pipeline");
            produce(
                &brokers,
                &format!("{app}-in"),
                std::iter::once("hello".to_owned()),
            );
        }
        if !processed(&host, &apps, 1, Duration::from_secs(120)) {
            stalled = Some(deployed + batch);
            break;
        }
        deployed += batch;
        samples.push((deployed, rss()));
        println!(
            "  {deployed:>5} pipelines: RSS {:>6.0} MiB, {:>6} threads ({} librdkafka), {:>4} parked, {:>6.1} s",
            rss() as f64 / (1 << 20) as f64,
            proc_status("Threads"),
            librdkafka_threads(),
            host.parked(),
            started.elapsed().as_secs_f64()
        );
    }
    if let Some(n) = stalled {
        println!(
            "  stopped: the last 25 of {n} pipelines did not all process their record within 2 minutes (the embedded broker or the 2 cores no longer keep up)"
        );
    }
    let took = started.elapsed();
    let n = deployed;
    let give_up = Instant::now() + Duration::from_secs(300);
    while host.parked() < n && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(200));
    }
    let parked = host.parked();
    std::thread::sleep(Duration::from_secs(2));
    let last = rss();
    let measured = if full { 10.0 } else { 1.0 };
    let cpu_before = cpu_seconds();
    std::thread::sleep(Duration::from_secs_f64(measured));
    let idle_cores = (cpu_seconds() - cpu_before) / measured;
    let per = last.saturating_sub(base) as f64 / n.max(1) as f64;
    let fits = (2 * GIB).saturating_sub(base) as f64 / per;
    let threads = proc_status("Threads");
    let rdk_threads = librdkafka_threads();

    // Waking: one record to each of 10 parked pipelines.
    let woken: Vec<String> = (0..n.min(10)).map(|i| format!("t{i}.idle")).collect();
    let wake_started = Instant::now();
    for app in &woken {
        produce(
            &brokers,
            &format!("{app}-in"),
            std::iter::once("again".to_owned()),
        );
    }
    let mut wake_latencies = Vec::new();
    for app in &woken {
        let ok = processed(
            &host,
            std::slice::from_ref(app),
            2,
            Duration::from_secs(120),
        );
        assert!(ok, "{app} did not wake for its record");
        wake_latencies.push(wake_started.elapsed().as_secs_f64());
    }
    println!(
        "\nidle tenant pipelines (tag-v1, one partition, one record each, parked after {} s), embedded broker, pooling allocator",
        PARK_AFTER.as_secs()
    );
    println!("{:<44} {:>12}", "pipelines deployed", n);
    println!("{:<44} {:>12}", "of them parked", parked);
    println!(
        "{:<44} {:>10.0}MiB",
        "host RSS before any",
        base as f64 / (1 << 20) as f64
    );
    println!(
        "{:<44} {:>10.0}MiB",
        "host RSS with them, parked",
        last as f64 / (1 << 20) as f64
    );
    println!(
        "{:<44} {:>10.2}MiB",
        "RSS per parked pipeline",
        per / (1 << 20) as f64
    );
    println!(
        "{:<44} {:>12.0}",
        "parked pipelines within 2 GiB (extrapolated)", fits
    );
    println!(
        "{:<44} {:>11.1}s",
        "time to deploy them",
        took.as_secs_f64()
    );
    println!(
        "{:<44} {:>12}",
        "threads in the host (before any)",
        format!("{threads} ({base_threads})")
    );
    println!(
        "{:<44} {:>12}",
        "librdkafka threads in the host (before any)",
        format!("{rdk_threads} ({base_rdk_threads})")
    );
    println!("{:<44} {:>12.3}", "CPU cores they use, parked", idle_cores);
    println!(
        "{:<44} {:>11.1}s",
        format!("{} woken by a record: all processed it after", woken.len()),
        wake_latencies.last().copied().unwrap_or(0.0)
    );
    host.shutdown();
}

/// How long an idle pipeline of the density run waits before it parks.
const PARK_AFTER: Duration = Duration::from_secs(5);

/// Whether every pipeline of `apps` has processed `records` within
/// `within`.
fn processed(host: &Host, apps: &[String], records: u64, within: Duration) -> bool {
    let give_up = Instant::now() + within;
    while !apps.iter().all(|app| {
        host.status(&Caller::Operator, app)
            .expect("status")
            .records_in
            == records
    }) {
        if Instant::now() > give_up {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// This process's librdkafka threads (named `rdk:…`).
fn librdkafka_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.starts_with("rdk:"))
        .count()
}

/// [`pipeline`] with a 6 s session: the embedded broker holds a group's
/// rebalance until a member that left times out, so a woken pipeline
/// rejoins after that long (a real broker lets the member go at once).
fn idle_pipeline(dir: &Path, app: &str, plugin: &Path) -> PathBuf {
    let file = pipeline(dir, app, plugin);
    let mut text = std::fs::read_to_string(&file).expect("reading a pipeline");
    text.push_str(
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"1000\"\n",
    );
    std::fs::write(&file, text).expect("writing a pipeline");
    file
}
