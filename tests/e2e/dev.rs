//! `sluice dev` as a new user meets it: a run that ends only once every
//! input record is acknowledged and processed (or fails, saying so), even
//! when the embedded broker is slow or refuses requests; no temporary
//! state left behind; `--idle-close`; late records in the summary.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use sluice::dev::{DevError, DevOptions, Printed};
use sluice::kafka::embedded::EmbeddedKafka;
use sluice::topology::Topology;

use crate::support;

/// A hopping count over two partitions: each in-order record updates two
/// windows, so the outputs are twice the input.
const HOPPING_COUNT: &str = r#"
application.id = "flaky"
[processing]
commit.interval.ms = 100
[sources.events]
partitions = 2
[steps.counts]
aggregate = "count"
inputs = ["events"]
window = { type = "hopping", size = 100, advance = 50 }
[sinks.out]
inputs = ["counts"]
"#;

/// `n` records over ten keys, in time order (none late).
fn input(dir: &Path, n: usize) -> std::path::PathBuf {
    let path = dir.join("input.jsonl");
    let lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"key": "k{}", "value": "v", "timestamp": {}}}"#,
                i % 10,
                1000 + i
            )
        })
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn run_on(
    kafka: &EmbeddedKafka,
    dir: &Path,
    input: &Path,
    opts: DevOptions,
) -> (Result<sluice::runner::RunSummary, DevError>, Vec<Printed>) {
    let pipeline = support::write_pipeline(dir, HOPPING_COUNT);
    let topology = Arc::new(Topology::load(&pipeline).unwrap());
    let plugins = sluice::Plugins::none(&topology);
    let printed: Arc<Mutex<Vec<Printed>>> = Arc::default();
    let sink = Arc::clone(&printed);
    let result = sluice::dev::run_on(kafka, topology, plugins, input, opts, move |p| {
        sink.lock().unwrap().push(p.clone())
    });
    let printed = std::mem::take(&mut *printed.lock().unwrap());
    (result, printed)
}

/// Produce and fetch requests fail now and then (errors a client retries,
/// and dropped connections), and every round trip takes 30 ms: the run
/// still processes all 2,000 records and prints all 4,000 results.
#[test]
fn a_flaky_slow_broker_still_gets_every_record_processed() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 2_000);
    let kafka = EmbeddedKafka::start(1).unwrap();
    let cluster = kafka.cluster();
    cluster
        .broker_round_trip_time(1, Duration::from_millis(30))
        .unwrap();
    use RDKafkaRespErr::*;
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR__TRANSPORT,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    cluster.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RD_KAFKA_RESP_ERR__TRANSPORT,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        ],
    );
    let (result, printed) = run_on(&kafka, dir.path(), &input, DevOptions::default());
    let summary = result.expect("every record processed");
    assert_eq!(summary.counts.records_in, 2_000);
    assert_eq!(summary.counts.records_out, 4_000);
    let outputs = printed.iter().filter(|p| p.topic == "out").count();
    assert_eq!(outputs, 4_000, "every result printed");
}

/// A broker that refuses every produce request for good: the run fails
/// and names the input line the broker did not take, instead of
/// processing nothing and succeeding.
#[test]
fn a_broker_that_refuses_the_input_fails_the_run_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 5);
    let kafka = EmbeddedKafka::start(1).unwrap();
    kafka.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 50],
    );
    let (result, _) = run_on(&kafka, dir.path(), &input, DevOptions::default());
    match result {
        Err(e @ DevError::Produce { .. }) => {
            let text = e.to_string();
            assert!(text.contains("input.jsonl:"), "{text}");
            assert!(text.contains("did not take this record"), "{text}");
        }
        other => panic!("expected a produce error, got {other:?}"),
    }
}

