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
