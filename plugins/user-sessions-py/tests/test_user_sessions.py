"""The tests of plugins/user-sessions (Rust), for its Python twin."""
from pathlib import Path

from sluice_sdk import Record, testing

app = testing.load(Path(__file__).resolve().parents[1])


def event(user, page):
    return Record(user, f'{{"user":"{user}","page":"{page}","at":"2026-03-02T09:00:00.000Z"}}')


def test_counts_events_per_page_and_rejects_events_without_a_page():
    out = testing.run_aggregator(
        app.Sessions,
        {},
        [
            event("u1", "/home"),
            event("u1", "/docs"),
            event("u2", "/home"),
            event("u1", "/home"),
            event("u1", ""),
            Record("u1", '{"user":"u1"}'),
            Record("u1", "{oops"),
        ],
    )
    assert out[3] == {"events": 3, "pages": {"/docs": 1, "/home": 2}}
    assert list(out[3]["pages"]) == ["/docs", "/home"], "pages in name order, as the Rust twin"
    assert out[2] == {"events": 1, "pages": {"/home": 1}}
    assert [s.code for s in out[4:]] == ["no-page", "bad-json", "bad-json"]


def test_merging_two_sessions_adds_their_counts_in_any_order():
    def one(page):
        return {"events": 1, "pages": {page: 1}}

    ab = testing.merge(app.Sessions, one("/b"), one("/a"), key="u1")
    ba = testing.merge(app.Sessions, one("/a"), one("/b"), key="u1")
    assert ab == ba and list(ab["pages"]) == ["/a", "/b"]
    aab = testing.merge(app.Sessions, one("/a"), ab)
    assert aab["events"] == 3
    assert aab["pages"]["/a"] == 2


def test_a_session_continues_from_its_stored_summary():
    stored = {"events": 2, "pages": {"/home": 2}}
    (after,) = testing.run_aggregator(app.Sessions, {}, [event("u1", "/blog")], aggregates={"u1": stored})
    assert after == {"events": 3, "pages": {"/blog": 1, "/home": 2}}