/// A run stopped before it has processed its input is not a success: it
/// says how many of the input records it processed.
#[test]
fn a_run_that_ends_short_of_its_input_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let input = input(dir.path(), 200);
    let kafka = EmbeddedKafka::start(1).unwrap();
    let opts = DevOptions {
        stop: Arc::new(AtomicBool::new(true)),
        ..DevOptions::default()
    };
    let (result, _) = run_on(&kafka, dir.path(), &input, opts);
    match result {
        Err(e @ DevError::Incomplete { .. }) => {
            let text = e.to_string();
            assert!(text.contains("of the 200 input records"), "{text}");
            assert!(text.contains("events/"), "names the partitions: {text}");
        }
        other => panic!("expected an incomplete run, got {other:?}"),
    }
}

/// Runs the `sluice` binary in `dir` with `TMPDIR` set to `tmp`.
fn sluice_in(dir: &Path, tmp: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(support::sluice_bin())
        .args(args)
        .current_dir(dir)
        .env("TMPDIR", tmp)
        .env("RUST_LOG", "warn,librdkafka=off")
        .output()
        .expect("sluice")
}

fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sluice-dev-state-"))
        .collect()
}

/// `sluice dev` keeps its stores in a temporary directory and removes it
/// when the run ends: after a run that succeeds and after one that fails;
/// a run killed outright cannot, and the next run removes its directory.
/// `--state-dir` keeps them where asked.
#[test]
fn dev_leaves_no_state_directory_behind() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    support::write_pipeline(dir.path(), HOPPING_COUNT);
    std::fs::copy(input(dir.path(), 20_000), dir.path().join("long.jsonl")).unwrap();
    let mut killed = std::process::Command::new(support::sluice_bin())
        .args(["dev", "pipeline.toml", "--input", "long.jsonl"])
        .current_dir(dir.path())
        .env("TMPDIR", tmp.path())
        .env("RUST_LOG", "off")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while leftovers(tmp.path()).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no state directory appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert_eq!(
        leftovers(tmp.path()).len(),
        1,
        "a killed run leaves its own"
    );
    input(dir.path(), 50);
    let ok = sluice_in(
        dir.path(),
        tmp.path(),
        &["dev", "pipeline.toml", "--input", "input.jsonl"],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        leftovers(tmp.path()),
        Vec::<String>::new(),
        "after a success, the killed run's swept too"
    );

    // A record with an invalid timestamp under `fail` stops the run.
    std::fs::write(
        dir.path().join("failing.toml"),
        HOPPING_COUNT.replace(
            "partitions = 2",
            "partitions = 2\ntimestamp = \"field\"\ntimestamp-field = \"at\"\ninvalid-timestamp = \"fail\"",
        ),
    )
    .unwrap();
    let failed = sluice_in(
        dir.path(),
        tmp.path(),
        &["dev", "failing.toml", "--input", "input.jsonl"],
    );
    assert!(!failed.status.success());
    assert_eq!(
        leftovers(tmp.path()),
        Vec::<String>::new(),
        "after a failure"
    );

    let kept = dir.path().join("kept-state");
    let ok = sluice_in(
        dir.path(),
        tmp.path(),
        &[
            "dev",
            "pipeline.toml",
            "--input",
            "input.jsonl",
            "--state-dir",
            kept.to_str().unwrap(),
        ],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        kept.join("flaky").is_dir(),
        "the stores are kept under --state-dir"
    );
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
}

