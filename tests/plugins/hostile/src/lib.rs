//! Test plugin, hostile on demand. A record whose value contains:
//! - `SPIN` makes it loop forever;
//! - `GRAB` makes it allocate until it can no more (aiming for 4 GiB);
//! - `TRAP` makes it trap;
//! - `PEEK` makes it read the store `ops.counts`, which its step does not
//!   declare (another tenant's), and pass on whatever it found, swallowing
//!   the error;
//! - `FLOOD` makes it emit the record 2,000 times, 1 KiB each;
//! - `LOG` makes it write 100 log lines.
//!
//! Every other record passes through. The host must contain each: only
//! the call fails (or, for logs, the lines are dropped).
use sluice_sdk::state::Store;
use sluice_sdk::{Emitter, Error, Record};

fn has(value: &[u8], marker: &[u8]) -> bool {
    value.windows(marker.len()).any(|w| w == marker)
}

pub fn hostile(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
    let value = record.value.as_deref().unwrap_or_default().to_vec();
    if has(&value, b"SPIN") {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    if has(&value, b"GRAB") {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        for _ in 0..4096 {
            hoard.push(vec![1u8; 1 << 20]);
        }
        std::hint::black_box(&hoard);
    }
    if has(&value, b"TRAP") {
        panic!("marker found");
    }
    if has(&value, b"PEEK") {
        let key = record.key.clone().unwrap_or_default();
        let found = Store::new("ops.counts").get(&key).ok().flatten();
        out.emit(record.with_value(found.unwrap_or_default()));
        return Ok(());
    }
    if has(&value, b"FLOOD") {
        let big = vec![b'x'; 1024];
        for _ in 0..2000 {
            out.emit(record.clone().with_value(big.clone()));
        }
        return Ok(());
    }
    if has(&value, b"LOG") {
        for i in 0..100 {
            sluice_sdk::log::info(&format!("hostile log line {i}"));
        }
    }
    out.emit(record);
    Ok(())
}

sluice_sdk::export_processor!(hostile);
