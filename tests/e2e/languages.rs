//! Plugins in every language: each example in `plugins/` that is not
//! Rust, and the mixed-language pipeline, run on the embedded broker
//! under the host's default sandbox limits, with the sample input its
//! directory holds; what comes out equals the `expected.jsonl` written by
//! hand beside it, record by record.
//!
//! An expected line is `{"topic", "key", "value", "headers"}`: records of
//! one topic and key must come out in the order listed (Kafka keeps the
//! order of a key); `value` is compared as JSON where it is JSON, as text
//! otherwise; `headers` lists the headers checked (others may be there).
//! Dead letters are in the same file, on the dead-letter topic, so every
//! example shows its rejected records reaching the `rejected` policy.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sluice::dev::Printed;
use sluice::toolchain::BuildOptions;
use sluice::topology::Topology;

use crate::support;

/// One record, as compared: its value (JSON or text) and the headers.
#[derive(Debug, Clone, PartialEq)]
struct Out {
    value: Value,
    headers: BTreeMap<String, String>,
}

/// (topic, key) → the records, in order.
type ByKey = BTreeMap<(String, String), Vec<Out>>;

/// `text` as JSON where it is JSON, else as a string; numbers as
/// floats, so that `100` (as JavaScript writes it) equals `100.0` (as
/// Rust and Python do).
fn json_or_text(text: &str) -> Value {
    fn floats(v: Value) -> Value {
        match v {
            Value::Number(n) => serde_json::json!(n.as_f64().expect("a JSON number is a float")),
            Value::Array(a) => Value::Array(a.into_iter().map(floats).collect()),
            Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, floats(v))).collect()),
            other => other,
        }
    }
    match serde_json::from_str(text) {
        Ok(v) => floats(v),
        Err(_) => Value::String(text.to_owned()),
    }
}

fn as_value(bytes: &Option<Vec<u8>>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => json_or_text(&String::from_utf8_lossy(b)),
    }
}

fn expected(path: &Path) -> ByKey {
    let mut by_key = ByKey::new();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1));
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        // A string value that is itself JSON compares as that JSON.
        let value = match &v["value"] {
            Value::String(s) => json_or_text(s),
            other => json_or_text(&other.to_string()),
        };
        let headers = v["headers"]
            .as_object()
            .map(|h| h.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default();
        by_key
            .entry((text(&v["topic"]), text(&v["key"])))
            .or_default()
            .push(Out { value, headers });
    }
    by_key
}

