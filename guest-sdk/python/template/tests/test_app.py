"""Tests of the processor, without a broker: `sluice plugin test .`"""
from pathlib import Path

import pytest

from sluice_sdk import Record, Reject, testing

app = testing.load(Path(__file__).resolve().parents[1])  # this plugin's app.py


def test_upper_cases_the_value():
    assert testing.run(app.process, Record("k", "hi"))[0].value == b"HI"


def test_rejects_an_empty_value():
    with pytest.raises(Reject) as e:
        testing.run(app.process, Record("k", ""))
    assert e.value.code == "empty"


def test_drops_the_value_the_config_names():
    out = testing.run_processor(app.process, {"drop": "skip"}, [Record("k", "skip"), Record("k", "keep")])
    assert out[0] == []  # dropped
    assert out[1][0].value == b"KEEP"
