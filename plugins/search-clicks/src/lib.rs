//! The seed's streaming (windowed) join: each search, keyed by its search
//! id, joined with the clicks on its results within ten minutes. A left
//! join: a search nobody clicked comes out too, once its window has
//! closed, with `"clicked": null`.
//!
//! The host does the join (which click is within the window, when a
//! window closes); this value joiner only says what a result looks like.

use serde::{Deserialize, Serialize};
use sluice_sdk::Error;

/// A search, as the search service logs it.
#[derive(Deserialize)]
pub struct Search {
    pub query: String,
}

/// A click on a search result.
#[derive(Deserialize)]
pub struct Click {
    pub url: String,
}

/// A search with the result it led to, if any.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub query: String,
    pub clicked: Option<String>,
}

/// Joins a search with one click on its results, or with none.
pub fn outcome(search: Option<Search>, click: Option<Click>) -> Result<Outcome, Error> {
    let search =
        search.ok_or_else(|| Error::new("no-search", "a left join always has its search"))?;
    Ok(Outcome {
        query: search.query,
        clicked: click.map(|c| c.url),
    })
}

sluice_sdk::export_joiner!(json outcome);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_with_or_without_a_click() {
        let rust = || {
            Some(Search {
                query: "rust".into(),
            })
        };
        let click = Some(Click {
            url: "https://rust-lang.org".into(),
        });
        assert_eq!(
            outcome(rust(), click).unwrap().clicked.as_deref(),
            Some("https://rust-lang.org")
        );
        assert_eq!(outcome(rust(), None).unwrap().clicked, None);
        assert!(outcome(None, None).is_err());
    }
}