/// A tumbling count with `close.idle.after`, emitting on close: the last
/// window of the sample closes only with `--idle-close`.
#[test]
fn idle_close_emits_the_last_windows_of_a_sample() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    support::write_pipeline(
        dir.path(),
        r#"
application.id = "idle"
[sources.events]
[steps.counts]
aggregate = "count"
inputs = ["events"]
window = { type = "tumbling", size = "1m" }
emit = "on-window-close"
close.idle.after = "10m"
[sinks.out]
inputs = ["counts"]
"#,
    );
    let lines = [
        r#"{"key": "a", "value": "x", "timestamp": 1}"#,
        r#"{"key": "a", "value": "x", "timestamp": 30000}"#,
        r#"{"key": "b", "value": "x", "timestamp": 61000}"#,
        r#"{"key": "a", "value": "x", "timestamp": 62000}"#,
    ];
    std::fs::write(dir.path().join("input.jsonl"), lines.join("\n")).unwrap();
    let args = ["dev", "pipeline.toml", "--input", "input.jsonl"];
    let without = sluice_in(dir.path(), tmp.path(), &args);
    let stdout = String::from_utf8(without.stdout).unwrap();
    assert!(without.status.success(), "{stdout}");
    let results = |stdout: &str| {
        let mut keys: Vec<String> = support::printed(stdout, "out")
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(results(&stdout), ["a@0/60000=2"], "{stdout}");

    let with = sluice_in(
        dir.path(),
        tmp.path(),
        &[&args[..], &["--idle-close"]].concat(),
    );
    let stdout = String::from_utf8(with.stdout).unwrap();
    assert!(
        with.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert_eq!(
        results(&stdout),
        ["a@0/60000=2", "a@60000/120000=1", "b@60000/120000=1"],
        "{stdout}"
    );

    // A pipeline without `close.idle.after`: the flag is refused, saying why.
    support::write_pipeline(dir.path(), HOPPING_COUNT);
    let refused = sluice_in(
        dir.path(),
        tmp.path(),
        &[&args[..], &["--idle-close"]].concat(),
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("no step of this pipeline sets it"),
        "{stderr}"
    );
}

/// Late records are counted in the summary under `late = "skip"` too, and
/// a hopping record too late for one of its windows but not the other is
/// counted as partly late, with each dropped (record, window).
#[test]
fn the_summary_counts_late_and_partly_late_records() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    support::write_pipeline(
        dir.path(),
        r#"
application.id = "late"
[sources.events]
[steps.counts]
aggregate = "count"
inputs = ["events"]
window = { type = "hopping", size = 100, advance = 50 }
late = "skip"
[sinks.out]
inputs = ["counts"]
"#,
    );
    // Stream time 160 has closed [50, 150) but not [100, 200): the record
    // at 120 is partly late (one window dropped); the one at 10 falls into
    // [-50, 50) and [0, 100), both closed: late (two windows dropped).
    let lines = [
        r#"{"key": "a", "value": "x", "timestamp": 160}"#,
        r#"{"key": "a", "value": "x", "timestamp": 120}"#,
        r#"{"key": "a", "value": "x", "timestamp": 10}"#,
    ];
    std::fs::write(dir.path().join("input.jsonl"), lines.join("\n")).unwrap();
    let out = sluice_in(
        dir.path(),
        tmp.path(),
        &["dev", "pipeline.toml", "--input", "input.jsonl"],
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.contains("late 1 (partly 1; 3 record-windows dropped)"),
        "{summary}"
    );
}

/// A line for a topic the pipeline does not read would never be consumed:
/// it is refused before anything is produced, naming the line.
#[test]
fn a_line_for_a_topic_no_source_reads_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.jsonl");
    std::fs::write(
        &path,
        "{\"key\": \"a\", \"value\": \"x\"}\n{\"topic\": \"evnets\", \"value\": \"x\"}\n",
    )
    .unwrap();
    let kafka = EmbeddedKafka::start(1).unwrap();
    let (result, _) = run_on(&kafka, dir.path(), &path, DevOptions::default());
    let e = result.unwrap_err().to_string();
    assert!(e.contains("input.jsonl:2:"), "{e}");
    assert!(e.contains("\"evnets\" is not a source topic"), "{e}");
}

