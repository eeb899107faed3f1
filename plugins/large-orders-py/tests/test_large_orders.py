import json
from pathlib import Path

import pytest

from sluice_sdk import Record, Reject, testing

HERE = Path(__file__).resolve().parents[1]
app = testing.load(HERE)


def order(amount, customer="c-9"):
    value = f'{{"order_id":"o1","customer_id":"{customer}","amount":{amount}}}'
    return Record("o1", value, 5)


def test_passes_only_orders_over_the_threshold_rekeyed_by_customer():
    out = testing.run_processor(
        app.LargeOrders, {}, [order("10000.01"), order("10000"), order("9")]
    )
    assert out[0] == [order("10000.01").with_key("c-9")]
    assert out[0][0].timestamp == 5
    assert out[1] == [], "exactly 10000 is not over"
    assert out[2] == []


def test_malformed_orders_are_rejected_and_threshold_is_configurable():
    out = testing.run_processor(
        app.LargeOrders,
        {"min.amount": "5"},
        [
            Record("k", "{oops"),
            order("9"),
            Record("k", None),
            Record("k", '{"customer_id": 7, "amount": 10}'),
            order('"lots"'),
            order("true"),
            Record("k", "[1, 2]"),
        ],
    )
    assert out[0].code == "bad-json"
    assert len(out[1]) == 1
    assert all(isinstance(s, Reject) and s.code == "bad-json" for s in out[2:])
    with pytest.raises(Reject) as e:
        testing.run_processor(app.LargeOrders, {"min.amount": "lots"}, [])
    assert e.value.code == "bad-config"


def test_the_sample_gives_the_expected_outputs():
    """orders.jsonl through the processor (as `sluice dev` feeds it) against
    the hand-written expected.jsonl, per key in order."""
    records = []
    for line in (HERE / "orders.jsonl").read_text().splitlines():
        doc = json.loads(line)
        if isinstance(doc, dict) and "value" in doc:
            value = doc["value"]
            value = value if isinstance(value, str) else json.dumps(value)
            records.append(Record(doc.get("key"), value, doc.get("timestamp")))
        else:
            records.append(Record(None, line))
    got = []
    for record, status in zip(records, testing.run_processor(app.LargeOrders, {"min.amount": "10000"}, records)):
        if isinstance(status, Reject):
            got.append({"topic": "large-orders-py-dlq", "key": record.key_text(),
                        "value": record.value_text(), "code": status.code})
        for out in status if isinstance(status, list) else []:
            got.append({"topic": "alerts-py", "key": out.key_text(), "value": out.value_json()})
    expected = []
    for line in (HERE / "expected.jsonl").read_text().splitlines():
        e = json.loads(line)
        if "headers" in e:
            e = {"topic": e["topic"], "key": e["key"], "value": e["value"],
                 "code": e["headers"]["sluice.error.code"]}
            assert json.loads(line)["headers"]["sluice.error.kind"] == "rejected"
        expected.append(e)

    def normalize(entry):
        v = entry["value"]
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                pass
        return {**entry, "value": v}

    by_key = lambda rows: sorted((normalize(r) for r in rows), key=lambda r: (r["topic"], r["key"]))  # noqa: E731
    assert by_key(got) == by_key(expected)
