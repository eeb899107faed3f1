//! User activity sessions: page events (key = user, value = `{"page":
//! "/docs", ...}`) in, `{events, pages}` per user session out. Sluice
//! decides which events form a session (the pipeline's session window: a
//! 30-minute gap ends one) and merges two sessions when a late event
//! bridges them; this plugin says how an event changes a session's summary
//! and how two summaries combine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_sdk::{Aggregator, Config, Error, Record};

/// One session's summary. Both parts are counts, so the order in which
/// events and merged sessions arrive does not change the result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Events in the session.
    pub events: u64,
    /// Events per page.
    pub pages: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct Event {
    page: String,
}

pub struct Sessions;

impl Aggregator for Sessions {
    type Aggregate = Session;

    fn init(_: &Config) -> Result<Self, Error> {
        Ok(Sessions)
    }

    fn initial(&self, _user: Option<&[u8]>) -> Session {
        Session::default()
    }

    fn add(&mut self, mut session: Session, event: Record<'_>) -> Result<Session, Error> {
        let page = event.json::<Event>()?.page;
        if page.is_empty() {
            return Err(Error::new("no-page", "an activity event names its page"));
        }
        session.events += 1;
        *session.pages.entry(page).or_default() += 1;
        Ok(session)
    }

    fn merge(&mut self, _user: Option<&[u8]>, a: Session, b: Session) -> Result<Session, Error> {
        let mut merged = a;
        merged.events += b.events;
        for (page, n) in b.pages {
            *merged.pages.entry(page).or_default() += n;
        }
        Ok(merged)
    }
}

sluice_sdk::export_aggregator!(type Sessions);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::testing::run_aggregator;

    fn event(user: &str, page: &str) -> Record<'static> {
        Record::new(Some(user), Some(format!(r#"{{"page":"{page}"}}"#)))
    }

    #[test]
    fn counts_events_per_page_and_rejects_events_without_a_page() {
        let out = run_aggregator::<Sessions>(
            &[],
            vec![
                event("u1", "/home"),
                event("u1", "/docs"),
                event("u1", "/home"),
                event("u1", ""),
            ],
        )
        .unwrap();
        let last = out[2].as_ref().unwrap();
        assert_eq!(last.events, 3);
        assert_eq!(
            last.pages,
            BTreeMap::from([("/docs".into(), 1), ("/home".into(), 2)])
        );
        assert_eq!(out[3].as_ref().unwrap_err().code, "no-page");
    }

    #[test]
    fn merging_two_sessions_adds_their_counts_in_any_order() {
        let mut s = Sessions;
        let one = |page: &str| Session {
            events: 1,
            pages: BTreeMap::from([(page.to_owned(), 1)]),
        };
        let ab = s.merge(None, one("/a"), one("/b")).unwrap();
        let ba = s.merge(None, one("/b"), one("/a")).unwrap();
        assert_eq!(ab, ba);
        let aab = s.merge(None, one("/a"), ab).unwrap();
        assert_eq!(aab.events, 3);
        assert_eq!(aab.pages["/a"], 2);
    }
}
