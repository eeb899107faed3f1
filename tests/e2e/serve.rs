//! `sluice serve` and its admin API, through the CLI subcommands that call
//! it: deploy, status, swap (refused, done, rolled back), pause, resume
//! (kept across rebalances), metrics and remove, on a running host.
//! Tenants and hostile plugins: `hostile.rs`.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sluice::kafka::embedded::EmbeddedKafka;

use crate::hot_swap::{SwapPipeline, component};
use crate::support::{self, SluiceRun};

/// The operator's token of every test's `sluice serve`.
pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789abcdef";

/// `sluice serve`'s arguments for a test in `dir`, after `--brokers` and
/// `--admin`: its own data directory, and a token file holding
/// [`OPERATOR_TOKEN`].
pub fn serve_args(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let token = dir.join("operator.token");
    std::fs::write(&token, OPERATOR_TOKEN).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    vec![
        "--data-dir".into(),
        dir.join("data").display().to_string(),
        "--token-file".into(),
        token.display().to_string(),
    ]
}

/// Starts `sluice serve` on `brokers` with its admin API at `admin`, and
/// `extra` arguments, logging to `dir/serve.log`.
pub fn spawn_serve(dir: &std::path::Path, brokers: &str, admin: &str, extra: &[&str]) -> SluiceRun {
    let mut args: Vec<String> = ["serve", "--brokers", brokers, "--admin", admin]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    args.extend(serve_args(dir));
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    SluiceRun::spawn(&args, &[], dir.join("serve.log"))
}

/// Runs a CLI subcommand against the admin API at `admin`, as the
/// operator; returns its JSON output, or its error text.
pub fn cli(admin: &str, args: &[&str]) -> Result<Value, String> {
    cli_as(admin, OPERATOR_TOKEN, args)
}

