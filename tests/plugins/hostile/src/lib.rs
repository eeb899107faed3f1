//! Test plugin, hostile on demand: a record whose value contains `SPIN`
//! makes it loop forever, one with `GRAB` makes it allocate until it can
//! no more (aiming for 4 GiB); every other record passes through. The host
//! must contain both: only the call fails.
use sluice_sdk::{Emitter, Error, Record};

pub fn hostile(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
    let value = record.value.as_deref().unwrap_or_default();
    if value.windows(4).any(|w| w == b"SPIN") {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    if value.windows(4).any(|w| w == b"GRAB") {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        for _ in 0..4096 {
            hoard.push(vec![1u8; 1 << 20]);
        }
        std::hint::black_box(&hoard);
    }
    out.emit(record);
    Ok(())
}

sluice_sdk::export_processor!(hostile);
