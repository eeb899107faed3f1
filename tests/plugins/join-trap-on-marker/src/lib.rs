//! Test plugin: a value joiner of raw values. It traps (panics) when
//! either value contains `TRAP`; else the joined value is
//! `<left>|<right>`, with `-` for an absent side.

use sluice_sdk::{Error, Record};

pub fn join_text(left: Option<Record<'_>>, right: Option<Record<'_>>) -> Result<Vec<u8>, Error> {
    let value = |r: &Option<Record<'_>>| match r {
        Some(r) => r.value.as_deref().unwrap_or_default().to_vec(),
        None => b"-".to_vec(),
    };
    let (l, r) = (value(&left), value(&right));
    if [&l, &r].iter().any(|v| v.windows(4).any(|w| w == b"TRAP")) {
        panic!("marker found");
    }
    Ok([l, b"|".to_vec(), r].concat())
}

sluice_sdk::export_joiner!(join_text);
