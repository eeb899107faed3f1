//! Test plugin: traps on any record whose value contains `TRAP`, rejects
//! one containing `REJECT`, and passes every other record through.
use sluice_sdk::{Emitter, Error, Record};

pub fn trap_on_marker(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
    let value = record.value.as_deref().unwrap_or_default();
    if value.windows(4).any(|w| w == b"TRAP") {
        panic!("marker found");
    }
    if value.windows(6).any(|w| w == b"REJECT") {
        return Err(Error::new("rejected-marker", "value contains REJECT"));
    }
    out.emit(record);
    Ok(())
}

sluice_sdk::export_processor!(trap_on_marker);