/// [`cli`] with `token`.
pub fn cli_as(admin: &str, token: &str, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(support::sluice_bin())
        .args(args)
        .env("SLUICE_ADMIN", admin)
        .env("SLUICE_TOKEN", token)
        .env_remove("SLUICE_TOKEN_FILE")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A component importing WASI filesystem and socket interfaces, in `dir`.
pub fn wasi_component(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("wasi.wasm");
    std::fs::write(
        &path,
        wat::parse_str(
            "(component (import \"wasi:filesystem/types@0.2.0\" (instance)) (import \"wasi:sockets/tcp@0.2.0\" (instance)))",
        )
        .unwrap(),
    )
    .unwrap();
    path
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_host_deploys_swaps_pauses_and_removes_pipelines_through_its_admin_api() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let p = SwapPipeline::create(&kafka, dir.path(), "serve", 1, "");
    let (app, source, tagged, counted, pipeline) = (p.app, p.source, p.tagged, p.counted, p.file);
    let admin = format!("127.0.0.1:{}", free_port());
    let mut host = spawn_serve(dir.path(), &brokers, &admin, &[]);
    support::wait_until("the admin API to answer", &mut [&mut host], || {
        cli(&admin, &["status"]).is_ok()
    });

    let deployed = cli(&admin, &["deploy", pipeline.to_str().unwrap()]).unwrap();
    assert_eq!(deployed["name"], app.as_str());
    let again = cli(&admin, &["deploy", pipeline.to_str().unwrap()]).unwrap_err();
    assert!(
        again.contains("deployed already") && again.contains("409"),
        "{again}"
    );

    let event = |i: usize| (Some("k".to_owned()), i.to_string().into_bytes(), 1);
    let batch = |from: usize| (from..from + 50).map(event).collect::<Vec<_>>();
    let processed = |n: u64| {
        cli(&admin, &["status", &app])
            .ok()
            .is_some_and(|s| s["records_in"].as_u64() == Some(n))
    };
    support::produce(&brokers, &source, &batch(0));
    support::wait_until("50 records", &mut [&mut host], || processed(50));

    // A component of the wrong kind is refused; the old one runs on.
    let refused = cli(
        &admin,
        &["swap", &app, "tag", component("count-v2").to_str().unwrap()],
    )
    .unwrap_err();
    assert!(
        refused.contains("sluice:plugin/aggregator") && refused.contains("400"),
        "{refused}"
    );
    // So is a component importing WASI: the imports are named.
    let wasi = wasi_component(dir.path());
    let refused = cli(&admin, &["swap", &app, "tag", wasi.to_str().unwrap()]).unwrap_err();
    assert!(
        refused.contains("wasi:filesystem/types@0.2.0")
            && refused.contains("wasi:sockets/tcp@0.2.0"),
        "{refused}"
    );
    let swapped = cli(
        &admin,
        &["swap", &app, "tag", component("tag-v2").to_str().unwrap()],
    )
    .unwrap();
    assert_eq!(swapped["step"], "tag");
    assert_ne!(swapped["from"], swapped["to"]);
    support::produce(&brokers, &source, &batch(50));
    support::wait_until("100 records", &mut [&mut host], || processed(100));
    let rolled_back = cli(&admin, &["swap", &app, "tag", "--rollback"]).unwrap();
    assert_eq!(
        rolled_back["to"], swapped["from"],
        "back to the first version"
    );

    // Paused, it takes nothing; resumed, it goes on.
    let paused = cli(&admin, &["pause", &app]).unwrap();
    assert_eq!(paused["state"], "paused");
    support::produce(&brokers, &source, &batch(100));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        cli(&admin, &["status", &app]).unwrap()["records_in"],
        100,
        "nothing consumed while paused"
    );
    support::wait_until(
        "the lag to show the paused records",
        &mut [&mut host],
        || cli(&admin, &["status", &app]).unwrap()["lag"] == 50,
    );
    assert_eq!(cli(&admin, &["resume", &app]).unwrap()["state"], "running");
    support::wait_until("150 records", &mut [&mut host], || processed(150));
    support::wait_until("no lag", &mut [&mut host], || {
        cli(&admin, &["status", &app]).unwrap()["lag"] == 0
    });

    let metrics = get_text(&admin, "/metrics");
    assert!(
        metrics.contains(&format!(
            "sluice_records_in_total{{pipeline=\"{app}\"}} 150"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("sluice_swaps_total{{pipeline=\"{app}\"}} 2")),
        "{metrics}"
    );

    let removed = cli(&admin, &["remove", &app]).unwrap();
    assert_eq!(removed["state"], "stopped");
    let gone = cli(&admin, &["status", &app]).unwrap_err();
    assert!(gone.contains("404"), "{gone}");
    let log = host.terminate();
    assert!(log.contains("plugin swapped"), "{log}");

    // Each batch went through the version active then; the count went on.
    let versions: Vec<String> = support::read_all(&brokers, &tagged, 1)
        .iter()
        .map(|r| r.header("version").unwrap().to_owned())
        .collect();
    assert_eq!(versions.len(), 150);
    assert!(versions[..50].iter().all(|v| v == "v1"));
    assert!(versions[50..100].iter().all(|v| v == "v2"));
    assert!(versions[100..].iter().all(|v| v == "v1"));
    let counts = support::read_all(&brokers, &counted, 1);
    let last: Value =
        serde_json::from_slice(counts.last().unwrap().value.as_deref().unwrap()).unwrap();
    assert_eq!(last["count"], 150);
}

/// GETs `path` of the admin API at `admin` as text, as the operator.
pub fn get_text(admin: &str, path: &str) -> String {
    sluice::admin::client::Client::new(&format!("http://{admin}"), Some(OPERATOR_TOKEN.into()))
        .get_text(path)
        .unwrap()
}

#[test]
fn a_paused_pipeline_stays_paused_across_rebalances() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let p = SwapPipeline::create(
        &kafka,
        dir.path(),
        "kept",
        2,
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"",
    );
    // A second instance of the same pipeline, with its own state.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let other_file = support::write_pipeline(
        &other,
        &std::fs::read_to_string(&p.file).unwrap().replace(
            &dir.path().join("state").display().to_string(),
            &other.join("state").display().to_string(),
        ),
    );
    let admin = format!("127.0.0.1:{}", free_port());
    let mut host = spawn_serve(dir.path(), &brokers, &admin, &[]);
    support::wait_until("the admin API to answer", &mut [&mut host], || {
        cli(&admin, &["status"]).is_ok()
    });
    cli(&admin, &["deploy", p.file.to_str().unwrap()]).unwrap();
    let send = |from: usize| {
        for partition in 0..2 {
            let records: Vec<_> = (from..from + 10)
                .map(|i| (None, format!("p{partition}-{i}").into_bytes(), 1))
                .collect();
            support::produce_on(&brokers, &p.source, Some(partition), &records);
        }
    };
    let records_in = || cli(&admin, &["status", &p.app]).unwrap()["records_in"].as_u64();
    send(0);
    support::wait_until("20 records", &mut [&mut host], || records_in() == Some(20));
    assert_eq!(cli(&admin, &["pause", &p.app]).unwrap()["state"], "paused");

    // Another instance joins: the paused one keeps what it is given
    // paused, and the newcomer processes its own partition.
    let mut second = SluiceRun::start(&other_file, &brokers, dir.path().join("second.log"));
    let log = host.log.clone();
    let kept = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("kept paused")
            .count()
    };
    support::wait_until("the first rebalance", &mut [&mut host, &mut second], || {
        kept() >= 1
    });
    send(20);
    let tagged = || support::read_all(&brokers, &p.tagged, 2).len();
    support::wait_until(
        "the newcomer's records",
        &mut [&mut host, &mut second],
        || tagged() == 30,
    );
    assert_eq!(records_in(), Some(20), "the paused instance took nothing");

    // It leaves: the paused one gets both partitions, still paused.
    second.terminate();
    support::wait_until("the second rebalance", &mut [&mut host], || kept() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(records_in(), Some(20), "still nothing taken");
    assert_eq!(cli(&admin, &["status", &p.app]).unwrap()["state"], "paused");
    assert_eq!(
        cli(&admin, &["resume", &p.app]).unwrap()["state"],
        "running"
    );
    support::wait_until("the rest", &mut [&mut host], || records_in() == Some(30));
    host.terminate();

    // Every record once.
    let mut values: Vec<String> = support::read_all(&brokers, &p.tagged, 2)
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect();
    values.sort();
    let mut want: Vec<String> = (0..2)
        .flat_map(|partition| {
            (0..10)
                .chain(20..30)
                .map(move |i| format!("p{partition}-{i}"))
        })
        .collect();
    want.sort();
    assert_eq!(values, want);
}

