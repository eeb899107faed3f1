"""Aggregators through the frame path, as the component runs them; the
semantics are the Rust SDK's (guest-sdk/rust/src/aggregate.rs)."""
import math

import pytest

from sluice_sdk import Record, Reject, aggregate, aggregator, testing
from sluice_sdk.frame import FrameError, decode_output, encode_input


class Total:
    """Sums numeric values per key; keeps the count too."""

    def __init__(self, config):
        self.scale = config.parse("scale", 1.0)

    def initial(self, key):
        return {"n": 0, "sum": 0}

    def add(self, agg, record):
        agg["n"] += 1  # changed in place before a possible rejection
        value = record.value_json()
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise Reject("bad-amount", "not a number")
        agg["sum"] += value * self.scale
        return agg

    def merge(self, key, a, b):
        return {"n": a["n"] + b["n"], "sum": a["sum"] + b["sum"]}


def test_aggregates_are_threaded_per_key_and_a_rejection_leaves_them_unchanged():
    out = testing.run_aggregator(
        Total,
        {},
        [
            Record("a", "1"),
            Record("b", "10"),
            Record("a", '"x"'),  # rejected: a stays {n: 1, sum: 1} despite the in-place n += 1
            Record("a", "2"),
            Record("b", "true"),
            Record("b", "5"),
        ],
    )
    assert out == [
        {"n": 1, "sum": 1.0},
        {"n": 1, "sum": 10.0},
        Reject("bad-amount", "not a number"),
        {"n": 2, "sum": 3.0},
        Reject("bad-amount", "not a number"),
        {"n": 2, "sum": 15.0},
    ]


def test_a_rejected_first_record_starts_the_next_one_from_initial_again():
    out = testing.run_aggregator(Total, {"scale": "2"}, [Record("a", "{"), Record("a", "3")])
    assert out[0].code == "bad-json"
    assert out[1] == {"n": 1, "sum": 6.0}


def test_stored_aggregates_are_the_starting_point_and_null_means_initial():
    fold = aggregate.instantiate(Total)
    start = encode_input(
        [Record("a", b'{"n":5,"sum":50}'), Record("b", None), Record(None, b'{"n":1,"sum":1}')]
    )
    batch = encode_input([Record("a", "1", 7, [("h", "v")]), Record("b", "2"), Record(None, "3")])
    statuses = decode_output(aggregate.add_frames(fold, start, batch))
    # Ok with exactly one record: the key, the aggregate, no timestamp, no headers.
    assert statuses == [
        [Record("a", b'{"n":6,"sum":51.0}')],
        [Record("b", b'{"n":1,"sum":2.0}')],
        [Record(None, b'{"n":2,"sum":4.0}')],
    ]
    assert testing.run_aggregator(Total, {}, [Record("k", "1")], aggregates={"k": {"n": 9, "sum": 1}}) == [
        {"n": 10, "sum": 2.0}
    ]


def test_a_stored_aggregate_that_does_not_decode_rejects_each_record_of_its_key():
    fold = aggregate.instantiate(Total)
    start = encode_input([Record("a", b"{not json"), Record("b", b"NaN")])
    batch = encode_input([Record("a", "1"), Record("b", "1"), Record("a", "2"), Record("c", "1")])
    statuses = decode_output(aggregate.add_frames(fold, start, batch))
    assert [getattr(s, "code", None) for s in statuses] == ["bad-aggregate"] * 3 + [None]
    assert statuses[0].message.startswith("the stored aggregate does not decode: ")


def test_malformed_frames_are_frame_errors():
    fold = aggregate.instantiate(Total)
    good = encode_input([Record("a", "1")])
    with pytest.raises(FrameError):
        aggregate.add_frames(fold, good[:-1], good)
    with pytest.raises(FrameError):
        aggregate.add_frames(fold, encode_input([]), good + b"\x00")
    assert decode_output(aggregate.add_frames(fold, encode_input([]), encode_input([]))) == []


