//! The seed's stream–table join: page clicks, keyed by user id, enriched
//! with the user's current row from a `users` table that Debezium keeps in
//! step with the shop's database. A left join: a click by a user the table
//! does not know still comes out, with `"user": null`.
//!
//! The host does the join (which row matches, when); this value joiner
//! only says what an enriched click looks like.

use serde::{Deserialize, Serialize};
use sluice_sdk::Error;

/// A click, as the web tier writes it.
#[derive(Deserialize)]
pub struct Click {
    pub page: String,
    pub at: String,
}

/// A row of the `users` table (the `after` of a Debezium change event).
#[derive(Deserialize)]
pub struct User {
    pub name: String,
    pub tier: String,
}

/// What the user part of an enriched click holds.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub tier: String,
}

/// An enriched click.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct Enriched {
    pub page: String,
    pub at: String,
    pub user: Option<UserInfo>,
}

/// Joins a click with its user's row, if the table has one.
pub fn enrich(click: Option<Click>, user: Option<User>) -> Result<Enriched, Error> {
    let click =
        click.ok_or_else(|| Error::new("no-click", "a stream-table join always has its click"))?;
    Ok(Enriched {
        page: click.page,
        at: click.at,
        user: user.map(|u| UserInfo {
            name: u.name,
            tier: u.tier,
        }),
    })
}

sluice_sdk::export_joiner!(json enrich);

#[cfg(test)]
mod tests {
    use super::*;

    fn click() -> Option<Click> {
        Some(Click {
            page: "/cart".into(),
            at: "09:00".into(),
        })
    }

    #[test]
    fn a_click_gets_its_user_or_none() {
        let ada = Some(User {
            name: "Ada".into(),
            tier: "gold".into(),
        });
        let with = enrich(click(), ada).unwrap();
        assert_eq!(
            with.user,
            Some(UserInfo {
                name: "Ada".into(),
                tier: "gold".into()
            })
        );
        assert_eq!(enrich(click(), None).unwrap().user, None);
        assert!(enrich(None, None).is_err());
    }
}