/// A TCP listener that accepts connections and never answers: a Kafka
/// broker that hangs. Its connections close when it is dropped.
struct BlackHole {
    address: String,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl BlackHole {
    fn open() -> BlackHole {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut held = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => held.push(stream),
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
                held.len()
            })
        };
        BlackHole {
            address,
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let held = t.join().unwrap_or(0);
            eprintln!("the black hole held {held} connection(s)");
        }
    }
}

/// Sends a deploy request (`POST /pipelines`) that stays under way: its
/// headers and the start of its body, never the rest. Returns a thread
/// that reads the answer until the server closes the connection, with
/// when that was and what came back.
fn stalled_deploy(admin: &str) -> std::thread::JoinHandle<(std::time::Instant, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(admin).unwrap();
    let body = r#"{"pipeline": "application.id = \"never-sent\"\n"#;
    write!(
        stream,
        "POST /pipelines HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {OPERATOR_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len() + 1_000
    )
    .unwrap();
    stream.flush().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    std::thread::spawn(move || {
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        (
            std::time::Instant::now(),
            match read {
                Ok(_) => answer,
                Err(e) => format!("{answer}[{e}]"),
            },
        )
    })
}

/// `serve` stops on SIGTERM whatever its deploys are doing: here one
/// pipeline waits for brokers that accept connections and never answer
/// (with `--connect-timeout 300`, as an operator may set it), and another
/// deploy request is under way, its body half sent.
#[test]
fn serve_stops_on_sigterm_while_a_deploy_waits_on_a_kafka_that_never_answers() {
    let kafka = BlackHole::open();
    let dir = tempfile::tempdir().unwrap();
    let app = support::unique("hung");
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[sources.in]
topic = "{app}-in"
[steps.count]
aggregate = "count"
inputs = ["in"]
[sinks.out]
topic = "{app}-out"
inputs = ["count"]
[state]
dir = "{state}"
"#,
            state = dir.path().join("state").display()
        ),
    );
    let admin = format!("127.0.0.1:{}", free_port());
    let mut host = spawn_serve(
        dir.path(),
        &kafka.address,
        &admin,
        &["--connect-timeout", "300"],
    );
    support::wait_until("the admin API to answer", &mut [&mut host], || {
        cli(&admin, &["status"]).is_ok()
    });

    // A deploy starts the pipeline on a thread of its own and answers at
    // once: the request itself never waits on Kafka.
    let asked = std::time::Instant::now();
    let deployed = cli(&admin, &["deploy", pipeline.to_str().unwrap()]).unwrap();
    eprintln!(
        "deploy answered in {} ms: {}",
        asked.elapsed().as_millis(),
        deployed["state"]
    );
    assert_eq!(deployed["name"], app.as_str());
    // What waits is the pipeline: for the brokers' metadata.
    let log = host.log.clone();
    support::wait_until("the pipeline to wait for Kafka", &mut [&mut host], || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Kafka not reachable yet")
    });
    eprintln!(
        "the pipeline waits for Kafka {} ms after the deploy",
        asked.elapsed().as_millis()
    );
    assert_eq!(cli(&admin, &["status", &app]).unwrap()["state"], "running");
    let under_way = stalled_deploy(&admin);
    std::thread::sleep(Duration::from_millis(300));

    let bound = Duration::from_secs(30);
    let signalled = std::time::Instant::now();
    support::signal(host.child.id() as i32, "TERM");
    let status = loop {
        if let Some(status) = host.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < bound,
            "serve still running {} s after SIGTERM; log:\n{}",
            bound.as_secs(),
            host.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = signalled.elapsed();
    let log = host.log();
    eprintln!(
        "serve exited ({status}) {} ms after SIGTERM",
        took.as_millis()
    );
    for line in log
        .lines()
        .filter(|l| ["WARN", "ERROR", "stop"].iter().any(|s| l.contains(s)))
    {
        eprintln!("  serve: {line}");
    }
    assert!(status.success(), "a clean stop; log:\n{log}");
    assert!(
        log.contains("admin requests still under way"),
        "the request under way was given up after the grace:\n{log}"
    );
    assert!(
        log.contains("stopped cleanly"),
        "the waiting pipeline stopped cleanly, as asked:\n{log}"
    );
    // The request under way got an answer or a closed connection, not a
    // hang.
    let (closed, answer) = under_way.join().unwrap();
    eprintln!(
        "the deploy under way ended {} ms after SIGTERM: {answer:?}",
        closed.duration_since(signalled).as_millis()
    );
    assert!(
        closed.duration_since(signalled) < bound,
        "the deploy under way was left hanging"
    );
    assert!(
        !answer.starts_with("HTTP/1.1 200"),
        "a half-sent deploy was not deployed: {answer}"
    );
}

