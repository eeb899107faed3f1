//! The identity work the boundary benchmarks time, shared by
//! `benches/boundary.rs` and `benches/languages.rs`: 100-byte records, one
//! call batch through an identity plugin, and the same identity as a
//! native Rust closure.

use std::hint::black_box;

use sluice::plugin::PluginInstance;
use sluice::plugin::frame;
use sluice::record::{Record, RecordRef};

/// Record `i`: a short key and a 100-byte JSON value.
pub fn record(i: usize) -> Record {
    let mut value = format!("{{\"id\":{i:08},\"payload\":\"");
    value.push_str(&"x".repeat(100 - value.len() - 2));
    value.push_str("\"}");
    assert_eq!(value.len(), 100);
    Record::new(
        Some(format!("key-{i:04}").as_bytes()),
        Some(value.as_bytes()),
        Some(1_700_000_000_000 + i as i64),
    )
}

/// One call of an identity plugin over `refs`, with everything the host
/// does per call: encode the input frame (reusing `buf`), call, validate
/// the output frame, and read every output record.
pub fn wasm_call(instance: &mut PluginInstance, refs: &[RecordRef<'_>], buf: &mut Vec<u8>) {
    let input = frame::encode(std::mem::take(buf), refs.iter().copied());
    let output = instance
        .process(&input)
        .expect("no trap")
        .expect("no refusal");
    let decoded = frame::decode(output, refs).expect("valid frame");
    assert_eq!(decoded.len(), refs.len(), "one output per record");
    for i in 0..decoded.len() {
        black_box(decoded.record(i));
    }
    *buf = input;
    black_box(decoded);
}

/// The baseline: the same identity as a native closure over owned
/// records, collecting its outputs and one outcome per input.
pub fn native_call(records: &[Record]) {
    let identity = |r: &Record| -> Result<Vec<Record>, ()> { Ok(vec![r.clone()]) };
    let mut outputs: Vec<Record> = Vec::with_capacity(records.len());
    let mut outcomes = Vec::with_capacity(records.len());
    for r in records {
        let produced = identity(black_box(r)).expect("identity");
        let start = outputs.len();
        outputs.extend(produced);
        outcomes.push(frame::Outcome::Ok(start..outputs.len()));
    }
    black_box((outputs, outcomes));
}
