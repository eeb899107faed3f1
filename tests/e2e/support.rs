//! Shared test support: plugin builds, brokers, producing and reading topics.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sluice::toolchain::{self, BuildOptions};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

/// The `sluice` binary of this build.
pub fn sluice_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sluice"))
}

/// Builds a plugin crate (once per test process) and returns its component.
pub fn component(crate_dir: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    built
        .entry(crate_dir.to_owned())
        .or_insert_with(|| {
            toolchain::build(
                &repo().join(crate_dir),
                &BuildOptions {
                    quiet: true,
                    ..BuildOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("building {crate_dir}: {e}"))
        })
        .clone()
}

/// Runs `sluice dev pipeline.toml --input <input>` in the example
/// directory `dir`, checks that it succeeded, and returns what it printed.
pub fn sluice_dev(dir: &Path, input: &str) -> String {
    let out = std::process::Command::new(sluice_bin())
        .args(["dev", "pipeline.toml", "--input", input])
        .current_dir(dir)
        .env("RUST_LOG", "warn,librdkafka=off")
        .output()
        .expect("sluice dev");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The records `sluice dev` printed for `topic`, in order, as (key, value
/// parsed as JSON): lines `topic[p]@o  key=K  ts=T  {json}[  headers: …]`.
pub fn printed(stdout: &str, topic: &str) -> Vec<(String, serde_json::Value)> {
    stdout
        .lines()
        .filter(|l| l.starts_with(&format!("{topic}[")))
        .map(|line| {
            let fields: Vec<&str> = line.splitn(5, "  ").collect();
            let key = fields[1].strip_prefix("key=").unwrap().to_owned();
            (key, serde_json::from_str(fields[3]).unwrap())
        })
        .collect()
}

/// An example's `expected.jsonl`: `{"key": …, "value": …}` lines, by key.
pub fn expected_jsonl(path: &Path) -> BTreeMap<String, serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["key"].as_str().unwrap().to_owned(), v["value"].clone())
        })
        .collect()
}

/// A record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Read {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| std::str::from_utf8(v).expect("utf-8 header"))
    }
}

/// Produces `(key, value, timestamp)` records to `topic` and waits for all
/// of them to be acknowledged.
pub fn produce(brokers: &str, topic: &str, records: &[(Option<String>, Vec<u8>, i64)]) {
    produce_on(brokers, topic, None, records)
}

/// [`produce`], to one partition when `partition` is set (else by key).
pub fn produce_on(
    brokers: &str,
    topic: &str,
    partition: Option<i32>,
    records: &[(Option<String>, Vec<u8>, i64)],
) {
    let records = records
        .iter()
        .map(|(k, v, t)| (k.as_deref(), Some(v.as_slice()), *t));
    produce_records(brokers, topic, partition, records);
}

/// A `(key, value, timestamp)` record whose value may be null.
pub type Nullable = (Option<String>, Option<Vec<u8>>, i64);

/// [`produce`] of records whose values may be null (tombstones).
pub fn produce_nullable(brokers: &str, topic: &str, records: &[Nullable]) {
    let records = records
        .iter()
        .map(|(k, v, t)| (k.as_deref(), v.as_deref(), *t));
    produce_records(brokers, topic, None, records);
}

fn produce_records<'a>(
    brokers: &str,
    topic: &str,
    partition: Option<i32>,
    records: impl Iterator<Item = (Option<&'a str>, Option<&'a [u8]>, i64)>,
) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for (key, value, ts) in records {
        let mut rec: BaseRecord<'_, str, [u8]> = BaseRecord::to(topic).timestamp(ts);
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(p) = partition {
            rec = rec.partition(p);
        }
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("flush input");
}

/// Produces a tombstone (a null value) for `key` to `topic`.
pub fn produce_tombstone(brokers: &str, topic: &str, key: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("partitioner", "murmur2_random")
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::<str, [u8]>::to(topic).key(key))
        .map_err(|(e, _)| e)
        .expect("send");
    producer
        .flush(Duration::from_secs(60))
        .expect("flush tombstone");
}

/// High watermark of every partition of `topic`.
pub fn high_watermarks(brokers: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| {
            retry(&format!("watermarks of {topic}/{p}"), || {
                c.fetch_watermarks(topic, p, Duration::from_secs(10))
            })
            .1
        })
        .collect()
}