/// The names of process `pid`'s threads.
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .collect()
}

/// librdkafka's threads (`rdk:main`, `rdk:broker…`) and the stream
/// threads (`stream-…`) of process `pid`.
fn client_and_stream_threads(pid: u32) -> (usize, usize) {
    let names = thread_names(pid);
    let rdk = names.iter().filter(|n| n.starts_with("rdk:")).count();
    let stream = names.iter().filter(|n| n.starts_with("stream-")).count();
    (rdk, stream)
}

/// With `--park-after`, an idle pipeline parks: it commits and lets go of
/// its Kafka clients and stream threads. A record on its input wakes it,
/// and so does a swap; its count goes on from where it was, and every
/// record is processed once.
#[test]
fn an_idle_pipeline_parks_and_wakes_when_its_input_moves_or_a_request_names_it() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    // The embedded broker holds a group's rebalance until a member that
    // left times out: a short session keeps each wake to seconds.
    let kafka_table =
        "[kafka]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"";
    let p = SwapPipeline::create(&kafka, dir.path(), "park", 1, kafka_table);
    let (app, source, tagged, counted, pipeline) = (p.app, p.source, p.tagged, p.counted, p.file);
    let admin = format!("127.0.0.1:{}", free_port());
    let mut host = spawn_serve(dir.path(), &brokers, &admin, &["--park-after", "2"]);
    let pid = host.child.id();
    support::wait_until("the admin API to answer", &mut [&mut host], || {
        cli(&admin, &["status"]).is_ok()
    });
    cli(&admin, &["deploy", pipeline.to_str().unwrap()]).unwrap();
    let status = |field: &str| cli(&admin, &["status", &app]).unwrap()[field].clone();
    let event = |i: usize| (Some("k".to_owned()), i.to_string().into_bytes(), 1);
    let batch = |from: usize| (from..from + 50).map(event).collect::<Vec<_>>();

    support::produce(&brokers, &source, &batch(0));
    support::wait_until("50 records", &mut [&mut host], || {
        status("records_in") == 50
    });
    let (rdk_running, stream_running) = client_and_stream_threads(pid);
    assert!(stream_running >= 1, "{:?}", thread_names(pid));
    support::wait_until("the pipeline to park", &mut [&mut host], || {
        status("parked") == true
    });
    assert_eq!(status("state"), "running");
    let (rdk_parked, stream_parked) = client_and_stream_threads(pid);
    assert_eq!(stream_parked, 0, "{:?}", thread_names(pid));
    assert!(
        rdk_parked < rdk_running,
        "librdkafka threads running {rdk_running}, parked {rdk_parked}: {:?}",
        thread_names(pid)
    );
    let metrics = get_text(&admin, "/metrics");
    assert!(
        metrics.contains(&format!("sluice_pipeline_parked{{pipeline=\"{app}\"}} 1")),
        "{metrics}"
    );

    // A record wakes it; it parks again once idle.
    support::produce(&brokers, &source, &batch(50));
    support::wait_until("100 records", &mut [&mut host], || {
        status("records_in") == 100
    });
    support::wait_until("the pipeline to park again", &mut [&mut host], || {
        status("parked") == true
    });

    // A swap names it: it wakes to swap, and the next records go to v2.
    let swapped = cli(
        &admin,
        &["swap", &app, "tag", component("tag-v2").to_str().unwrap()],
    )
    .unwrap();
    assert_eq!(swapped["step"], "tag");
    assert_eq!(status("parked"), false);
    support::produce(&brokers, &source, &batch(100));
    support::wait_until("150 records", &mut [&mut host], || {
        status("records_in") == 150
    });
    let log = host.terminate();
    assert!(log.contains("parking"), "{log}");
    assert!(log.contains("input arrived: waking"), "{log}");

    // Every record once, through the version active then; the count
    // went on across the parks (its store was closed and reopened).
    let tagged = support::read_all(&brokers, &tagged, 1);
    let values: Vec<String> = (tagged.iter())
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let expected: Vec<String> = (0..150).map(|i| i.to_string()).collect();
    assert_eq!(values, expected);
    let versions: Vec<&str> = tagged
        .iter()
        .map(|r| r.header("version").unwrap())
        .collect();
    assert!(versions[..100].iter().all(|v| *v == "v1"), "{versions:?}");
    assert!(versions[100..].iter().all(|v| *v == "v2"), "{versions:?}");
    let counts = support::read_all(&brokers, &counted, 1);
    let last: Value =
        serde_json::from_slice(counts.last().unwrap().value.as_deref().unwrap()).unwrap();
    assert_eq!(last["count"], 150);
}

