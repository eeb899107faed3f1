"""User activity sessions, the Python twin of plugins/user-sessions: page
events (key = user, value = {"page": "/docs", ...}) in, {events, pages} per
user session out. Sluice decides which events form a session (the
pipeline's session window: a 30-minute gap ends one) and merges two
sessions when a late event bridges them; this plugin says how an event
changes a session's summary and how two summaries combine."""
from sluice_sdk import Record, Reject, aggregator


def _sorted(pages):
    """Pages in name order, as the Rust twin's BTreeMap writes them."""
    return dict(sorted(pages.items()))


@aggregator
class Sessions:
    """A session's summary: its events, and its events per page. Both are
    counts, so the order in which events and merged sessions arrive does
    not change the result."""

    def initial(self, user):
        return {"events": 0, "pages": {}}

    def add(self, session, event: Record):
        page = event.value_json()  # malformed JSON rejects the event: bad-json
        page = page.get("page") if isinstance(page, dict) else None
        if not isinstance(page, str):
            raise Reject("bad-json", "an activity event is an object with a string `page`")
        if not page:
            raise Reject("no-page", "an activity event names its page")
        pages = session["pages"]
        pages[page] = pages.get(page, 0) + 1
        return {"events": session["events"] + 1, "pages": _sorted(pages)}

    def merge(self, user, a, b):
        pages = dict(a["pages"])
        for page, n in b["pages"].items():
            pages[page] = pages.get(page, 0) + n
        return {"events": a["events"] + b["events"], "pages": _sorted(pages)}
