//! Hostile plugins, deployed into a running `sluice serve` next to a
//! well-behaved tenant.
//!
//! Tenant `ops` (from the tenants file) runs a tagging pipeline over a
//! numbered stream throughout. Tenant `evil` (created through the admin
//! API) deploys, one after another, a plugin that loops forever, one that
//! allocates towards 4 GiB, one that traps on every 10th record, one that
//! reads another tenant's store, and one that floods its output. For each:
//! the dead letters carry the reason, the pipeline is quarantined (as the
//! status API shows), and `ops`' output is exact. Components importing
//! WASI, and pipelines straying outside the tenant's prefixes, are refused
//! at deploy. A plugin logging too much has its lines dropped and counted.
//! A tenant over its instance quota fails alone. (`ops`' throughput during
//! each attack is measured by `cargo bench -p sluice --bench tenants`.)

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sluice::kafka::embedded::EmbeddedKafka;

use crate::hot_swap::component;
use crate::serve::{cli, free_port, get_text, spawn_serve, wasi_component};
use crate::support::{self, SluiceRun};

/// Records `ops` gets with each attack, worked through while it runs.
/// (The embedded broker keeps about 170,000 records of a partition; the
/// phases stay below.)
const BACKLOG: usize = 20_000;

/// One attack: what the hostile plugin is fed, and what the dead letter
/// must say.
struct Attack {
    name: &'static str,
    /// The value of every 10th record (the rest are plain).
    marker: &'static str,
    /// Words every dead letter's reason contains.
    reason: &'static str,
}

const ATTACKS: [Attack; 5] = [
    Attack {
        name: "loop",
        marker: "SPIN",
        reason: "deadline: the call ran past its deadline of 200 ms",
    },
    Attack {
        name: "allocate",
        marker: "GRAB",
        reason: "memory: the instance reached its memory cap of 64 MiB",
    },
    Attack {
        name: "trap",
        marker: "TRAP",
        reason: "wasm `unreachable` instruction executed",
    },
    Attack {
        name: "peek",
        marker: "PEEK",
        reason: "sandbox: store `ops.counts` is not declared by this step",
    },
    Attack {
        name: "flood",
        marker: "FLOOD",
        reason: "over its cap of 262144 bytes",
    },
];

type Rec = (Option<String>, Vec<u8>, i64);

/// Values `from..to` of the well-behaved stream.
fn ops_records(from: usize, to: usize) -> Vec<Rec> {
    (from..to)
        .map(|i| {
            (
                Some(format!("k{}", i % 7)),
                format!("ops-{i}").into_bytes(),
                1,
            )
        })
        .collect()
}

/// 30 records, every 10th carrying `marker` (offsets 9, 19, 29).
fn hostile_records(marker: &str) -> Vec<Rec> {
    (0..30)
        .map(|i| {
            let v = if i % 10 == 9 {
                marker.to_owned()
            } else {
                format!("plain-{i}")
            };
            (Some("k1".to_owned()), v.into_bytes(), 1)
        })
        .collect()
}

/// A one-step pipeline of `app`: `<app>-in` through `plugin` to `sink`.
fn pipeline(dir: &Path, app: &str, plugin: &Path, sink: &str, extra: &str) -> PathBuf {
    let dir = dir.join(app);
    std::fs::create_dir_all(&dir).unwrap();
    support::write_pipeline(
        &dir,
        &format!(
            "application.id = \"{app}\"\n[processing]\ncommit.interval.ms = 100\n{extra}\n[sources.events]\ntopic = \"{app}-in\"\n[steps.work]\nplugin = \"{}\"\ninputs = [\"events\"]\n[sinks.out]\ntopic = \"{sink}\"\ninputs = [\"work\"]\n",
            plugin.display()
        ),
    )
}

struct Host {
    admin: String,
    run: SluiceRun,
}

/// A pipeline's status from the admin API at `admin`.
fn status(admin: &str, name: &str) -> Value {
    cli(admin, &["status", name]).unwrap()
}

