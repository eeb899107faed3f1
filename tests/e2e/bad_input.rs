//! Bad input gets a clear error, through the `sluice` command line.

use std::path::Path;
use std::time::Duration;

use crate::support;

/// Runs `sluice` with `args`; kills it if it has not ended in two minutes
/// (a hang is a failure, not a wait).
fn sluice(args: &[&str]) -> support::Ended {
    let tmp = tempfile::tempdir().unwrap();
    support::sluice_within(Path::new("."), tmp.path(), args, Duration::from_secs(120))
}

fn fails_with(args: &[&str], expected: &[&str]) {
    let out = sluice(args);
    let stderr = &out.stderr;
    assert_eq!(
        out.status.code(),
        Some(1),
        "sluice {args:?} must fail; stderr:\n{stderr}"
    );
    for e in expected {
        assert!(
            stderr.contains(e),
            "expected {e:?} in the error of sluice {args:?}:\n{stderr}"
        );
    }
}

const GOOD: &str = r#"
application.id = "bad-input"
[sources.in]
[steps.s]
plugin = "PLUGIN"
inputs = ["in"]
[sinks.out]
inputs = ["s"]
"#;

fn pipeline(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn pipeline_file_errors_name_file_field_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let missing = pipeline(
        dir.path(),
        "missing.toml",
        &GOOD.replace("inputs = [\"in\"]\n", ""),
    );
    fails_with(
        &["topology", &missing],
        &["missing.toml", "missing field `inputs`", "line"],
    );
    let neither = pipeline(
        dir.path(),
        "neither.toml",
        &GOOD.replace("plugin = \"PLUGIN\"\n", ""),
    );
    fails_with(
        &["topology", &neither],
        &[
            "neither.toml",
            "[steps.s] needs `plugin = ",
            "`aggregate = ",
        ],
    );

    let unknown = pipeline(
        dir.path(),
        "unknown.toml",
        &GOOD.replace("[sinks.out]", "[sinks.out]\ntopik = \"x\""),
    );
    fails_with(
        &["topology", &unknown],
        &[
            "unknown.toml",
            "unknown field `topik`",
            "expected `topic` or `inputs`",
        ],
    );

    let wrong = pipeline(
        dir.path(),
        "wrong.toml",
        &GOOD.replace("inputs = [\"s\"]", "inputs = 5"),
    );
    fails_with(
        &["topology", &wrong],
        &[
            "wrong.toml",
            "inputs",
            "invalid type: integer `5`, expected a sequence",
        ],
    );

    let knob = pipeline(
        dir.path(),
        "knob.toml",
        &format!("{GOOD}\n[processing]\nmax.batch.records = \"many\"\n"),
    );
    fails_with(
        &["topology", &knob],
        &["knob.toml", "`max.batch.records` must be an integer from 1"],
    );

    fails_with(
        &["topology", "/nonexistent/p.toml"],
        &["cannot read pipeline file /nonexistent/p.toml"],
    );
}

#[test]
fn plugin_errors_name_the_plugin_and_the_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let run = |plugin: &str| {
        let p = pipeline(dir.path(), "p.toml", &GOOD.replace("PLUGIN", plugin));
        sluice(&[
            "run",
            &p,
            "--brokers",
            "127.0.0.1:1",
            "--connect-timeout",
            "1",
        ])
    };
    let check = |out: support::Ended, expected: &[&str]| {
        let stderr = out.stderr.clone();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        for e in expected {
            assert!(stderr.contains(e), "expected {e:?} in:\n{stderr}");
        }
    };
    check(
        run("nope.wasm"),
        &["plugin `s`", "nope.wasm does not exist"],
    );
    check(
        run("no-such-crate-dir"),
        &["plugin `s`", "no-such-crate-dir does not exist"],
    );

    std::fs::write(dir.path().join("text.wasm"), "hello").unwrap();
    check(
        run("text.wasm"),
        &[
            "plugin `s`",
            "is not a WebAssembly component",
            "magic bytes",
        ],
    );

    std::fs::write(
        dir.path().join("core.wasm"),
        wat::parse_str("(module)").unwrap(),
    )
    .unwrap();
    check(
        run("core.wasm"),
        &[
            "plugin `s`",
            "core WebAssembly module",
            "sluice plugin build",
        ],
    );

    let wasi = "(component (import \"wasi:filesystem/types@0.2.0\" (instance)) (import \"wasi:sockets/tcp@0.2.0\" (instance)))";
    std::fs::write(dir.path().join("wasi.wasm"), wat::parse_str(wasi).unwrap()).unwrap();
    check(
        run("wasi.wasm"),
        &[
            "plugin `s` imports wasi:filesystem/types@0.2.0, wasi:sockets/tcp@0.2.0",
            "allowed imports: sluice:plugin/log@0.1.0",
        ],
    );

    let export = |name: &str| {
        format!(
            r#"(component
                 (core module $m (func (export "f")))
                 (core instance $i (instantiate $m))
                 (func $f (canon lift (core func $i "f")))
                 (instance $x (export "f" (func $f)))
                 (export "{name}" (instance $x)))"#
        )
    };
    std::fs::write(
        dir.path().join("v2.wasm"),
        wat::parse_str(export("sluice:plugin/processor@0.2.0")).unwrap(),
    )
    .unwrap();
    check(
        run("v2.wasm"),
        &[
            "plugin `s` does not export `sluice:plugin/processor@0.1.0`",
            "exports `sluice:plugin/processor@0.2.0`",
        ],
    );
    std::fs::write(
        dir.path().join("other.wasm"),
        wat::parse_str(export("acme:other/thing@1.0.0")).unwrap(),
    )
    .unwrap();
    check(
        run("other.wasm"),
        &[
            "does not export `sluice:plugin/processor@0.1.0`",
            "`acme:other/thing@1.0.0`",
            "another world",
        ],
    );

    // Right name and version, wrong function types.
    std::fs::write(
        dir.path().join("shape.wasm"),
        wat::parse_str(export("sluice:plugin/processor@0.1.0")).unwrap(),
    )
    .unwrap();
    check(
        run("shape.wasm"),
        &["plugin `s` does not export `sluice:plugin/processor@0.1.0`"],
    );
}