def test_merge_goes_through_json_and_is_refused_without_a_merge():
    assert testing.merge(Total, {"n": 1, "sum": 2}, {"n": 3, "sum": 4}, key="u") == {"n": 4, "sum": 6}
    fold = aggregate.instantiate(Total)
    assert aggregate.merge_bytes(fold, b"k", b'{"n":1,"sum":1}', b'{"n":1,"sum":2}') == b'{"n":2,"sum":3}'
    with pytest.raises(Reject) as e:
        aggregate.merge_bytes(fold, None, b"{", b"{}")
    assert e.value.code == "bad-aggregate"

    class NoMerge:
        def initial(self, key):
            return 0

        def add(self, total, record):
            return total + 1

    with pytest.raises(Reject) as e:
        testing.merge(NoMerge, 1, 2)
    assert e.value == Reject("merge-unsupported", "this aggregator does not implement `merge`")


def test_merge_sees_the_key_or_not_as_it_asks():
    seen = []

    class WithKey:
        def initial(self, key):
            return []

        def add(self, agg, record):
            return agg + [record.value_text()]

        def merge(self, key, a, b):
            seen.append(key)
            return a + b

    class WithoutKey(WithKey):
        def merge(self, a, b):
            return b + a

    assert testing.merge(WithKey, ["x"], ["y"], key="u-1") == ["x", "y"]
    assert seen == [b"u-1"]
    assert testing.merge(WithoutKey, ["x"], ["y"]) == ["y", "x"]


def test_initial_sees_the_key_or_not_as_it_asks():
    class PerKey:
        def initial(self, key):
            return {"key": None if key is None else key.decode(), "n": 0}

        def add(self, agg, record):
            agg["n"] += 1
            return agg

    class NoKey(PerKey):
        def initial(self):
            return {"n": 10}

    out = testing.run_aggregator(PerKey, {}, [Record("a", "1"), Record(None, "2")])
    assert out == [{"key": "a", "n": 1}, {"key": None, "n": 1}]
    assert testing.run_aggregator(NoKey, {}, [Record("a", "1")]) == [{"n": 11}]


def test_the_ways_to_build_an_aggregator_from_its_config():
    class Plain:
        def initial(self, key):
            return 0

        def add(self, total, record):
            return total + 1

    class InitMethod(Plain):
        def init(self, config):
            self.step = config.parse("step", 1)

        def add(self, total, record):
            return total + self.step

    class InitClassmethod(Plain):
        def __init__(self, step):
            self.step = step

        @classmethod
        def init(cls, config):
            return cls(config.parse("step", 1))

        def add(self, total, record):
            return total + self.step

    records = [Record("k", "")] * 2
    assert testing.run_aggregator(Plain, {"step": "5"}, records) == [1, 2]
    assert testing.run_aggregator(InitMethod, {"step": "5"}, records) == [5, 10]
    assert testing.run_aggregator(InitClassmethod, [("step", "3")], records) == [3, 6]
    with pytest.raises(Reject) as e:
        testing.run_aggregator(Total, {"scale": "lots"}, records)
    assert e.value.code == "bad-config" and "scale" in e.value.message


def test_aggregates_that_are_not_json_reject_the_record():
    class Odd:
        def initial(self, key):
            return 0

        def add(self, agg, record):
            text = record.value_text()
            return {"nan": math.nan, "set": {1}}.get(text, agg + 1)

    out = testing.run_aggregator(Odd, {}, [Record("k", "nan"), Record("k", "set"), Record("k", "ok")])
    assert [getattr(s, "code", s) for s in out] == ["bad-json", "bad-json", 1]


def test_returning_none_and_other_exceptions_are_traps():
    class Forgetful:
        def initial(self, key):
            return {"n": 0}

        def add(self, agg, record):
            agg["n"] += 1  # no return

    with pytest.raises(TypeError, match="returned None"):
        testing.run_aggregator(Forgetful, {}, [Record("k", "1")])

    class Boom(Total):
        def add(self, agg, record):
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        testing.run_aggregator(Boom, {}, [Record("k", "1")])


def test_the_decorator_registers_classes_with_initial_and_add_only():
    before = list(aggregate.registered)
    try:

        @aggregator
        class Counted(Total):
            pass

        assert aggregate.registered[-1] is Counted
        assert aggregator(Counted) is Counted and aggregate.registered.count(Counted) == 1
        with pytest.raises(TypeError, match="needs a class"):
            aggregator(lambda agg, record: agg)

        with pytest.raises(TypeError, match=r"no add\(\) method"):

            @aggregator
            class NoAdd:
                def initial(self, key):
                    return 0

    finally:
        aggregate.registered[:] = before
