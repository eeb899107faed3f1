//! Test plugin: a value joiner of JSON values. An order (left) joined with
//! its customer (right) becomes a greeting; either may be missing. An
//! order for the item `REJECT` is rejected.

use serde::{Deserialize, Serialize};
use sluice_sdk::Error;

#[derive(Deserialize)]
pub struct Order {
    pub item: String,
}

#[derive(Deserialize)]
pub struct Customer {
    pub name: String,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct Greeting {
    pub item: Option<String>,
    pub greeting: String,
}

pub fn greet(order: Option<Order>, customer: Option<Customer>) -> Result<Greeting, Error> {
    let name = customer.map_or_else(|| "stranger".to_owned(), |c| c.name);
    let Some(order) = order else {
        let greeting = format!("Hello {name}, no order yet");
        return Ok(Greeting {
            item: None,
            greeting,
        });
    };
    if order.item == "REJECT" {
        return Err(Error::new("rejected-marker", "the item is REJECT"));
    }
    let greeting = format!("Hello {name}, your {} is on its way", order.item);
    Ok(Greeting {
        item: Some(order.item),
        greeting,
    })
}

sluice_sdk::export_joiner!(json greet);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greets_with_or_without_a_customer_or_an_order() {
        let pen = || Some(Order { item: "pen".into() });
        let ada = || Some(Customer { name: "Ada".into() });
        assert_eq!(
            greet(pen(), ada()).unwrap().greeting,
            "Hello Ada, your pen is on its way"
        );
        assert_eq!(
            greet(pen(), None).unwrap().greeting,
            "Hello stranger, your pen is on its way"
        );
        assert_eq!(greet(None, ada()).unwrap().item, None);
        let marker = Some(Order {
            item: "REJECT".into(),
        });
        assert_eq!(greet(marker, ada()).unwrap_err().code, "rejected-marker");
    }
}
