"""{{name}}: a Sluice aggregator. Per key, counts the records and totals
their `amount`: {"count": 2, "total": 20.0}. A record whose value is not
JSON with a numeric `amount` is rejected (the pipeline's `rejected` policy
applies) and leaves the total as it was.
Build: `sluice plugin build .`; test: `sluice plugin test .`"""
from sluice_sdk import Record, Reject, aggregator


@aggregator
class Totals:
    def initial(self, key):
        # The aggregate of a key that has none yet (key: bytes, or None).
        # Aggregates are stored, and sent downstream, as JSON.
        return {"count": 0, "total": 0.0}

    def add(self, totals, record: Record):
        # The key's aggregate after one more record.
        try:
            amount = record.value_json()["amount"]
        except (Reject, TypeError, KeyError):  # not JSON, not an object, no amount
            amount = None
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise Reject("bad-amount", "the value is not JSON with a numeric `amount`")
        totals["count"] += 1
        totals["total"] += amount
        return totals

    def merge(self, key, a, b):
        # Two aggregates of one key as one (session windows merge sessions).
        return {"count": a["count"] + b["count"], "total": a["total"] + b["total"]}
