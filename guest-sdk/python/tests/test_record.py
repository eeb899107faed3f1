import pytest

from sluice_sdk import Config, Record, Reject


def test_builders_return_copies_and_accessors_read():
    r = Record("k", '{"a":1}').with_header("h", "1").with_header("h", b"2").with_timestamp(42)
    assert r.header("h") == b"2" and r.header_text("h") == "2"
    assert r.header("missing") is None
    assert r.timestamp == 42
    assert r.value_text() == '{"a":1}'
    assert r.value_json() == {"a": 1}
    assert r.key_text() == "k"
    r2 = r.with_key(None).with_value({"b": [1, "ü"]}).without_header("h")
    assert r2.key is None and r2.value == '{"b":[1,"ü"]}'.encode() and r2.headers == []
    assert r.key == b"k" and len(r.headers) == 2  # the original is untouched
    assert Record(None, [1, 2]).value == b"[1,2]"
    assert Record().with_json_value("x").value == b'"x"'
    assert Record().with_value(None).value is None
    assert Record(headers={"a": "1", "b": None}).headers == [("a", b"1"), ("b", None)]


def test_value_accessors_reject_with_codes():
    with pytest.raises(Reject) as e:
        Record("k", "{oops").value_json()
    assert e.value.code == "bad-json"
    with pytest.raises(Reject) as e:
        Record("k", None).value_json()
    assert e.value.code == "bad-json"
    with pytest.raises(Reject) as e:
        Record("k", "NaN").value_json()
    assert e.value.code == "bad-json"
    with pytest.raises(Reject) as e:
        Record("k", None).value_text()
    assert e.value.code == "null-value"
    with pytest.raises(Reject) as e:
        Record("k", b"\xff").value_text()
    assert e.value.code == "bad-utf8"
    with pytest.raises(Reject) as e:
        Record(b"\xff", "v").key_text()
    assert e.value.code == "bad-utf8"


def test_wrong_types_are_type_errors():
    with pytest.raises(TypeError):
        Record(key=1)
    with pytest.raises(TypeError):
        Record().with_key({"a": 1})
    with pytest.raises(ValueError):
        Record().with_value({"x": float("nan")})


def test_reject_is_an_exception_with_code_and_message():
    e = Reject("bad-json", "expected value")
    assert (e.code, e.message) == ("bad-json", "expected value")
    assert str(e) == "bad-json: expected value"
    assert e == Reject("bad-json", "expected value") and e != Reject("x")


def test_config_parses_with_defaults_and_names_bad_keys():
    c = Config([("n", "5"), ("x", "five"), ("f", "2.5"), ("b", "yes"), ("n", "6")])
    assert c.parse("n", 1) == 6  # the last value of a key wins, as in Rust
    assert c.parse("absent", 7) == 7
    assert c.parse("f", 0.0) == 2.5
    assert c.parse("n", 0.0) == 6.0 and isinstance(c.parse("n", 0.0), float)
    assert c.parse("b", False) is True
    assert c.parse("x", None) == "five"
    assert c.parse("f", None, convert=float) == 2.5
    with pytest.raises(Reject) as e:
        c.parse("x", 0)
    assert e.value.code == "bad-config" and "`x`" in e.value.message
    with pytest.raises(Reject):
        c.parse("x", True)
