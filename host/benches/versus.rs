//! Sluice side by side with Kafka Streams 4.1.1 on a real Kafka broker:
//! the same input, the same broker, the same run, one stream thread each
//! (two in `hopping-2-threads`, which shows how each side scales).
//!
//! `cargo bench -p sluice --bench versus` starts the project's broker
//! (`scripts/kafka.sh`, port 19520; or uses `SLUICE_BENCH_BROKERS`), loads
//! the orders once (1,000,000 by default, `SLUICE_VERSUS_RECORDS`; 1,000
//! customers, one order a millisecond, two partitions), then runs each
//! workload on Sluice (the release `sluice run`) and on Kafka Streams
//! (`versus/Versus.java`, compiled with `javac` against the jars
//! `scripts/kafka.sh fetch` gathers), with its record cache at its default
//! (10 MB) and off, each set against Sluice with its own record cache
//! (`cache.max.bytes`) the same. Stateless workloads run Sluice once (no
//! cache applies). Passthrough also runs a raw Java consumer→producer loop
//! and Kafka's own consumer performance tool on the input.
//!
//! Per run: records/s (input records over the time from the group's
//! assignment, stable with its members, to the last output, so neither a
//! JVM's start nor a group join counts), output
//! records, CPU seconds and peak RSS of the process, and the cores in use
//! from the assignment to the end by the process and the broker together
//! (how much of the machine is left to use). Both systems commit
//! every 1,000 ms (100 ms under exactly-once, Kafka Streams' default then,
//! and in `count-100ms`, at-least-once set against `count-eos`),
//! and a run ends when the group's committed offsets reach the end of the
//! input. Outputs are compared in the same run: the records themselves
//! for stateless workloads, the final value of every key (and window) for
//! aggregations; a mismatch fails the run. `SLUICE_VERSUS_ONLY=count,hopping`
//! runs only those workloads.
//!
//! Without `--bench` (as `cargo test` runs it) it is a smoke run: 20,000
//! orders, three workloads, the same checks. `SLUICE_SKIP_REAL_KAFKA=1`
//! skips it.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const PARTITIONS: i32 = 2;
const CUSTOMERS: u64 = 1_000;
const PORT: u16 = 19520;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// One workload: its name, the Sluice steps (TOML; the sink reads `last`),
/// whether its output is an aggregation (compared by final value), the
/// guarantee, and the stream threads of each side.
struct Workload {
    name: &'static str,
    /// `Versus.java`'s name for it.
    java: &'static str,
    steps: String,
    last: &'static str,
    aggregate: bool,
    eos: bool,
    threads: usize,
    /// Its commit interval, when not the guarantee's usual one.
    commit_ms: Option<u64>,
}

impl Workload {
    /// Both sides commit every second, or every 100 ms under exactly-once
    /// (Kafka Streams' defaults there), unless the workload says.
    fn commit_ms(&self) -> u64 {
        self.commit_ms.unwrap_or(if self.eos { 100 } else { 1_000 })
    }
}

fn workloads() -> Vec<Workload> {
    let plugin = repo().join("plugins/large-orders");
    let count = |window: &str| {
        format!("[steps.count]\naggregate = \"count\"\ninputs = [\"orders\"]\n{window}")
    };
    let w = |name: &'static str, steps: String, last, aggregate, eos| Workload {
        name,
        java: name,
        steps,
        last,
        aggregate,
        eos,
        threads: 1,
        commit_ms: None,
    };
    vec![
        w("passthrough", String::new(), "orders", false, false),
        w(
            "filter",
            format!(
                "[steps.large]\nplugin = {:?}\ninputs = [\"orders\"]\nconfig.min.amount = \"10000\"\n",
                plugin.display().to_string()
            ),
            "large",
            false,
            false,
        ),
        w("count", count(""), "count", true, false),
        w(
            "tumbling",
            count("window = { type = \"tumbling\", size = \"1m\" }\n"),
            "count",
            true,
            false,
        ),
        w(
            "hopping",
            count("window = { type = \"hopping\", size = \"5m\", advance = \"1m\" }\n"),
            "count",
            true,
            false,
        ),
        w(
            "sliding",
            count("window = { type = \"sliding\", difference = \"10s\" }\n"),
            "count",
            true,
            false,
        ),
        w(
            "session",
            count("window = { type = \"session\", gap = \"1s\" }\n"),
            "count",
            true,
            false,
        ),
        Workload {
            java: "count",
            ..w("count-eos", count(""), "count", true, true)
        },
        // At-least-once at exactly-once's commit interval: set against
        // `count-eos`, it shows what the guarantee costs, apart from how
        // long a cached run's last outputs wait for a commit.
        Workload {
            java: "count",
            commit_ms: Some(100),
            ..w("count-100ms", count(""), "count", true, false)
        },
        Workload {
            java: "hopping",
            threads: 2,
            ..w(
                "hopping-2-threads",
                count("window = { type = \"hopping\", size = \"5m\", advance = \"1m\" }\n"),
                "count",
                true,
                false,
            )
        },
    ]
}

