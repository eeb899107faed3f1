//! Plugins in each language, side by side: an identity processor written
//! in Rust, JavaScript, Python and C (`plugins/identity`,
//! `tests/plugins/identity-{js,python,c}`), each measured for
//!
//! - **build**: `sluice plugin build` after an edit to the source (Rust
//!   builds incrementally; the others build from scratch every time);
//! - **size** of the component;
//! - **first compile**: wasmtime compiling the component, no cache;
//! - **cached start**: loading the plugin again (read, checksum, compiled
//!   artifact from the component cache, checks) and starting one instance
//!   with its `init`, median of 5;
//! - **per record**: the plugin boundary with 100-byte values at call
//!   batches of 64 and 1024 (encoding the frame, the call, validating and
//!   reading the output), as `benches/boundary.rs` measures it, against a
//!   native Rust closure doing the same identity in the same run.
//!
//! Run: `cargo bench -p sluice --bench languages`. Under `cargo test` (no
//! `--bench` argument) it runs small as a smoke test, without the first
//! compile of the large components.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

mod identity;

use sluice::plugin::cache::ComponentCache;
use sluice::plugin::{Plugin, engine};
use sluice::record::{Record, RecordRef};
use sluice::toolchain::{self, BuildOptions, Language};

const BATCHES: [usize; 2] = [64, 1024];

/// Marks `file` as just edited.
fn touch(file: &Path) {
    std::fs::File::options()
        .append(true)
        .open(file)
        .and_then(|f| f.set_modified(SystemTime::now()))
        .unwrap_or_else(|e| panic!("touching {}: {e}", file.display()));
}

/// ns per record of `f` over `records` records per call, for at least
/// `budget`.
fn per_record(batch: usize, budget: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm
    let (mut calls, start) = (0u64, Instant::now());
    while start.elapsed() < budget {
        f();
        calls += 1;
    }
    start.elapsed().as_nanos() as f64 / (calls * batch as u64) as f64
}

struct Row {
    language: Language,
    build: Duration,
    bytes: u64,
    first_compile: Option<Duration>,
    cached_start: Duration,
    ns: Vec<f64>,
}

fn measure(language: Language, dir: &Path, source: &str, full: bool) -> Row {
    let opts = BuildOptions {
        quiet: true,
        ..BuildOptions::default()
    };
    // Built once, so that the timed build is the one after an edit.
    toolchain::build(dir, &opts).unwrap_or_else(|e| panic!("building {}: {e}", dir.display()));
    touch(&dir.join(source));
    let started = Instant::now();
    let component: PathBuf =
        toolchain::build(dir, &opts).unwrap_or_else(|e| panic!("building {}: {e}", dir.display()));
    let build = started.elapsed();
    let bytes = std::fs::read(&component).expect("the component");

    let engine = engine();
    let first_compile = (full || bytes.len() < 1 << 20).then(|| {
        let started = Instant::now();
        ComponentCache::off()
            .component(&engine, "identity", &bytes, "")
            .expect("compiling");
        started.elapsed()
    });
    let name = format!("identity-{}", language.name());
    // The first load fills the cache; then five starts from it.
    Plugin::load(&engine, &name, &component).expect("loading");
    let mut starts: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let plugin = Plugin::load(&engine, &name, &component).expect("loading");
            black_box(plugin.instantiate(&[]).expect("starting"));
            started.elapsed()
        })
        .collect();
    starts.sort();

    let plugin = Plugin::load(&engine, &name, &component).expect("loading");
    let mut instance = plugin.instantiate(&[]).expect("starting");
    let budget = Duration::from_millis(if full { 2_000 } else { 100 });
    let ns = BATCHES
        .iter()
        .map(|&batch| {
            let records: Vec<Record> = (0..batch).map(identity::record).collect();
            let refs: Vec<RecordRef<'_>> = records.iter().map(Record::as_ref).collect();
            let mut buf = Vec::new();
            per_record(batch, budget, || {
                identity::wasm_call(&mut instance, &refs, &mut buf)
            })
        })
        .collect();
    Row {
        language,
        build,
        bytes: bytes.len() as u64,
        first_compile,
        cached_start: starts[2],
        ns,
    }
}

fn native(full: bool) -> Vec<f64> {
    let budget = Duration::from_millis(if full { 2_000 } else { 100 });
    BATCHES
        .iter()
        .map(|&batch| {
            let records: Vec<Record> = (0..batch).map(identity::record).collect();
            per_record(batch, budget, || identity::native_call(&records))
        })
        .collect()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let plugins = [
        (Language::Rust, "plugins/identity", "src/lib.rs"),
        (
            Language::JavaScript,
            "tests/plugins/identity-js",
            "src/index.js",
        ),
        (Language::Python, "tests/plugins/identity-python", "app.py"),
        (Language::C, "tests/plugins/identity-c", "identity.c"),
    ];
    let native = native(full);
    let rows: Vec<Row> = plugins
        .iter()
        .map(|&(language, dir, source)| measure(language, &root.join(dir), source, full))
        .collect();

    println!("\nplugins by language: identity processor, 100-byte values");
    println!(
        "{:<11} {:>9} {:>10} {:>14} {:>13} {:>11} {:>12} {:>8}",
        "language",
        "build s",
        "size KB",
        "1st compile s",
        "cached ms",
        "ns/rec @64",
        "ns/rec @1024",
        "ratio"
    );
    for r in &rows {
        println!(
            "{:<11} {:>9.1} {:>10.0} {:>14} {:>13.1} {:>11.0} {:>12.0} {:>7.1}x",
            r.language.to_string(),
            r.build.as_secs_f64(),
            r.bytes as f64 / 1024.0,
            r.first_compile
                .map(|d| format!("{:.2}", d.as_secs_f64()))
                .unwrap_or_else(|| "(skipped)".into()),
            r.cached_start.as_secs_f64() * 1e3,
            r.ns[0],
            r.ns[1],
            r.ns[1] / native[1]
        );
    }
    println!(
        "{:<11} {:>9} {:>10} {:>14} {:>13} {:>11.0} {:>12.0} {:>7.1}x",
        "native", "", "", "", "", native[0], native[1], 1.0
    );
}