/// On a real broker: an exactly-once pipeline and one that reads its
/// (transactional) output both park once idle, though their input
/// partitions end with transaction markers; one record at the head wakes
/// both in turn, and every record reaches the end once.
#[test]
fn pipelines_chained_through_a_transactional_topic_park_and_wake_on_a_real_broker() {
    let Some(kafka) = support::RealKafka::start(19410) else {
        return;
    };
    let brokers = &kafka.brokers;
    let app = support::unique("park.real");
    let dir = tempfile::tempdir().unwrap();
    let (input, middle, output) = (
        format!("{app}-in"),
        format!("{app}-mid"),
        format!("{app}-out"),
    );
    support::create_topics(brokers, &[(&input, 2), (&middle, 2), (&output, 2)]);
    let write = |name: &str, from: &str, to: &str, guarantee: &str| {
        let file = dir.path().join(format!("{name}.toml"));
        let text = format!(
            r#"
application.id = "{app}-{name}"
[processing]
commit.interval.ms = 100
processing.guarantee = "{guarantee}"
[sources.events]
topic = "{from}"
[steps.tag]
plugin = "{tag}"
inputs = ["events"]
[sinks.out]
topic = "{to}"
inputs = ["tag"]
"#,
            tag = component("tag-v1").display(),
        );
        std::fs::write(&file, text).unwrap();
        file
    };
    let upstream = write("up", &input, &middle, "exactly-once");
    let downstream = write("down", &middle, &output, "at-least-once");
    let admin = format!("127.0.0.1:{}", free_port());
    let mut host = spawn_serve(dir.path(), brokers, &admin, &["--park-after", "2"]);
    support::wait_until("the admin API to answer", &mut [&mut host], || {
        cli(&admin, &["status"]).is_ok()
    });
    for file in [&upstream, &downstream] {
        cli(&admin, &["deploy", file.to_str().unwrap()]).unwrap();
    }
    let parked =
        |name: &str| cli(&admin, &["status", &format!("{app}-{name}")]).unwrap()["parked"] == true;
    let event = |i: usize| (Some(format!("k{}", i % 7)), i.to_string().into_bytes(), 1);
    support::produce(brokers, &input, &(0..100).map(event).collect::<Vec<_>>());
    support::wait_until("both pipelines to park", &mut [&mut host], || {
        parked("up") && parked("down")
    });
    let woken = std::time::Instant::now();
    support::produce(brokers, &input, &[event(100)]);
    let arrived = || {
        support::high_watermarks(brokers, &output, 2)
            .iter()
            .sum::<i64>()
            == 101
    };
    support::wait_until("the last record at the end", &mut [&mut host], arrived);
    eprintln!(
        "one record through two parked pipelines: {:.1} s",
        woken.elapsed().as_secs_f64()
    );
    support::wait_until("both pipelines to park again", &mut [&mut host], || {
        parked("up") && parked("down")
    });
    let log = host.terminate();
    assert!(log.contains("input arrived: waking"), "{log}");

    let mut values: Vec<i64> = support::read_all(brokers, &output, 2)
        .iter()
        .map(|r| {
            String::from_utf8_lossy(r.value.as_deref().unwrap())
                .parse()
                .unwrap()
        })
        .collect();
    values.sort_unstable();
    assert_eq!(values, (0..=100).collect::<Vec<i64>>());
}
