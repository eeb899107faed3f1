//! Passes every record through unchanged.

use sluice_sdk::{Emitter, Error, Record};

pub fn identity(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
    out.emit(record);
    Ok(())
}

sluice_sdk::export_processor!(identity);

#[cfg(test)]
mod tests {
    #[test]
    fn passes_records_through() {
        let rec = sluice_sdk::Record::new(Some("k"), Some("v")).with_header("h", "x");
        assert_eq!(
            sluice_sdk::testing::run(super::identity, rec.clone()).unwrap(),
            vec![rec]
        );
    }
}