/// Runs a broker request, trying again for ten seconds: a broker that has
/// just started, or a topic just created, may answer NotCoordinator,
/// CoordinatorLoadInProgress or LeaderNotAvailable for a moment.
fn retry<T, E: std::fmt::Display>(what: &str, mut f: impl FnMut() -> Result<T, E>) -> T {
    for _ in 0..50 {
        match f() {
            Ok(v) => return v,
            Err(e) => {
                eprintln!("{what}: {e}; trying again");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    f().unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Reads every record of `topic` up to its current high watermarks, as a
/// `read_committed` consumer: records of aborted transactions are not
/// read, and the offsets of transaction markers are passed over.
pub fn read_all(brokers: &str, topic: &str, partitions: i32) -> Vec<Read> {
    let ends = high_watermarks(brokers, topic, partitions);
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "sluice-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut next = vec![0i64; partitions as usize];
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while next.iter().zip(&ends).any(|(n, e)| n < e) {
        assert!(
            Instant::now() < deadline,
            "reading {topic}: stuck at {next:?} of {ends:?}"
        );
        let Some(m) = c.poll(Duration::from_millis(100)) else {
            // Nothing more to read may still leave the position short of
            // the end by control records (transaction markers).
            for e in c.position().unwrap().elements() {
                if let Offset::Offset(o) = e.offset() {
                    let n = &mut next[e.partition() as usize];
                    *n = (*n).max(o);
                }
            }
            continue;
        };
        {
            let m = m.expect("consume");
            next[m.partition() as usize] = m.offset() + 1;
            out.push(Read {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                timestamp: m.timestamp().to_millis(),
                headers: m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
    }
    out
}

/// Offsets committed by consumer group `group` on `topic`.
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = retry(&format!("committed offsets of {group}"), || {
        c.committed_offsets(tpl.clone(), Duration::from_secs(10))
    });
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

/// Creates topics on a real broker through the admin API.
pub fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    let results = block_on(admin.create_topics(&new, &AdminOptions::new())).expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

/// A minimal executor for the admin client's futures.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(50)),
        }
    }
}

/// A real Apache Kafka broker for the test, started by `scripts/kafka.sh`
/// unless `SLUICE_KAFKA_BROKERS` names one. `SLUICE_SKIP_REAL_KAFKA=1`
/// skips (the test then says so and passes nothing off as checked).
pub struct RealKafka {
    pub brokers: String,
    port: Option<u16>,
}

impl RealKafka {
    pub fn start(port: u16) -> Option<RealKafka> {
        if std::env::var("SLUICE_SKIP_REAL_KAFKA").is_ok_and(|v| v == "1") {
            eprintln!("SKIPPED: SLUICE_SKIP_REAL_KAFKA=1, the real-Kafka check did not run");
            return None;
        }
        if let Ok(brokers) = std::env::var("SLUICE_KAFKA_BROKERS") {
            return Some(RealKafka {
                brokers,
                port: None,
            });
        }
        let out = std::process::Command::new(repo().join("scripts/kafka.sh"))
            .args(["start", "--port", &port.to_string()])
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
            .expect("address")
            .trim()
            .to_owned();
        Some(RealKafka {
            brokers,
            port: Some(port),
        })
    }
}

impl Drop for RealKafka {
    fn drop(&mut self) {
        if let Some(port) = self.port {
            let _ = std::process::Command::new(repo().join("scripts/kafka.sh"))
                .args(["stop", "--port", &port.to_string()])
                .output();
        }
    }
}

/// A name no earlier run used, for topics and groups on a shared broker.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Writes a pipeline file into `dir` and returns its path.
pub fn write_pipeline(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A deterministic pseudo-random sequence (xorshift), so failures replay.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A `sluice run` subprocess, logging to a file.
pub struct SluiceRun {
    pub child: std::process::Child,
    pub log: PathBuf,
}

impl SluiceRun {
    /// Starts `sluice run <pipeline> --brokers <brokers>`.
    pub fn start(pipeline: &Path, brokers: &str, log: PathBuf) -> SluiceRun {
        Self::start_with(pipeline, brokers, log, &[], &[])
    }

    /// As [`SluiceRun::start`], with extra arguments and environment.
    pub fn start_with(
        pipeline: &Path,
        brokers: &str,
        log: PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> SluiceRun {
        let mut all = vec!["run", pipeline.to_str().unwrap(), "--brokers", brokers];
        all.extend_from_slice(args);
        Self::spawn(&all, env, log)
    }

    /// `sluice <args>`, any subcommand, logging to `log`.
    pub fn spawn(args: &[&str], env: &[(&str, &str)], log: PathBuf) -> SluiceRun {
        let child = std::process::Command::new(sluice_bin())
            .args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info,librdkafka=off")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting sluice");
        SluiceRun { child, log }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then checks that it stopped cleanly.
    pub fn terminate(mut self) -> String {
        let term = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let status = self.child.wait().unwrap();
        let log = self.log();
        assert!(status.success(), "SIGTERM stops cleanly; log:\n{log}");
        assert!(log.contains("stopped cleanly"), "{log}");
        log
    }

    /// SIGKILL.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }
}

impl Drop for SluiceRun {
    /// A test that fails while a run is up must not leave it running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts a run that kills itself at `point`, and waits until it is dead.
pub fn crash_at(pipeline: &Path, brokers: &str, log: std::path::PathBuf, point: &str) -> String {
    let mut run = SluiceRun::start_with(pipeline, brokers, log, &[], &[("SLUICE_CRASH_AT", point)]);
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = run.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not reach {point}; log:\n{}",
            run.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = run.log();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "killed at {point} by SIGKILL; log:\n{log}"
    );
    assert!(log.contains("SLUICE_CRASH_AT reached"), "{log}");
    log
}

/// Runs `sluice run` until the group has committed everything `sources`
/// held when it started (`(topic, partitions)`; an empty partition needs no
/// commit), then stops it with SIGTERM.
pub fn run_to_end(
    pipeline: &Path,
    brokers: &str,
    app: &str,
    sources: &[(&str, i32)],
    log: std::path::PathBuf,
) {
    let ends: Vec<Vec<i64>> = sources
        .iter()
        .map(|(t, p)| high_watermarks(brokers, t, *p))
        .collect();
    let mut run = SluiceRun::start(pipeline, brokers, log);
    wait_until("the run to commit its input", &mut [&mut run], || {
        sources.iter().zip(&ends).all(|((t, p), end)| {
            committed(brokers, app, t, *p)
                .iter()
                .zip(end)
                .all(|(c, e)| *e == 0 || c == e)
        })
    });
    run.terminate();
}

/// Waits (three minutes at most) until `done`; fails at once if one of
/// `runs` exits, showing the logs.
pub fn wait_until(what: &str, runs: &mut [&mut SluiceRun], mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let logs = |runs: &[&mut SluiceRun]| {
        runs.iter()
            .map(|r| r.log())
            .collect::<Vec<_>>()
            .join("\n----\n")
    };
    while !done() {
        for i in 0..runs.len() {
            if let Some(status) = runs[i].child.try_wait().unwrap() {
                panic!(
                    "sluice exited ({status}) before {what}; logs:\n{}",
                    logs(runs)
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what}; logs:\n{}",
            logs(runs)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl RealKafka {
    /// The broker's process id, when this test started the broker (`None`
    /// for one named by `SLUICE_KAFKA_BROKERS`): `scripts/kafka.sh` keeps
    /// it in `$SLUICE_KAFKA_HOME/run-<port>/kafka.pid`.
    pub fn pid(&self) -> Option<i32> {
        let port = self.port?;
        let home = std::env::var("SLUICE_KAFKA_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/sluice/kafka")
            });
        std::fs::read_to_string(home.join(format!("run-{port}/kafka.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl SluiceRun {
    /// Waits at most `limit` for the process to exit (`what` it should
    /// have done by then names the failure, with the log: a hang is a
    /// failure, not a wait).
    pub fn exit_within(&mut self, limit: Duration, what: &str) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "not {what} within {} s (a hang); log:\n{}",
                limit.as_secs(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Sends `signal` (`STOP`, `CONT`, …) to process `pid`.
pub fn signal(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

impl SluiceRun {
    /// SIGTERM, then checks that it stopped cleanly within `limit` (a run
    /// still up after it is killed, and the test fails with its log).
    pub fn terminate_within(mut self, limit: Duration) -> String {
        signal(self.child.id() as i32, "TERM");
        let status = self.exit_within(limit, "stopped after SIGTERM");
        let log = self.log();
        assert!(status.success(), "SIGTERM stops cleanly; log:\n{log}");
        assert!(log.contains("stopped cleanly"), "{log}");
        log
    }
}

/// How a bounded run of the `sluice` binary ended.
pub struct Ended {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

/// Runs `sluice <args>` in `dir` with `TMPDIR` `tmp`, its output into
/// files (a pipe nobody reads would stall it); kills it if it has not
/// ended within `limit`, failing the test: a hang is a failure, not a
/// wait.
pub fn sluice_within(dir: &Path, tmp: &Path, args: &[&str], limit: Duration) -> Ended {
    let (out, err) = (tmp.join("sluice.stdout"), tmp.join("sluice.stderr"));
    let started = std::time::Instant::now();
    let mut child = std::process::Command::new(sluice_bin())
        .args(args)
        .current_dir(dir)
        .env("TMPDIR", tmp)
        .env("RUST_LOG", "warn,librdkafka=off")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("sluice");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            let stdout = std::fs::read_to_string(&out).unwrap_or_default();
            let lines: Vec<&str> = stdout.lines().collect();
            let tail = &lines[lines.len().saturating_sub(5)..];
            panic!(
                "sluice {args:?} still running after {} s (a hang), killed; stderr:\n{}\nlast lines of stdout:\n{}",
                limit.as_secs(),
                std::fs::read_to_string(&err).unwrap_or_default(),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ended {
        status,
        stdout: std::fs::read_to_string(&out).unwrap(),
        stderr: std::fs::read_to_string(&err).unwrap(),
        took: started.elapsed(),
    }
}

impl Ended {
    /// Checks it failed with an error (exit code 1, no signal) naming
    /// each of `expected`.
    pub fn failed_saying(&self, expected: &[&str]) {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            (self.status.code(), self.status.signal()),
            (Some(1), None),
            "an error exit, not a success or a signal ({}); stderr:\n{}",
            self.status,
            self.stderr
        );
        for e in expected {
            assert!(
                self.stderr.contains(e),
                "expected {e:?} in:\n{}",
                self.stderr
            );
        }
    }
}
