//! Test plugin for the `state` import. Orders are keyed by customer id;
//! the `customers` table's store holds each customer's row.
//!
//! - An order gets the value `<order> for <row>`, or `<order> for unknown`.
//! - An order whose value is `WRITE` tries to write the table's store (it
//!   must be refused: `read-only`, which rejects the order); `UNDECLARED`
//!   reads a store the step did not declare (`unknown-store`), which the
//!   host turns into a trap.
//! - `COUNT` passes on the number of orders seen so far for this task,
//!   kept in the step's own store `orders` and read back with a range scan.

use sluice_sdk::state::Store;
use sluice_sdk::{Emitter, Error, Record};

pub fn lookup(record: Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
    let key = record.key.clone().unwrap_or_default();
    let order = record.value_str()?.to_owned();
    let customers = Store::new("customers");
    match order.as_str() {
        "WRITE" => customers.put(&key, b"overwritten")?,
        "UNDECLARED" => {
            Store::new("secrets").get(&key)?;
        }
        _ => {}
    }
    let seen = Store::new("orders");
    let id = format!("{}/{order}", String::from_utf8_lossy(&key));
    seen.put(id.as_bytes(), b"")?;
    if order == "COUNT" {
        let n = seen.range(None, None, u32::MAX)?.len();
        out.emit(record.with_value(n.to_string()));
        return Ok(());
    }
    let row = customers.get(&key)?;
    let who = row.map_or("unknown".to_owned(), |r| {
        String::from_utf8_lossy(&r).into_owned()
    });
    out.emit(record.with_value(format!("{order} for {who}")));
    Ok(())
}

sluice_sdk::export_processor!(lookup);
