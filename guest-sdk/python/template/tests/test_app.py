from pathlib import Path

import pytest

from sluice_sdk import Record, Reject, testing

app = testing.load(Path(__file__).resolve().parents[1])


def test_upper_cases_the_value():
    assert testing.run(app.process, Record("k", "hi"))[0].value == b"HI"


def test_rejects_an_empty_value():
    with pytest.raises(Reject) as e:
        testing.run(app.process, Record("k", ""))
    assert e.value.code == "empty"