#[test]
fn unreachable_broker_is_a_bounded_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let component = support::component("plugins/large-orders");
    let p = pipeline(
        dir.path(),
        "p.toml",
        &GOOD.replace("PLUGIN", component.to_str().unwrap()),
    );
    fails_with(
        &[
            "run",
            &p,
            "--brokers",
            "127.0.0.1:1",
            "--connect-timeout",
            "3",
        ],
        &["cannot reach Kafka at 127.0.0.1:1 after", "attempts"],
    );
}

#[test]
fn help_explains_every_subcommand() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["dev", "--help"],
        &["topology", "--help"],
        &["plugin", "build", "--help"],
        &["plugin", "inspect", "--help"],
    ] {
        let out = sluice(args);
        assert!(out.status.success());
        let text = out.stdout.as_str();
        assert!(
            text.len() > 200 && text.contains("Usage:"),
            "{args:?}:\n{text}"
        );
    }
    let top = sluice(&["--help"]).stdout;
    for sub in ["run", "dev", "topology", "plugin"] {
        assert!(top.contains(sub), "{top}");
    }
}

#[test]
fn dev_prints_filtered_orders_and_a_summary() {
    let repo = support::repo();
    support::component("plugins/large-orders");
    let out = sluice(&[
        "dev",
        repo.join("plugins/large-orders/pipeline.toml")
            .to_str()
            .unwrap(),
        "--input",
        repo.join("plugins/large-orders/orders.jsonl")
            .to_str()
            .unwrap(),
    ]);
    let stdout = out.stdout.as_str();
    assert!(out.status.success(), "{stdout}\n{}", out.stderr.as_str());
    let alerts: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("alerts["))
        .collect();
    let keys: Vec<&str> = alerts
        .iter()
        .map(|l| {
            l.split("key=")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(sorted, ["c-05", "c-17", "c-42", "c-42"], "{stdout}");
    assert!(
        !stdout.contains("o-1003") && !stdout.contains("o-1007"),
        "10000 and 9999.99 are not over 10000:\n{stdout}"
    );
    let dlq: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("large-orders-dlq["))
        .collect();
    assert_eq!(dlq.len(), 1, "{stdout}");
    assert!(dlq[0].contains("sluice.error.code=bad-json") && dlq[0].contains("key=o-1005"));
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.starts_with("in 8 · out 4 · rejected 1 · trapped 0 · dead letters 1"),
        "{summary}"
    );
}

/// An in-memory store that would outgrow the pipeline's `[state]
/// memory-mb` stops the run with a message naming the store and the
/// setting, instead of growing until the host runs out of memory: 2,000
/// distinct 10 KB keys (20 MB) counted with a budget of 16 MB.
#[test]
fn an_in_memory_store_past_the_pipelines_memory_budget_stops_the_run_clearly() {
    use sluice::kafka::embedded::EmbeddedKafka;
    use sluice::state::changelog;

    const PARTITIONS: i32 = 8;
    let kafka = EmbeddedKafka::start(1).unwrap();
    let brokers = kafka.bootstrap_servers();
    let app = support::unique("budget");
    let (source, out) = (format!("{app}-in"), format!("{app}-out"));
    for t in [&source, &out, &changelog::topic(&app, "counts")] {
        kafka.create_topic(t, PARTITIONS).unwrap();
    }
    let records: Vec<(Option<String>, Vec<u8>, i64)> = (0..2_000)
        .map(|i| (Some(format!("{i:0>10240}")), b"1".to_vec(), i))
        .collect();
    support::produce(&brokers, &source, &records);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = support::write_pipeline(
        dir.path(),
        &format!(
            r#"
application.id = "{app}"
[state]
store = "memory"
memory-mb = 16
[sources.in]
topic = "{source}"
[steps.count]
aggregate = "count"
store = "counts"
inputs = ["in"]
[sinks.out]
topic = "{out}"
inputs = ["count"]
"#
        ),
    );
    let mut run = support::SluiceRun::start(&pipeline, &brokers, dir.path().join("run.log"));
    let status = run.exit_within(Duration::from_secs(120), "stopped by itself");
    let log = run.log();
    assert_eq!(status.code(), Some(1), "{log}");
    for expected in [
        "store `counts` cannot take",
        "([state] memory-mb)",
        "use `store = \"rocksdb\"`",
    ] {
        assert!(log.contains(expected), "{expected:?} not in:\n{log}");
    }
}