/// `partitions = 2147483647` on a source used to abort `sluice dev`
/// inside librdkafka's mock cluster (SIGABRT), and `100000` hung it: such
/// a pipeline is refused before any broker starts, promptly, naming the
/// key and the range it must be in.
#[test]
fn dev_refuses_a_source_with_too_many_partitions_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    input(dir.path(), 5);
    for partitions in ["2147483647", "100000", "1025", "0"] {
        support::write_pipeline(
            dir.path(),
            &HOPPING_COUNT.replace("partitions = 2", &format!("partitions = {partitions}")),
        );
        let ended = support::sluice_within(
            dir.path(),
            tmp.path(),
            &["dev", "pipeline.toml", "--input", "input.jsonl"],
            Duration::from_secs(60),
        );
        ended.failed_saying(&[
            "pipeline.toml",
            "[sources.events] `partitions`",
            "must be from 1 to 1024",
            &format!("got {partitions}"),
        ]);
        assert!(
            ended.took < Duration::from_secs(30),
            "partitions = {partitions}: refused, but only after {:?}",
            ended.took
        );
    }
}

/// A sample line over the producer's `message.max.bytes` (a value of
/// 2 MB) used to hang `sluice dev` without a word: its produce loop
/// retried every refusal for ever. The run fails, naming the line and
/// the record's size against the limit.
#[test]
fn dev_fails_on_a_sample_line_too_large_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    support::write_pipeline(dir.path(), HOPPING_COUNT);
    let big = format!(
        r#"{{"key": "k1", "value": "{}", "timestamp": 1001}}"#,
        "x".repeat(2_000_000)
    );
    let lines = [
        r#"{"key": "k0", "value": "v", "timestamp": 1000}"#.to_owned(),
        big,
        r#"{"key": "k2", "value": "v", "timestamp": 1002}"#.to_owned(),
    ];
    std::fs::write(dir.path().join("input.jsonl"), lines.join("\n")).unwrap();
    let ended = support::sluice_within(
        dir.path(),
        tmp.path(),
        &["dev", "pipeline.toml", "--input", "input.jsonl"],
        Duration::from_secs(60),
    );
    ended.failed_saying(&[
        "input.jsonl:2: the embedded broker did not take this record",
        "Message size too large",
        "the record is 2000002 bytes",
        "over the 1000000 bytes a record may have (`message.max.bytes`)",
    ]);
}

/// The embedded broker keeps about 5 MB a partition and drops the oldest
/// records past that. Outputs it dropped before the printer read them
/// (a printer slower than the pipeline: a terminal) once hung `sluice
/// dev` for good: the watcher jumped to the end and waited for offsets
/// that would never come. Here the printer is held at the first output
/// until all 40,000 outputs (about 10 MB) are in the broker, so that it has
/// dropped thousands the watcher never read: the run fails, saying how
/// many were printed, instead of hanging.
#[test]
fn dev_fails_when_the_broker_dropped_outputs_before_they_were_printed() {
    const RECORDS: usize = 400;
    const WINDOWS: usize = 100;
    let outputs = (RECORDS * WINDOWS) as i64;
    let dir = tempfile::tempdir().unwrap();
    // 100 windows a record; long keys make each output about 250 bytes.
    // The watcher reads ahead a little only (librdkafka would prefetch
    // 100,000 records while the printer is held), and asks for more every
    // 10 ms (the broker answers an empty fetch after `fetch.wait.max.ms`):
    // it reads the first output before the broker drops any. Small batches
    // spread the outputs over many produce requests.
    let pipeline = support::write_pipeline(
        dir.path(),
        r#"
application.id = "slow-printer"
[processing]
commit.interval.ms = 100
max.batch.records = 10
[sources.events]
[steps.counts]
aggregate = "count"
inputs = ["events"]
window = { type = "hopping", size = 100, advance = 1 }
[sinks.out]
inputs = ["counts"]
[kafka]
queued.min.messages = 100
max.partition.fetch.bytes = 65536
fetch.wait.max.ms = 10
"#,
    );
    let path = dir.path().join("input.jsonl");
    let lines: Vec<String> = (0..RECORDS)
        .map(|i| {
            format!(
                r#"{{"key": "{}{}", "value": "v", "timestamp": {}}}"#,
                "k".repeat(200),
                i % 10,
                1000 + i
            )
        })
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();

    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let kafka = EmbeddedKafka::start(1).unwrap();
        let brokers = kafka.bootstrap_servers();
        let topology = Arc::new(Topology::load(&pipeline).unwrap());
        let plugins = sluice::Plugins::none(&topology);
        let printed = Arc::new(Mutex::new(0_i64));
        let dropped = Arc::new(Mutex::new(None::<i64>));
        let print = {
            let (printed, dropped) = (Arc::clone(&printed), Arc::clone(&dropped));
            move |_: &Printed| {
                let mut printed = printed.lock().unwrap();
                if *printed == 0 {
                    *dropped.lock().unwrap() = Some(hold_until_produced(&brokers, outputs));
                }
                *printed += 1;
            }
        };
        let result = sluice::dev::run_on(
            &kafka,
            topology,
            plugins,
            &path,
            DevOptions::default(),
            print,
        );
        let printed = *printed.lock().unwrap();
        let dropped = *dropped.lock().unwrap();
        let _ = done.send((result.map(|s| s.counts.records_out), printed, dropped));
    });
    let (result, printed, dropped) = ended
        .recv_timeout(Duration::from_secs(120))
        .expect("sluice dev did not end within 120 s: a hang");
    let Some(dropped) = dropped else {
        panic!("nothing printed, so the printer was never held: {result:?}");
    };
    eprintln!(
        "printed {printed} of {outputs} outputs; the broker had dropped the first {dropped}: {result:?}"
    );
    assert!(
        dropped > 1_000,
        "the broker dropped only the first {dropped} outputs: too few for the test"
    );
    match result {
        Err(e) => {
            let text = format!("{e:#}");
            assert!(
                text.contains("the embedded broker dropped outputs before they were printed"),
                "{text}"
            );
            assert!(
                text.contains(&format!("{printed} printed so far")),
                "{text}"
            );
            assert!(printed < dropped, "{printed} printed, {dropped} dropped");
        }
        Ok(out) => {
            panic!("a success with {out} outputs, {printed} printed: {dropped} were dropped")
        }
    }
}

