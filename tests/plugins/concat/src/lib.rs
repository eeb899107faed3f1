//! Test plugin: a reducer. A key's value is its records' values joined
//! with commas, in order; the value `BAD` is rejected and left out.

use sluice_sdk::{Error, Record};

pub fn concat(current: &[u8], record: Record<'_>) -> Result<Vec<u8>, Error> {
    let next = record.value_str()?;
    if next == "BAD" {
        return Err(Error::new("bad-value", "BAD is not welcome"));
    }
    let mut joined = current.to_vec();
    joined.push(b',');
    joined.extend_from_slice(next.as_bytes());
    Ok(joined)
}

sluice_sdk::export_reducer!(concat);
