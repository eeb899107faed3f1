//! The plugin boundary, in ns per record: an identity plugin called with
//! call batches of 1, 64 and 1024 records (100-byte values), against a
//! native Rust closure doing the same work, measured in the same run.
//!
//! The plugin figure includes everything the host does per call: encoding
//! the input frame, the wasmtime call (lowering and lifting one buffer each
//! way), validating the output frame, and reading every output record.
//!
//! Run: `cargo bench -p sluice --bench boundary`

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod identity;

use criterion::{BenchmarkId, Criterion, Throughput};
use sluice::plugin::{Plugin, engine};
use sluice::record::{Record, RecordRef};
use sluice::toolchain::{self, BuildOptions};

const BATCHES: [usize; 3] = [1, 64, 1024];

/// (variant, batch) -> (total time, records).
type Totals = BTreeMap<(&'static str, usize), (Duration, u64)>;

/// Accumulated from criterion's own samples.
static TOTALS: Mutex<Totals> = Mutex::new(BTreeMap::new());

fn measure(name: &'static str, batch: usize, iters: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let elapsed = start.elapsed();
    let mut t = TOTALS.lock().unwrap();
    let e = t.entry((name, batch)).or_default();
    e.0 += elapsed;
    e.1 += iters * batch as u64;
    elapsed
}

fn boundary(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/identity");
    let component = toolchain::build(
        &dir,
        &BuildOptions {
            quiet: true,
            ..BuildOptions::default()
        },
    )
    .expect("building plugins/identity");
    let engine = engine();
    let plugin = Plugin::load(&engine, "identity", &component).expect("loading identity");
    let mut instance = plugin.instantiate(&[]).expect("instantiating identity");

    let mut group = c.benchmark_group("boundary");
    for batch in BATCHES {
        let records: Vec<Record> = (0..batch).map(identity::record).collect();
        let refs: Vec<RecordRef<'_>> = records.iter().map(Record::as_ref).collect();
        group.throughput(Throughput::Elements(batch as u64));

        // The plugin: encode, call, decode.
        let mut buf = Vec::new();
        group.bench_function(BenchmarkId::new("wasm", batch), |b| {
            b.iter_custom(|iters| {
                measure("wasm", batch, iters, || {
                    identity::wasm_call(&mut instance, &refs, &mut buf)
                })
            })
        });

        // The baseline: the same identity as a native closure.
        group.bench_function(BenchmarkId::new("native", batch), |b| {
            b.iter_custom(|iters| {
                measure("native", batch, iters, || identity::native_call(&records))
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    boundary(&mut c);
    c.final_summary();
    let totals = TOTALS.lock().unwrap();
    println!(
        "\nplugin boundary, identity plugin, 100-byte values (ns per record, mean over all samples):"
    );
    println!(
        "{:>6}  {:>10}  {:>10}  {:>8}",
        "batch", "wasm", "native", "ratio"
    );
    for batch in BATCHES {
        let ns = |v: &'static str| {
            totals
                .get(&(v, batch))
                .map(|(d, n)| d.as_nanos() as f64 / (*n).max(1) as f64)
                .unwrap_or(f64::NAN)
        };
        let (w, n) = (ns("wasm"), ns("native"));
        println!("{batch:>6}  {w:>10.1}  {n:>10.1}  {:>7.1}x", w / n);
    }
}