/// Holds the printer until the `out` topic of the broker at `brokers`
/// has `outputs` records; returns its low watermark then (what the
/// broker has dropped).
fn hold_until_produced(brokers: &str, outputs: i64) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok((low, high)) = c.fetch_watermarks("out", 0, Duration::from_secs(5))
            && (high >= outputs || std::time::Instant::now() > deadline)
        {
            return low;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A sample of 200,000 lines through a pipeline that passes its source
/// to its sink: `sluice dev` prints every output and its summary (or, if
/// the embedded broker dropped outputs before they were printed, says
/// so); it never hangs. (Its outputs, some 3 MB over four partitions,
/// fit in what the broker keeps: it passed before the watcher's fix too;
/// the test above is the one that hung then.)
#[test]
fn dev_prints_every_output_of_a_large_sample() {
    const LINES: usize = 200_000;
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    support::write_pipeline(
        dir.path(),
        r#"
application.id = "large-sample"
[sources.events]
partitions = 4
[sinks.out]
inputs = ["events"]
"#,
    );
    let lines: Vec<String> = (0..LINES).map(|i| format!("v{i}")).collect();
    std::fs::write(dir.path().join("input.jsonl"), lines.join("\n")).unwrap();
    let ended = support::sluice_within(
        dir.path(),
        tmp.path(),
        &["dev", "pipeline.toml", "--input", "input.jsonl"],
        Duration::from_secs(180),
    );
    eprintln!("sluice dev of {LINES} lines: {:?}", ended.took);
    if !ended.status.success() {
        ended.failed_saying(&[
            "the embedded broker dropped outputs before they were printed",
            "printed so far",
        ]);
        return;
    }
    let printed = ended
        .stdout
        .lines()
        .filter(|l| l.starts_with("out["))
        .count();
    assert_eq!(printed, LINES, "every output printed");
    let summary = ended.stdout.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!("in {LINES} · out {LINES} · ")),
        "{summary}"
    );
}
