import json
from pathlib import Path

import pytest

from sluice_sdk import Record, Reject, testing

app = testing.load(Path(__file__).resolve().parents[1])


def test_a_line_becomes_json_keyed_by_account_with_the_card_in_a_header():
    (out,) = testing.run(app.parse, Record("ignored", "t-1,acct-7,12.50,4111111111111111", 42))
    assert out.key == b"acct-7"
    assert json.loads(out.value) == {"txn": "t-1", "account": "acct-7", "amount": 12.5}
    assert out.value == b'{"txn":"t-1","account":"acct-7","amount":12.5}'
    assert out.header("card") == b"4111111111111111"
    assert out.timestamp == 42


@pytest.mark.parametrize("amount, expected", [("100", 100.0), ("-3.25", -3.25), ("1e3", 1000.0), (".5", 0.5)])
def test_amount_is_a_number(amount, expected):
    (out,) = testing.run(app.parse, Record(None, f"t-2,acct-1,{amount},4000\r\n"))
    assert json.loads(out.value)["amount"] == expected


@pytest.mark.parametrize(
    "line",
    ["t-1,acct-7,12.50", "t-1,acct-7,12.50,4111,extra", "", "t-1,acct-7,twelve,4111",
     "t-1,acct-7,,4111", "t-1,acct-7,nan,4111", "t-1,acct-7,1e999,4111", "t-1,acct-7,1_000,4111"],
)
def test_bad_lines_are_rejected(line):
    with pytest.raises(Reject) as e:
        testing.run(app.parse, Record(None, line))
    assert e.value.code == "bad-line"


def test_tombstones_are_rejected_not_trapped():
    with pytest.raises(Reject) as e:
        testing.run(app.parse, Record("k", None))
    assert e.value.code == "null-value"
