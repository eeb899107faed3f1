//! `sluice serve` and its admin API, through the CLI subcommands that call
//! it: deploy, status, swap (refused, done, rolled back), pause, resume,
//! metrics and remove, on a running host.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sluice::kafka::embedded::EmbeddedKafka;

use crate::hot_swap::{SwapPipeline, component};
use crate::support::{self, SluiceRun};

/// Runs a CLI subcommand against the admin API at `admin`; returns its
/// JSON output, or its error text.
fn cli(admin: &str, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(support::sluice_bin())
        .args(args)
        .env("SLUICE_ADMIN", admin)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn free_port() -> u16 {
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
    let mut host = SluiceRun::spawn(
        &["serve", "--brokers", &brokers, "--admin", &admin],
        &[],
        dir.path().join("serve.log"),
    );
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
    let wasi = dir.path().join("wasi.wasm");
    std::fs::write(
        &wasi,
        wat::parse_str(
            "(component (import \"wasi:filesystem/types@0.2.0\" (instance)) (import \"wasi:sockets/tcp@0.2.0\" (instance)))",
        )
        .unwrap(),
    )
    .unwrap();
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
    assert_eq!(cli(&admin, &["resume", &app]).unwrap()["state"], "running");
    support::wait_until("150 records", &mut [&mut host], || processed(150));

    let metrics = ureq_get(&format!("http://{admin}/metrics"));
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

fn ureq_get(url: &str) -> String {
    sluice::admin::client::get_text(url).unwrap()
}

#[test]
fn a_tenants_pipelines_keep_to_its_topics_and_get_its_limits_next_to_another_tenant() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let (pay, ops) = (
        format!("pay.{}", support::unique("t")),
        format!("ops.{}", support::unique("t")),
    );
    let quarantined = format!("{pay}-q");
    for t in [
        format!("{pay}-in"),
        format!("{pay}-out"),
        format!("{pay}-dlq"),
        format!("{ops}-in"),
        format!("{ops}-out"),
        format!("{quarantined}-in"),
        format!("{quarantined}-out"),
        format!("{quarantined}-dlq"),
    ] {
        kafka.create_topic(&t, 1).unwrap();
    }
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(
        &tenants,
        format!(
            "[tenants.pay]\ntopics = [\"pay.\"]\nstate-dir = \"{}\"\nplugin-deadline-ms = 300\nquarantine-after-traps = 3\n\n[tenants.ops]\ntopics = [\"ops.\"]\n",
            dir.path().join("pay-state").display()
        ),
    )
    .unwrap();
    // `app` reads `app-in` and writes `app-out` through `plugin`; bad
    // records go to `app-dlq`.
    let pipeline = |file: &str, app: &str, plugin: &str, sink: &str| {
        let dir = dir.path().join(file);
        std::fs::create_dir_all(&dir).unwrap();
        support::write_pipeline(
            &dir,
            &format!(
                "application.id = \"{app}\"\n[processing]\ncommit.interval.ms = 100\n[errors]\ntrap = \"dlq\"\n[sources.events]\ntopic = \"{app}-in\"\n[steps.work]\nplugin = \"{}\"\ninputs = [\"events\"]\n[sinks.out]\ntopic = \"{sink}\"\ninputs = [\"work\"]\n",
                component(plugin).display()
            ),
        )
    };
    let hostile = pipeline("pay", &pay, "hostile", &format!("{pay}-out"));
    let straying = pipeline("stray", &pay, "hostile", "ops.elsewhere");
    let friendly = pipeline("ops", &ops, "tag-v1", &format!("{ops}-out"));

    let admin = format!("127.0.0.1:{}", free_port());
    let tenants_arg = tenants.to_str().unwrap();
    let mut host = SluiceRun::spawn(
        &[
            "serve",
            "--brokers",
            &brokers,
            "--admin",
            &admin,
            "--tenants",
            tenants_arg,
        ],
        &[],
        dir.path().join("serve.log"),
    );
    support::wait_until("the admin API to answer", &mut [&mut host], || {
        cli(&admin, &["status"]).is_ok()
    });
    let deploy = |file: &std::path::Path, tenant: Option<&str>| {
        let mut args = vec!["deploy", file.to_str().unwrap()];
        if let Some(t) = tenant {
            args.extend(["--tenant", t]);
        }
        cli(&admin, &args)
    };
    let e = deploy(&straying, Some("pay")).unwrap_err();
    assert!(
        e.contains("output topic `ops.elsewhere`") && e.contains("`pay.`") && e.contains("400"),
        "{e}"
    );
    let e = deploy(&friendly, None).unwrap_err();
    assert!(e.contains("name the pipeline's"), "{e}");
    let e = deploy(&friendly, Some("pay")).unwrap_err();
    assert!(e.contains(&format!("`{ops}`")), "{e}");
    assert_eq!(deploy(&hostile, Some("pay")).unwrap()["tenant"], "pay");
    assert_eq!(deploy(&friendly, Some("ops")).unwrap()["tenant"], "ops");

    let records = |n: usize, spin_at: Option<usize>| -> Vec<(Option<String>, Vec<u8>, i64)> {
        (0..n)
            .map(|i| {
                let v = if Some(i) == spin_at {
                    "SPIN".to_owned()
                } else {
                    format!("v{i}")
                };
                (Some("k".to_owned()), v.into_bytes(), 1)
            })
            .collect()
    };
    support::produce(&brokers, &format!("{pay}-in"), &records(20, Some(5)));
    support::produce(&brokers, &format!("{ops}-in"), &records(200, None));
    let done = |name: &str, n: u64| {
        cli(&admin, &["status", name])
            .ok()
            .is_some_and(|s| s["records_in"].as_u64() == Some(n))
    };
    support::wait_until("both tenants' input", &mut [&mut host], || {
        done(&pay, 20) && done(&ops, 200)
    });

    // The hostile tenant's looping record met its tenant's deadline (300
    // ms, tighter than the pipeline's default), alone.
    let dead = support::read_all(&brokers, &format!("{pay}-dlq"), 1);
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .header("sluice.error")
            .unwrap()
            .contains("deadline of 300 ms"),
        "{:?}",
        dead[0].header("sluice.error")
    );
    assert_eq!(
        support::read_all(&brokers, &format!("{pay}-out"), 1).len(),
        19
    );
    // The other tenant's output is complete and in order.
    let out: Vec<Vec<u8>> = support::read_all(&brokers, &format!("{ops}-out"), 1)
        .into_iter()
        .map(|r| r.value.unwrap())
        .collect();
    let want: Vec<Vec<u8>> = (0..200).map(|i| format!("v{i}").into_bytes()).collect();
    assert_eq!(out, want);

    // A plugin trapping on every 10th record: at its third trap within a
    // minute the pipeline is quarantined (paused, and shown so), while the
    // other tenant runs on; resumed by hand, it goes on.
    let trapping = pipeline(
        "q",
        &quarantined,
        "trap-on-marker",
        &format!("{quarantined}-out"),
    );
    deploy(&trapping, Some("pay")).unwrap();
    let marked = |from: usize| -> Vec<(Option<String>, Vec<u8>, i64)> {
        (from..from + 40)
            .map(|i| {
                let v = if i % 10 == 9 {
                    "TRAP".to_owned()
                } else {
                    format!("v{i}")
                };
                (Some("k".to_owned()), v.into_bytes(), 1)
            })
            .collect()
    };
    support::produce(&brokers, &format!("{quarantined}-in"), &marked(0));
    let state = |name: &str| cli(&admin, &["status", name]).unwrap();
    support::wait_until("the quarantine", &mut [&mut host], || {
        state(&quarantined)["state"] == "quarantined"
    });
    let status = state(&quarantined);
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("quarantine.after.traps = 3"),
        "{status}"
    );
    let held = status["records_in"].as_u64().unwrap();
    support::produce(&brokers, &format!("{quarantined}-in"), &marked(40));
    support::produce(&brokers, &format!("{ops}-in"), &records(50, None));
    support::wait_until("the other tenant's next records", &mut [&mut host], || {
        done(&ops, 250)
    });
    assert_eq!(
        state(&quarantined)["records_in"].as_u64(),
        Some(held),
        "a quarantined pipeline takes nothing"
    );
    assert_eq!(
        cli(&admin, &["resume", &quarantined]).unwrap()["state"],
        "running"
    );
    support::wait_until("the resumed pipeline's input", &mut [&mut host], || {
        done(&quarantined, 80)
    });
    host.terminate();
}