/// What one run measured.
struct Run {
    rate: f64,
    outputs: usize,
    cpu: f64,
    rss_mib: f64,
    /// Cores in use from the assignment to the end, the run's process and
    /// the broker's together (of the machine's `available_parallelism`).
    cores: Option<f64>,
    result: Output,
}

/// A record's key and value.
type Pair = (Option<Vec<u8>>, Option<Vec<u8>>);

/// A run's output: its records in order of (partition, offset), or the
/// final value of each key.
#[derive(PartialEq)]
enum Output {
    Records(Vec<Pair>),
    Table(BTreeMap<Vec<u8>, Vec<u8>>),
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    if std::env::var("SLUICE_SKIP_REAL_KAFKA").is_ok_and(|v| v == "1") {
        println!("versus: skipped (SLUICE_SKIP_REAL_KAFKA=1)");
        return;
    }
    let records: u64 = match std::env::var("SLUICE_VERSUS_RECORDS") {
        Ok(n) => n.parse().expect("SLUICE_VERSUS_RECORDS: a number"),
        Err(_) if bench => 1_000_000,
        Err(_) => 20_000,
    };
    let only: Option<Vec<String>> = std::env::var("SLUICE_VERSUS_ONLY")
        .ok()
        .map(|s| s.split(',').map(str::to_owned).collect());
    let (brokers, _broker) = broker();
    let work = tempfile::tempdir().expect("a temporary directory");
    let classpath = compile_java(work.path());
    let prefix = format!(
        "versus-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    let input = format!("{prefix}-orders");
    create_topics(&brokers, &[&input]);
    load(&brokers, &input, records);
    println!("versus: {records} orders on {PARTITIONS} partitions of {input}, broker {brokers}\n");
    println!(
        "| workload | system | records/s | outputs | CPU s | peak RSS MiB | cores busy, with the broker | Sluice ÷ this |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let smoke = ["passthrough", "filter", "count"];
    for w in workloads() {
        let chosen = match &only {
            Some(names) => names.iter().any(|n| n == w.name),
            None => bench || smoke.contains(&w.name),
        };
        if !chosen {
            continue;
        }
        let run = |system: System| {
            let name = format!("{prefix}-{}-{}", w.name, system.tag());
            create_topics(&brokers, &[&name]);
            let dir = work.path().join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            let child = match system {
                System::Sluice { cache } => spawn_sluice(&dir, &brokers, &input, &name, &w, cache),
                System::Streams { cache } | System::Raw { cache } => {
                    let workload = match system {
                        System::Raw { .. } => "raw",
                        _ => w.java,
                    };
                    spawn_java(
                        &classpath, &dir, &brokers, &input, &name, workload, cache, &w,
                    )
                }
            };
            measure(child, &brokers, &input, &name, records, &w)
        };
        // Each Kafka Streams run is set against the Sluice run with the
        // same cache: its ratio is Sluice's records/s over its own.
        let pairs: &[(System, &[System])] = match (w.aggregate, w.name) {
            (true, _) => &[
                (
                    System::Sluice { cache: true },
                    &[System::Streams { cache: true }],
                ),
                (
                    System::Sluice { cache: false },
                    &[System::Streams { cache: false }],
                ),
            ],
            (false, "passthrough") => &[(
                System::Sluice { cache: false },
                &[System::Streams { cache: true }, System::Raw { cache: true }],
            )],
            (false, _) => &[(
                System::Sluice { cache: false },
                &[System::Streams { cache: true }],
            )],
        };
        let mut first: Option<Run> = None;
        for &(sluice_system, others) in pairs {
            let sluice = run(sluice_system);
            row(w.name, sluice_system.label(), &sluice, None);
            for &s in others {
                let r = run(s);
                row(w.name, s.label(), &r, Some(sluice.rate / r.rate));
                assert!(
                    r.result == sluice.result,
                    "{}: {} and Sluice disagree on the output ({} and {} records)",
                    w.name,
                    s.label(),
                    r.outputs,
                    sluice.outputs
                );
            }
            if let Some(first) = &first {
                assert!(
                    first.result == sluice.result,
                    "{}: Sluice with and without its cache disagree",
                    w.name
                );
            }
            if w.name == "passthrough" {
                let bare = consumer_performance(&brokers, &input, records);
                println!(
                    "| passthrough | Kafka's consumer performance tool (read only) | {bare:.0} | | | | | {:.2}× |",
                    sluice.rate / bare
                );
            }
            first.get_or_insert(sluice);
        }
    }
    println!("\nEvery Kafka Streams output equals Sluice's.");
}

#[derive(Clone, Copy)]
enum System {
    Sluice { cache: bool },
    Streams { cache: bool },
    Raw { cache: bool },
}

impl System {
    fn tag(self) -> &'static str {
        match self {
            System::Sluice { cache: true } => "sluice",
            System::Sluice { cache: false } => "sluice-nocache",
            System::Streams { cache: true } => "ks",
            System::Streams { cache: false } => "ks-nocache",
            System::Raw { .. } => "raw",
        }
    }

    fn label(self) -> &'static str {
        match self {
            System::Sluice { cache: true } => "Sluice (cache 10 MB)",
            System::Sluice { cache: false } => "Sluice (cache off)",
            System::Streams { cache: true } => "Kafka Streams (cache 10 MB)",
            System::Streams { cache: false } => "Kafka Streams (cache off)",
            System::Raw { .. } => "raw Java consumer→producer",
        }
    }
}

