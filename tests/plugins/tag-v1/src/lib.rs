//! Test plugin for swaps: every record passes through, tagged
//! `version=v1`, so that a test sees which version processed it.
use sluice_sdk::{Emitter, Error, Record};

pub fn tag(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
    out.emit(record.with_header("version", "v1"));
    Ok(())
}

sluice_sdk::export_processor!(tag);