fn records_in(admin: &str, name: &str) -> u64 {
    status(admin, name)["records_in"].as_u64().unwrap()
}

impl Host {
    fn deploy(&self, file: &Path, tenant: &str) -> Result<Value, String> {
        cli(
            &self.admin,
            &["deploy", file.to_str().unwrap(), "--tenant", tenant],
        )
    }

    /// Waits until `done`, and until `ops` has processed `target`
    /// records; fails if the host exits.
    fn wait_for(&mut self, ops: &str, target: u64, done: impl Fn(&str) -> bool) {
        let admin = self.admin.clone();
        support::wait_until("the attack's end", &mut [&mut self.run], || {
            done(&admin) && records_in(&admin, ops) >= target
        });
    }
}

#[test]
fn hostile_plugins_are_contained_while_a_well_behaved_tenant_runs_on() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let dir = tempfile::tempdir().unwrap();
    let u = support::unique("h");
    let ops = format!("ops.{u}");
    let evil = |name: &str| format!("evil.{u}.{name}");
    let dead_letters = format!("evil.{u}.dead-letters");
    let mut topics = vec![
        format!("{ops}-in"),
        format!("{ops}-out"),
        dead_letters.clone(),
    ];
    for a in ATTACKS.iter().map(|a| a.name).chain(["logs"]) {
        topics.extend([format!("{}-in", evil(a)), format!("{}-out", evil(a))]);
    }
    for t in &topics {
        kafka.create_topic(t, 1).unwrap();
    }
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(&tenants, "[tenants.ops]\ntopics = [\"ops.\"]\n").unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let run = spawn_serve(
        dir.path(),
        &brokers,
        &admin,
        &["--tenants", tenants.to_str().unwrap()],
    );
    let mut host = Host { admin, run };
    support::wait_until("the admin API to answer", &mut [&mut host.run], || {
        cli(&host.admin, &["status"]).is_ok()
    });

    // The hostile tenant is created through the API, with tight limits.
    let created = cli(
        &host.admin,
        &[
            "tenant",
            "create",
            "evil",
            "--topics",
            "evil.",
            "--dlq-topic",
            &dead_letters,
            "--state-dir",
            dir.path().join("evil-state").to_str().unwrap(),
            "--plugin-deadline-ms",
            "200",
            "--plugin-output-kb",
            "256",
            "--log-lines-per-second",
            "20",
            "--quarantine-after-traps",
            "3",
        ],
    )
    .unwrap();
    assert_eq!(
        created["settings"]["plugin-memory-mb"], 64,
        "a safe default"
    );
    let again = cli(
        &host.admin,
        &["tenant", "create", "evil", "--topics", "evil."],
    )
    .unwrap_err();
    assert!(
        again.contains("exists already") && again.contains("409"),
        "{again}"
    );

    let ops_file = pipeline(
        dir.path(),
        &ops,
        &component("tag-v1"),
        &format!("{ops}-out"),
        "",
    );
    let e = cli(&host.admin, &["deploy", ops_file.to_str().unwrap()]).unwrap_err();
    assert!(e.contains("name the pipeline's"), "{e}");
    let e = host.deploy(&ops_file, "evil").unwrap_err();
    assert!(
        e.contains(&format!("`{ops}`")) && e.contains("`evil.`"),
        "{e}"
    );
    assert_eq!(host.deploy(&ops_file, "ops").unwrap()["tenant"], "ops");

    // Refused at deploy: WASI imports, named; a sink, a dead-letter topic
    // or an `application.id` outside the tenant's prefixes, named.
    let wasi = wasi_component(dir.path());
    let hostile = component("hostile");
    let sink = format!("{}-out", evil("loop"));
    let refusals = [
        (
            pipeline(dir.path(), &evil("wasi"), &wasi, &sink, ""),
            vec![
                "wasi:filesystem/types@0.2.0".to_owned(),
                "wasi:sockets/tcp@0.2.0".to_owned(),
            ],
        ),
        (
            pipeline(
                dir.path(),
                &evil("sink"),
                &hostile,
                &format!("{ops}-out"),
                "",
            ),
            vec![format!("output topic `{ops}-out`")],
        ),
        (
            pipeline(
                dir.path(),
                &evil("dlq"),
                &hostile,
                &sink,
                "[errors]\ndlq-topic = \"ops.dead\"",
            ),
            vec!["output topic `ops.dead`".to_owned()],
        ),
    ];
    for (file, named) in refusals {
        let e = host.deploy(&file, "evil").unwrap_err();
        assert!(e.contains("400"), "{e}");
        for n in named {
            assert!(e.contains(&n), "{n} in {e}");
        }
    }
    let stray = dir.path().join("stray");
    std::fs::create_dir_all(&stray).unwrap();
    let stray = support::write_pipeline(
        &stray,
        &std::fs::read_to_string(pipeline(dir.path(), &evil("x"), &hostile, &sink, ""))
            .unwrap()
            .replace(
                &format!("application.id = \"{}\"", evil("x")),
                "application.id = \"ops.stolen\"",
            ),
    );
    let e = host.deploy(&stray, "evil").unwrap_err();
    assert!(
        e.contains("`application.id`") && e.contains("`ops.stolen`"),
        "{e}"
    );

    // With each attack, `ops` gets a backlog to work through.
    let mut sent = 0;
    let mut phase = |host: &mut Host, attack: &Attack| {
        support::produce(
            &brokers,
            &format!("{ops}-in"),
            &ops_records(sent, sent + BACKLOG),
        );
        sent += BACKLOG;
        let name = evil(attack.name);
        support::produce(
            &brokers,
            &format!("{name}-in"),
            &hostile_records(attack.marker),
        );
        host.wait_for(&ops, sent as u64, |admin| {
            status(admin, &name)["state"] == "quarantined"
        });
    };

    for attack in &ATTACKS {
        let name = evil(attack.name);
        let file = pipeline(dir.path(), &name, &hostile, &format!("{name}-out"), "");
        assert_eq!(host.deploy(&file, "evil").unwrap()["tenant"], "evil");
        phase(&mut host, attack);

        // Quarantined, and shown so.
        let shown = status(&host.admin, &name);
        assert_eq!(shown["state"], "quarantined", "{shown}");
        assert!(
            shown["last_error"]
                .as_str()
                .unwrap()
                .contains("quarantine.after.traps = 3"),
            "{shown}"
        );
        assert_eq!(shown["trapped"], 3, "{shown}");
        // Each marked record is dead-lettered in the tenant's topic, with
        // the reason, its origin and the plugin's digest.
        let digest = shown["steps"][0]["digest"].as_str().unwrap().to_owned();
        let letters: Vec<_> = support::read_all(&brokers, &dead_letters, 1)
            .into_iter()
            .filter(|r| r.header("sluice.topic") == Some(&format!("{name}-in")))
            .collect();
        assert_eq!(letters.len(), 3, "{}", attack.name);
        for (letter, offset) in letters.iter().zip([9, 19, 29]) {
            assert_eq!(letter.value.as_deref(), Some(attack.marker.as_bytes()));
            assert_eq!(letter.header("sluice.error.kind"), Some("trap"));
            let why = letter.header("sluice.error").unwrap();
            assert!(why.contains(attack.reason), "{}: {why}", attack.name);
            assert_eq!(
                letter.header("sluice.offset"),
                Some(offset.to_string().as_str())
            );
            assert_eq!(letter.header("sluice.partition"), Some("0"));
            assert_eq!(letter.header("sluice.plugin.digest"), Some(digest.as_str()));
        }
        // Its plain records went through.
        let out: Vec<Vec<u8>> = support::read_all(&brokers, &format!("{name}-out"), 1)
            .into_iter()
            .map(|r| r.value.unwrap())
            .collect();
        let plain: Vec<Vec<u8>> = (0..30)
            .filter(|i| i % 10 != 9)
            .map(|i| format!("plain-{i}").into_bytes())
            .collect();
        assert_eq!(out, plain, "{}", attack.name);
        assert_eq!(status(&host.admin, &ops)["state"], "running");
        cli(&host.admin, &["remove", &name]).unwrap();
    }

    // A plugin logging 100 lines per record, 10 records: its tenant's 20
    // lines a second let some through; every other line is dropped and
    // counted, and nothing else is lost.
    let name = evil("logs");
    let file = pipeline(dir.path(), &name, &hostile, &format!("{name}-out"), "");
    host.deploy(&file, "evil").unwrap();
    let noisy: Vec<Rec> = (0..10).map(|_| (None, b"LOG".to_vec(), 1)).collect();
    support::produce(&brokers, &format!("{name}-in"), &noisy);
    let admin = host.admin.clone();
    support::wait_until("the noisy records", &mut [&mut host.run], || {
        records_in(&admin, &name) == 10
    });
    let shown = host.run.log().matches("hostile log line").count() as u64;
    let tenant = cli(&host.admin, &["tenant", "show", "evil"]).unwrap();
    let dropped = tenant["dropped_log_lines"].as_u64().unwrap();
    assert_eq!(shown + dropped, 1_000, "{tenant}");
    assert!(
        dropped >= 900,
        "{dropped} dropped of 1000 lines at 20 a second"
    );
    let metrics = get_text(&host.admin, "/metrics");
    assert!(
        metrics.contains(&format!(
            "sluice_tenant_log_lines_dropped_total{{tenant=\"evil\"}} {dropped}"
        )),
        "{metrics}"
    );
    assert_eq!(tenant["pipelines"], json!([name]));

    // A tenant allowed one plugin instance runs a pipeline needing two
    // (two partitions, one task each): the second is refused, and that
    // pipeline fails with the quota named.
    cli(
        &host.admin,
        &[
            "tenant",
            "create",
            "tight",
            "--topics",
            "tight.",
            "--max-instances",
            "1",
        ],
    )
    .unwrap();
    let tight = format!("tight.{u}");
    for t in [format!("{tight}-in"), format!("{tight}-out")] {
        kafka.create_topic(&t, 2).unwrap();
    }
    let file = pipeline(
        dir.path(),
        &tight,
        &component("tag-v1"),
        &format!("{tight}-out"),
        "",
    );
    host.deploy(&file, "tight").unwrap();
    for partition in 0..2 {
        support::produce_on(
            &brokers,
            &format!("{tight}-in"),
            Some(partition),
            &[(None, b"x".to_vec(), 1)],
        );
    }
    support::wait_until("the quota", &mut [&mut host.run], || {
        status(&admin, &tight)["state"] == "failed"
    });
    let failed = status(&admin, &tight);
    assert!(
        failed["last_error"]
            .as_str()
            .unwrap()
            .contains("tenant `tight` has 1 plugin instances alive, its quota (`max-instances`)"),
        "{failed}"
    );
    let shown = cli(&host.admin, &["tenant", "show", "tight"]).unwrap();
    assert_eq!(
        shown["live_instances"], 0,
        "given back when the pipeline ended"
    );

    // `ops`' output is complete, exact and in order, and the host is up.
    let total = sent as u64;
    support::wait_until("all of ops' records", &mut [&mut host.run], || {
        records_in(&admin, &ops) == total
    });
    assert_eq!(status(&admin, &ops)["state"], "running");
    // Stopped, the host flushes and commits what it processed.
    host.run.terminate();
    let out: Vec<Vec<u8>> = support::read_all(&brokers, &format!("{ops}-out"), 1)
        .into_iter()
        .map(|r| r.value.unwrap())
        .collect();
    let want: Vec<Vec<u8>> = ops_records(0, sent).into_iter().map(|r| r.1).collect();
    assert!(
        out == want,
        "ops' output differs from its input ({} of {} records, from {:?} to {:?})",
        out.len(),
        want.len(),
        out.first().map(|v| String::from_utf8_lossy(v).into_owned()),
        out.last().map(|v| String::from_utf8_lossy(v).into_owned())
    );
}
