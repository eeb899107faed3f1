"""Tests of the aggregator, without a broker: `sluice plugin test .`"""
from pathlib import Path

from sluice_sdk import Record, testing

app = testing.load(Path(__file__).resolve().parents[1])  # this plugin's app.py


def test_counts_and_totals_per_key_and_rejects_a_bad_amount():
    out = testing.run_aggregator(
        app.Totals,
        {},  # the step's config
        [
            Record("a", '{"amount": 12.5}'),
            Record("b", "not json"),
            Record("a", '{"amount": 7.5}'),
            Record("b", '{"amount": "3"}'),
        ],
    )
    assert out[0] == {"count": 1, "total": 12.5}
    assert out[1].code == "bad-amount"
    assert out[2] == {"count": 2, "total": 20.0}  # the running aggregate of key a
    assert out[3].code == "bad-amount"


def test_merge_adds_counts_and_totals():
    merged = testing.merge(app.Totals, {"count": 1, "total": 2}, {"count": 3, "total": 4.5})
    assert merged == {"count": 4, "total": 6.5}
