//! Page views per window: views (key = page, value = `{"user": "u-17",
//! ...}`) in, `{views, visitors}` per page and window out. Sluice assigns
//! each view to its windows (the pipeline's `window` table) and keeps one
//! aggregate per page and window; this plugin only counts.

use serde::{Deserialize, Serialize};
use sluice_sdk::{Aggregator, Config, Error, Record};

/// One page's views in one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageViews {
    pub views: u64,
    /// Distinct visitors.
    pub visitors: u64,
    /// The visitors seen, sorted (a window holds few).
    pub seen: Vec<String>,
}

#[derive(Deserialize)]
struct View {
    user: String,
}

pub struct Views;

impl Aggregator for Views {
    type Aggregate = PageViews;

    fn init(_: &Config) -> Result<Self, Error> {
        Ok(Views)
    }

    fn initial(&self, _page: Option<&[u8]>) -> PageViews {
        PageViews::default()
    }

    fn add(&mut self, mut agg: PageViews, view: Record<'_>) -> Result<PageViews, Error> {
        let user = view.json::<View>()?.user;
        agg.views += 1;
        if let Err(at) = agg.seen.binary_search(&user) {
            agg.seen.insert(at, user);
            agg.visitors += 1;
        }
        Ok(agg)
    }
}

sluice_sdk::export_aggregator!(type Views);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::run_aggregator;

    #[test]
    fn counts_views_and_distinct_visitors() {
        let view = |page: &str, user: &str| {
            Record::new(Some(page), Some(format!(r#"{{"user":"{user}"}}"#)))
        };
        let out = run_aggregator::<Views>(
            &[],
            vec![
                view("/a", "u1"),
                view("/a", "u2"),
                view("/a", "u1"),
                view("/b", "u1"),
            ],
        )
        .unwrap();
        let a = out[2].as_ref().unwrap();
        assert_eq!((a.views, a.visitors), (3, 2));
        assert_eq!(out[3].as_ref().unwrap().views, 1);
    }
}
