"""First step of the polyglot pipeline (Python): parse CSV transaction lines
`txn_id,account,amount,card` into JSON keyed by account; the card number
travels in the `card` header, not in the value."""
import math
import re

from sluice_sdk import Record, Reject, processor

NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", re.ASCII)


@processor
def parse(record: Record):
    fields = [f.strip() for f in record.value_text().strip().split(",")]
    if len(fields) != 4:
        raise Reject("bad-line", f"expected 4 fields txn_id,account,amount,card; got {len(fields)}")
    txn, account, amount_text, card = fields
    amount = float(amount_text) if NUMBER.fullmatch(amount_text) else math.nan
    if not math.isfinite(amount):  # also 1e999, which JSON cannot hold
        raise Reject("bad-line", f"amount {amount_text!r} is not a number")
    return (
        record.with_key(account)
        .with_value({"txn": txn, "account": account, "amount": amount})
        .with_header("card", card)
    )
