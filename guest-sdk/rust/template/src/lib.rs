//! {{name}}: a Sluice record processor. Upper-cases each record's value;
//! a record without a value is rejected (the pipeline's `rejected` policy
//! applies). Build: `sluice plugin build .`; test: `cargo test`.
use sluice_sdk::{Emitter, Error, Record};

pub fn process(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
    let text = record.value_str()?;
    if text.is_empty() {
        return Err(Error::new("empty", "the record has no value"));
    }
    let upper = text.to_uppercase();
    out.emit(record.with_value(upper));
    Ok(())
}

sluice_sdk::export_processor!(process);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_cases_the_value() {
        let out = sluice_sdk::testing::run(process, Record::new(Some("k"), Some("hi"))).unwrap();
        assert_eq!(out[0].value.as_deref(), Some(&b"HI"[..]));
    }

    #[test]
    fn rejects_an_empty_value() {
        let e = sluice_sdk::testing::run(process, Record::new(Some("k"), Some(""))).unwrap_err();
        assert_eq!(e.code, "empty");
    }
}