/// Runs `pipeline.toml` in `dir` on `input` as `sluice dev` does, and
/// returns every output and dead letter, keeping only the headers that
/// `want` checks for the same (topic, key).
fn run(dir: &Path, input: &str, want: &ByKey) -> ByKey {
    let topology = Topology::load(&dir.join("pipeline.toml")).expect("pipeline");
    let plugins = sluice::load_plugins(
        &sluice::plugin::engine(),
        &topology,
        &BuildOptions {
            quiet: true,
            ..BuildOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("loading the plugins of {}: {e}", dir.display()));
    let printed: Arc<Mutex<Vec<Printed>>> = Arc::default();
    let sink = Arc::clone(&printed);
    sluice::dev::run(
        Arc::new(topology),
        plugins,
        &dir.join(input),
        sluice::dev::DevOptions::default(),
        move |p| sink.lock().unwrap().push(p.clone()),
    )
    .expect("the pipeline runs to the end of its input");
    let mut printed = std::mem::take(&mut *printed.lock().unwrap());
    printed.sort_by_key(|p| (p.topic.clone(), p.partition, p.offset));
    let mut got = ByKey::new();
    for p in printed {
        let key = String::from_utf8_lossy(p.key.as_deref().unwrap_or(b"null")).into_owned();
        let checked: Vec<&String> = want
            .get(&(p.topic.clone(), key.clone()))
            .map(|outs| outs.iter().flat_map(|o| o.headers.keys()).collect())
            .unwrap_or_default();
        let headers = p
            .headers
            .iter()
            .filter(|(name, _)| checked.contains(&name))
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        got.entry((p.topic, key)).or_default().push(Out {
            value: as_value(&p.value),
            headers,
        });
    }
    got
}

/// Runs the pipeline in `dir` on `input`; its output must be `want`.
fn gives(dir: &Path, input: &str, want: &ByKey) {
    let got = run(dir, input, want);
    for (topic, key) in want.keys().chain(got.keys()) {
        assert_eq!(
            got.get(&(topic.clone(), key.clone())),
            want.get(&(topic.clone(), key.clone())),
            "{}: topic {topic}, key {key}",
            dir.display()
        );
    }
}

fn example_gives_its_expected_output(example: &str, input: &str) {
    let dir = support::repo().join("plugins").join(example);
    let want = expected(&dir.join("expected.jsonl"));
    assert!(
        want.keys().any(|(topic, _)| topic.ends_with("-dlq")),
        "{example}: the expected output shows a rejected record"
    );
    gives(&dir, input, &want);
}

#[test]
fn redact_in_typescript() {
    example_gives_its_expected_output("redact-ts", "payments.jsonl");
}

#[test]
fn large_orders_in_python() {
    example_gives_its_expected_output("large-orders-py", "orders.jsonl");
}

/// Hopping windows with an aggregator in TypeScript: the same output as
/// `plugins/page-views`, its Rust twin, on the same input.
#[test]
fn page_views_in_typescript() {
    example_gives_its_expected_output("page-views-ts", "views.jsonl");
}

/// Session windows with an aggregator in C, whose `merge` joins two
/// stored sessions that a late purchase bridges (call batches of one
/// record, so the sessions are stored before the bridge arrives).
#[test]
fn session_spend_in_c_merges_sessions() {
    let dir = support::repo().join("tests/plugins/sessions-c");
    gives(
        &dir,
        "purchases.jsonl",
        &expected(&dir.join("expected.jsonl")),
    );
}

#[test]
fn checksum_in_c() {
    example_gives_its_expected_output("checksum-c", "cards.jsonl");
}

#[test]
fn polyglot_python_javascript_c_and_rust_in_one_pipeline() {
    example_gives_its_expected_output("polyglot", "payments.jsonl");
}

/// `sluice plugin new --lang <lang> --kind <kind> <dir>`, which must succeed.
fn new_plugin(lang: &str, kind: &str, dir: &Path) {
    let out = std::process::Command::new(support::sluice_bin())
        .args(["plugin", "new", "--lang", lang, "--kind", kind])
        .arg(dir)
        .output()
        .expect("sluice plugin new");
    assert!(
        out.status.success(),
        "{lang} {kind}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sluice plugin new` in every language gives a plugin that builds and
/// runs on its sample at once: values upper-cased, the record without a
/// value rejected to the dead-letter topic, as the same template in Rust.
#[test]
fn a_new_plugin_in_every_language_runs_its_sample() {
    let root = tempfile::tempdir().unwrap();
    for lang in ["rust", "js", "ts", "python", "c"] {
        let dir = root.path().join(lang).join("shout");
        new_plugin(lang, "processor", &dir);
        let line = |topic: &str, key: &str, value: &str, headers: &str| {
            format!(
                r#"{{"topic": "{topic}", "key": "{key}", "value": "{value}", "headers": {{{headers}}}}}"#
            )
        };
        let want_file = root.path().join(lang).join("expected.jsonl");
        std::fs::write(
            &want_file,
            [
                line("shout-out", "a", "HELLO", ""),
                line("shout-out", "a", "WORLD", ""),
                line(
                    "shout-dlq",
                    "b",
                    "",
                    r#""sluice.error.kind": "rejected", "sluice.error.code": "empty""#,
                ),
            ]
            .join("\n"),
        )
        .unwrap();
        gives(&dir, "sample.jsonl", &expected(&want_file));
    }
}

/// `sluice plugin new --kind aggregator` in every language gives an
/// aggregator that builds and runs on its sample at once, with the same
/// results everywhere: per key, the count and the total of `amount`; the
/// record without a numeric `amount` rejected to the dead-letter topic.
#[test]
fn a_new_aggregator_in_every_language_runs_its_sample() {
    let root = tempfile::tempdir().unwrap();
    let want_file = root.path().join("expected.jsonl");
    std::fs::write(
        &want_file,
        [
            r#"{"topic": "sums-out", "key": "a", "value": {"count": 1, "total": 12.5}}"#,
            r#"{"topic": "sums-out", "key": "a", "value": {"count": 2, "total": 20}}"#,
            r#"{"topic": "sums-out", "key": "b", "value": {"count": 1, "total": 3}}"#,
            r#"{"topic": "sums-out", "key": "b", "value": {"count": 2, "total": 4}}"#,
            r#"{"topic": "sums-dlq", "key": "b", "value": "not json", "headers": {"sluice.error.kind": "rejected", "sluice.error.code": "bad-amount"}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let want = expected(&want_file);
    for lang in ["rust", "js", "ts", "python", "c"] {
        let dir = root.path().join(lang).join("sums");
        new_plugin(lang, "aggregator", &dir);
        gives(&dir, "sample.jsonl", &want);
    }
}

/// `sluice plugin new --kind joiner` (Rust) gives a value joiner whose
/// pipeline (a left join of orders with a customers table) runs its sample
/// at once: an order with its customer's name, one with none, and one that
/// is not JSON rejected to the dead-letter topic.
#[test]
fn a_new_joiner_runs_its_sample() {
    let root = tempfile::tempdir().unwrap();
    let want_file = root.path().join("expected.jsonl");
    std::fs::write(
        &want_file,
        [
            r#"{"topic": "enrich-out", "key": "c1", "value": {"item": "pen", "customer": "Ada"}}"#,
            r#"{"topic": "enrich-out", "key": "c3", "value": {"item": "ink", "customer": null}}"#,
            r#"{"topic": "enrich-dlq", "key": "c2", "value": "not json", "headers": {"sluice.error.kind": "rejected", "sluice.error.code": "bad-json"}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let dir = root.path().join("enrich");
    new_plugin("rust", "joiner", &dir);
    gives(&dir, "sample.jsonl", &expected(&want_file));
}

/// Every template comes with tests that `sluice plugin test` runs without
/// a broker; they pass as written, and fail once the plugin's logic is
/// broken (so they test something).
#[test]
fn every_template_passes_its_own_tests_and_they_can_fail() {
    // (language, kind, file, what the logic says, a broken version).
    let cases = [
        (
            "rust",
            "processor",
            "src/lib.rs",
            "to_uppercase()",
            "to_lowercase()",
        ),
        (
            "rust",
            "aggregator",
            "src/lib.rs",
            "count: totals.count + 1",
            "count: totals.count + 2",
        ),
        (
            "rust",
            "joiner",
            "src/lib.rs",
            "customer: customer.map(|c| c.name),",
            "customer: None,",
        ),
        (
            "rust",
            "extractor",
            "src/lib.rs",
            ".as_i64()",
            ".as_i64().map(|t| t + 1)",
        ),
        (
            "js",
            "processor",
            "src/index.js",
            "toUpperCase()",
            "toLowerCase()",
        ),
        ("js", "aggregator", "src/index.js", "count + 1", "count + 2"),
        (
            "ts",
            "processor",
            "src/index.ts",
            "toUpperCase()",
            "toLowerCase()",
        ),
        ("ts", "aggregator", "src/index.ts", "count + 1", "count + 2"),
        ("python", "processor", "app.py", ".upper()", ".lower()"),
        (
            "python",
            "aggregator",
            "app.py",
            "totals[\"count\"] += 1",
            "totals[\"count\"] += 2",
        ),
        ("c", "processor", "plugin.c", "toupper", "tolower"),
        ("c", "aggregator", "plugin.c", "+ 1", "+ 2"),
    ];
    let root = tempfile::tempdir().unwrap();
    let plugin_test = |dir: &Path| {
        std::process::Command::new(support::sluice_bin())
            .args(["plugin", "test"])
            .arg(dir)
            .env("RUST_LOG", "warn")
            .output()
            .expect("sluice plugin test")
    };
    for (lang, kind, file, logic, broken) in cases {
        let dir = root.path().join(format!("{lang}-{kind}")).join("tpl");
        new_plugin(lang, kind, &dir);
        let passed = plugin_test(&dir);
        assert!(
            passed.status.success(),
            "{lang} {kind}: its tests fail as written:\n{}",
            String::from_utf8_lossy(&passed.stderr)
        );
        let source = dir.join(file);
        let text = std::fs::read_to_string(&source).unwrap();
        assert!(
            text.contains(logic),
            "{lang} {kind}: {file} has no `{logic}`"
        );
        std::fs::write(&source, text.replacen(logic, broken, 1)).unwrap();
        let failed = plugin_test(&dir);
        assert!(
            !failed.status.success(),
            "{lang} {kind}: its tests still pass with `{broken}` for `{logic}`"
        );
    }
}

/// A Rust plugin made by a `sluice` binary that was copied elsewhere (as
/// an installed one is) names the SDK that binary carries, written out
/// under the guest target directory, not the checkout it was built in;
/// and it builds.
#[test]
fn a_rust_template_from_a_copied_binary_builds() {
    let bin_dir = tempfile::tempdir().unwrap();
    let copied = bin_dir.path().join("sluice");
    std::fs::copy(support::sluice_bin(), &copied).unwrap();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("copied");
    let out = std::process::Command::new(&copied)
        .args(["plugin", "new", "--lang", "rust", "--kind", "aggregator"])
        .arg(&dir)
        .current_dir(root.path())
        .output()
        .expect("sluice plugin new");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let repo = support::repo();
    assert!(
        !manifest.contains(repo.to_str().unwrap()),
        "names the checkout: {manifest}"
    );
    let doc: toml::Table = toml::from_str(&manifest).unwrap();
    let sdk = Path::new(doc["dependencies"]["sluice-sdk"]["path"].as_str().unwrap());
    assert!(
        sdk.starts_with(sluice::toolchain::guest_target_dir()),
        "{}",
        sdk.display()
    );
    let built = std::process::Command::new(&copied)
        .args(["plugin", "build"])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("sluice plugin build");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
}

/// A processor declared `key = "kept"` may feed an aggregation; an output
/// whose key differs from its input's fails that record as a trap (to the
/// dead-letter topic, with the reason), and the counts go on without it.
#[test]
fn a_step_that_promises_to_keep_keys_is_held_to_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let plugin = support::repo().join("tests/plugins/rekey-c");
    std::fs::write(
        dir.join("pipeline.toml"),
        format!(
            r#"
application.id = "kept"
[errors]
trap = "dlq"
[sources.in]
partitions = 2
[steps.pass]
plugin = "{}"
inputs = ["in"]
key = "kept"
[steps.count]
aggregate = "count"
inputs = ["pass"]
[sinks.counts]
inputs = ["count"]
"#,
            plugin.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("input.jsonl"),
        [
            r#"{"key": "a", "value": "1"}"#,
            r#"{"key": "b", "value": "REKEY"}"#,
            r#"{"key": "a", "value": "2"}"#,
            r#"{"key": "b", "value": "3"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("expected.jsonl"),
        [
            r#"{"topic": "counts", "key": "a", "value": "1"}"#,
            r#"{"topic": "counts", "key": "a", "value": "2"}"#,
            r#"{"topic": "counts", "key": "b", "value": "1"}"#,
            r#"{"topic": "kept-dlq", "key": "b", "value": "REKEY", "headers": {"sluice.error.kind": "trap", "sluice.error": "key: step `pass` declares key = \"kept\", but its plugin changed a key from `b` to `other`"}}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    gives(dir, "input.jsonl", &expected(&dir.join("expected.jsonl")));
}

/// `sluice serve` allocates instances from a pool: the large JavaScript
/// and Python components (SpiderMonkey, CPython: dozens of core instances
/// each) start and run there too, within the pool's per-component sizes.
#[test]
fn javascript_and_python_plugins_run_on_the_pooling_allocator() {
    let engine = sluice::plugin::new_engine(sluice::plugin::EngineSettings {
        pooled_instances: Some(8),
    })
    .expect("a pooling engine");
    let cases = [
        (
            "plugins/redact-ts",
            "pan 4111 1111 1111 1111",
            "pan **** **** **** 1111",
        ),
        (
            "tests/plugins/identity-python",
            r#"{"id": 1}"#,
            r#"{"id": 1}"#,
        ),
    ];
    for (dir, input, want) in cases {
        let component = support::component(dir);
        let plugin = sluice::plugin::Plugin::load(&engine, dir, &component)
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        let mut instance = plugin
            .instantiate(&[])
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        let record = sluice::record::Record::new(Some(b"k"), Some(input.as_bytes()), Some(1));
        let inputs = [record.as_ref()];
        let frame = sluice::plugin::frame::encode(Vec::new(), inputs.iter().copied());
        let output = instance
            .process(&frame)
            .expect("no trap")
            .expect("no refusal");
        let decoded = sluice::plugin::frame::decode(output, &inputs).expect("a valid frame");
        assert_eq!(decoded.len(), 1, "{dir}");
        assert_eq!(decoded.record(0).value, Some(want.as_bytes()), "{dir}");
    }
}
