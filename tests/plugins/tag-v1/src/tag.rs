// The code of both versions; `VERSION` is defined by the including crate.
use sluice_sdk::{Emitter, Error, Record};

pub fn tag(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
    out.emit(record.with_header("version", VERSION));
    Ok(())
}

sluice_sdk::export_processor!(tag);
