//! {{name}}: a Sluice value joiner. An order (the stream, left) joined with
//! its customer's row (the table, right) becomes the order with the
//! customer's name, or with none when the table has no row for its key (a
//! left join). An order that is not JSON with an `item` is rejected (the
//! pipeline's `rejected` policy applies). Sluice matches the records; the
//! joiner only says what a matched pair becomes. Build:
//! `sluice plugin build .`; test: `cargo test`.
use serde::{Deserialize, Serialize};
use sluice_sdk::Error;

/// What the joiner reads of an order (other fields are ignored).
#[derive(Deserialize)]
pub struct Order {
    pub item: String,
}

/// What it reads of a customer's row.
#[derive(Deserialize)]
pub struct Customer {
    pub name: String,
}

/// The joined value.
#[derive(Debug, PartialEq, Serialize)]
pub struct Enriched {
    pub item: String,
    pub customer: Option<String>,
}

/// One matched pair: an order, and its customer if the table has one.
pub fn enrich(order: Option<Order>, customer: Option<Customer>) -> Result<Enriched, Error> {
    let order = order.ok_or_else(|| Error::new("no-order", "a left join always has its order"))?;
    Ok(Enriched {
        item: order.item,
        customer: customer.map(|c| c.name),
    })
}

sluice_sdk::export_joiner!(json enrich);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_gets_its_customers_name_or_none() {
        let pen = || Some(Order { item: "pen".into() });
        let ada = Some(Customer { name: "Ada".into() });
        assert_eq!(enrich(pen(), ada).unwrap().customer.as_deref(), Some("Ada"));
        assert_eq!(enrich(pen(), None).unwrap().customer, None);
    }
}