fn row(workload: &str, system: &str, r: &Run, ratio: Option<f64>) {
    let ratio = ratio.map(|x| format!("{x:.2}×")).unwrap_or_default();
    let cores = r.cores.map(|c| format!("{c:.2}")).unwrap_or_default();
    println!(
        "| {workload} | {system} | {:.0} | {} | {:.1} | {:.0} | {cores} | {ratio} |",
        r.rate, r.outputs, r.cpu, r.rss_mib
    );
}

/// A stop guard for a broker this run started.
struct Broker(Option<u16>);

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(port) = self.0 {
            let _ = Command::new(repo().join("scripts/kafka.sh"))
                .args(["stop", "--port", &port.to_string()])
                .output();
        }
    }
}

fn broker() -> (String, Broker) {
    if let Ok(brokers) = std::env::var("SLUICE_BENCH_BROKERS") {
        return (brokers, Broker(None));
    }
    let out = Command::new(repo().join("scripts/kafka.sh"))
        .args(["start", "--port", &PORT.to_string()])
        .output()
        .expect("running scripts/kafka.sh");
    assert!(
        out.status.success(),
        "scripts/kafka.sh start failed (run ./scripts/setup.sh first):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let brokers = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("the broker's address")
        .trim()
        .to_owned();
    (brokers, Broker(Some(PORT)))
}

fn classpath() -> String {
    let out = Command::new(repo().join("scripts/kafka.sh"))
        .arg("classpath")
        .output()
        .expect("running scripts/kafka.sh classpath");
    assert!(out.status.success(), "scripts/kafka.sh classpath failed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Compiles `Versus.java` once, so no run pays for compiling it; the
/// classpath to run it with.
fn compile_java(work: &Path) -> String {
    let classes = work.join("classes");
    let libs = classpath();
    let javac = std::env::var("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin/javac"))
        .unwrap_or_else(|_| PathBuf::from("javac"));
    let status = Command::new(javac)
        .args(["-nowarn", "-cp", &libs, "-d"])
        .arg(&classes)
        .arg(repo().join("host/benches/versus/Versus.java"))
        .status()
        .expect("running javac (Java 17)");
    assert!(status.success(), "javac failed on Versus.java");
    format!("{}:{libs}", classes.display())
}

fn admin(brokers: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("an admin client")
}

fn create_topics(brokers: &str, names: &[&str]) {
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for r in rt
        .block_on(admin(brokers).create_topics(&topics, &AdminOptions::new()))
        .expect("creating topics")
    {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

/// `n` orders, keyed by customer, one a millisecond ending now (a real
/// broker's retention keeps them).
fn load(brokers: &str, topic: &str, n: u64) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("a producer");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now - n as i64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let customer = format!("c{:04}", x % CUSTOMERS);
        let amount = (x >> 20) % 1_200_000;
        let value = format!(
            r#"{{"order_id":"o{i}","customer_id":"{customer}","amount":{}.{:02}}}"#,
            amount / 100,
            amount % 100
        );
        let mut record = BaseRecord::to(topic)
            .key(&customer)
            .payload(&value)
            .timestamp(start + i as i64);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flushed");
}

fn pipeline(input: &str, name: &str, dir: &Path, w: &Workload, cache: bool) -> String {
    let commit = w.commit_ms();
    let guarantee = if w.eos {
        "exactly-once"
    } else {
        "at-least-once"
    };
    let cache = if cache { 10 << 20 } else { 0 };
    format!(
        "application.id = {name:?}\n\
         [processing]\ncommit.interval.ms = {commit}\nprocessing.guarantee = {guarantee:?}\n\
         cache.max.bytes = {cache}\nnum.stream.threads = {}\n\
         [state]\ndir = {:?}\n\
         [sources.orders]\ntopic = {input:?}\n\
         {}\n\
         [sinks.out]\ntopic = {name:?}\ninputs = [{:?}]\n",
        w.threads,
        dir.join("state").display().to_string(),
        w.steps,
        w.last
    )
}

fn spawn_sluice(
    dir: &Path,
    brokers: &str,
    input: &str,
    name: &str,
    w: &Workload,
    cache: bool,
) -> Child {
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, pipeline(input, name, dir, w, cache)).unwrap();
    let log = std::fs::File::create(dir.join("run.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--brokers", brokers])
        .arg(&path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("starting sluice run")
}

#[allow(clippy::too_many_arguments)]
fn spawn_java(
    classpath: &str,
    dir: &Path,
    brokers: &str,
    input: &str,
    name: &str,
    workload: &str,
    cache: bool,
    w: &Workload,
) -> Child {
    let log = std::fs::File::create(dir.join("run.log")).unwrap();
    let java = std::env::var("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin/java"))
        .unwrap_or_else(|_| PathBuf::from("java"));
    let commit = w.commit_ms().to_string();
    Command::new(java)
        .arg("-cp")
        .arg(classpath)
        .arg("Versus")
        .args([workload, brokers, input, name, name])
        .arg(dir.join("state"))
        .args([
            if cache { "10485760" } else { "0" },
            &commit,
            if w.eos { "true" } else { "false" },
            &w.threads.to_string(),
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("starting java")
}

/// Watches a run until its group has committed the whole input, then
/// reads its CPU time and peak RSS, stops it, and reads its output.
fn measure(
    mut child: Child,
    brokers: &str,
    input: &str,
    output: &str,
    records: u64,
    w: &Workload,
) -> Run {
    let watcher: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", output)
        .create()
        .expect("a consumer");
    let ends: Vec<i64> = (0..PARTITIONS)
        .map(|p| {
            watcher
                .fetch_watermarks(input, p, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(input, p);
    }
    let high = |c: &BaseConsumer| -> i64 {
        (0..PARTITIONS)
            .map(|p| {
                c.fetch_watermarks(output, p, Duration::from_secs(10))
                    .map(|w| w.1)
                    .unwrap_or(0)
            })
            .sum()
    };
    let started = Instant::now();
    // From the moment the group is stable with its members assigned:
    // a cache's first output waits for a commit, so the first output
    // would start the clock a commit interval late.
    let mut assigned: Option<Instant> = None;
    // CPU seconds of the run's process and of the broker when assigned.
    let mut cpu_at_assignment: Option<(f64, f64)> = None;
    let (mut first, mut last, mut seen) = (None, None, 0);
    let mut checked = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{output} exited early ({status}); see its run.log");
        }
        assert!(
            started.elapsed() < Duration::from_secs(1_800),
            "{output}: not done in 30 minutes"
        );
        let now = Instant::now();
        if assigned.is_none()
            && let Ok(groups) = watcher.fetch_group_list(Some(output), Duration::from_secs(5))
            && (groups.groups().iter()).any(|g| g.state() == "Stable" && !g.members().is_empty())
        {
            assigned = Some(now);
            cpu_at_assignment = Some((usage(child.id()).0, broker_cpu()));
        }
        let h = high(&watcher);
        if h != seen {
            seen = h;
            first.get_or_insert(now);
            last = Some(now);
        }
        if checked.elapsed() >= Duration::from_millis(100) {
            checked = Instant::now();
            let committed = watcher
                .committed_offsets(tpl.clone(), Duration::from_secs(10))
                .map(|c| {
                    (0..PARTITIONS).all(|p| match c.find_partition(input, p).map(|e| e.offset()) {
                        Some(Offset::Offset(o)) => o >= ends[p as usize],
                        _ => false,
                    })
                })
                .unwrap_or(false);
            if committed {
                // What a last flush still sends before the next check.
                std::thread::sleep(Duration::from_millis(200));
                if high(&watcher) != seen {
                    last = Some(Instant::now());
                }
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (cpu, rss_mib) = usage(child.id());
    let cores = assigned.zip(cpu_at_assignment).map(|(at, (own, broker))| {
        ((cpu - own) + (broker_cpu() - broker)) / at.elapsed().as_secs_f64()
    });
    stop(&mut child);
    let (first, last) = (first.expect("some output"), last.unwrap());
    // Outputs are sampled every 20 ms: a run shorter than that reads as 20 ms.
    let secs = (last - assigned.unwrap_or(first).min(first))
        .as_secs_f64()
        .max(0.02);
    let (outputs, result) = read_output(brokers, output, w);
    Run {
        rate: records as f64 / secs,
        outputs,
        cpu,
        rss_mib,
        cores,
        result,
    }
}

/// CPU seconds of the Kafka brokers running here (processes whose command
/// line names `kafka.Kafka`): the bench's own broker, or the one
/// `SLUICE_BENCH_BROKERS` names when it runs on this machine.
fn broker_cpu() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(11).any(|w| w == b"kafka.Kafka"))
        })
        // A broker that ended between the listing and the read counts 0.
        .filter_map(cpu_seconds)
        .sum()
}

/// CPU seconds (user + system) of a process, if it is alive.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// CPU seconds (user + system) and peak RSS (MiB) of a live process.
fn usage(pid: u32) -> (f64, f64) {
    let cpu = cpu_seconds(pid).expect("the process is alive");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    (cpu, hwm_kib / 1024.0)
}

fn stop(child: &mut Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Every record of `topic` (committed ones only under exactly-once).
fn read_output(brokers: &str, topic: &str, w: &Workload) -> (usize, Output) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer");
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
        ends.push(
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap()
                .1,
        );
    }
    c.assign(&tpl).unwrap();
    let mut per_partition: Vec<Vec<Pair>> = vec![Vec::new(); PARTITIONS as usize];
    let mut done = vec![false; PARTITIONS as usize];
    for (p, end) in ends.iter().enumerate() {
        done[p] = *end == 0;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done.iter().all(|d| *d) {
        assert!(Instant::now() < deadline, "reading {topic} took too long");
        let Some(m) = c.poll(Duration::from_millis(500)) else {
            // Past the last committed record of a partition (transaction
            // markers take offsets of their own).
            for p in 0..PARTITIONS {
                if let Ok(pos) = c.position() {
                    if let Some(Offset::Offset(o)) =
                        pos.find_partition(topic, p).map(|e| e.offset())
                    {
                        done[p as usize] |= o >= ends[p as usize] - 1;
                    }
                }
            }
            continue;
        };
        let m = m.expect("reading the output");
        let p = m.partition() as usize;
        per_partition[p].push((m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec)));
        done[p] |= m.offset() + 1 >= ends[p];
    }
    let outputs = per_partition.iter().map(Vec::len).sum();
    if !w.aggregate {
        let mut all: Vec<_> = per_partition.into_iter().flatten().collect();
        // Two systems may interleave partitions differently, never the
        // records of one key: sorted by key, stably.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        return (outputs, Output::Records(all));
    }
    let mut table = BTreeMap::new();
    for (k, v) in per_partition.into_iter().flatten() {
        let k = k.unwrap_or_default();
        match v {
            Some(v) => table.insert(k, v),
            None => table.remove(&k),
        };
    }
    (outputs, Output::Table(table))
}

/// Records/s of Kafka's own consumer performance tool reading `topic`.
fn consumer_performance(brokers: &str, topic: &str, records: u64) -> f64 {
    let out = Command::new(repo().join("scripts/kafka.sh"))
        .args([
            "run",
            "org.apache.kafka.tools.ConsumerPerformance",
            "--bootstrap-server",
            brokers,
            "--topic",
            topic,
            "--messages",
            &records.to_string(),
        ])
        .output()
        .expect("running ConsumerPerformance");
    let text = String::from_utf8_lossy(&out.stdout);
    // start.time, end.time, data.consumed.in.MB, MB.sec,
    // data.consumed.in.nMsg, nMsg.sec, ...
    text.lines()
        .last()
        .and_then(|l| l.split(',').nth(5))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("ConsumerPerformance printed:\n{text}"))
}
