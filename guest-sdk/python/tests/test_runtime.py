"""Processors through the frame path, as the component runs them."""
import pytest

from sluice_sdk import Record, Reject, log, processor, state, testing
from sluice_sdk.frame import FrameError, decode_output, encode_input
from sluice_sdk.runtime import instantiate, process_frame, registered


def split_words(record):
    text = record.value_text()
    if not text:
        raise Reject("empty", "nothing to split")
    return [record.with_value(w) for w in text.split(" ")]


def test_flat_map_reject_and_pass_through_keep_one_status_per_record():
    results = testing.run_batch(
        split_words,
        [
            Record("a", "x y", 5),
            Record("b", ""),
            Record("c", "z", headers=[("h", "v")]),
            Record("d", None),
        ],
    )
    assert len(results) == 4
    assert [r.value for r in results[0]] == [b"x", b"y"]
    assert results[0][1].timestamp == 5 and results[0][1].key == b"a"
    assert results[1] == Reject("empty", "nothing to split")
    assert results[2][0].header("h") == b"v"
    assert results[3].code == "null-value"


def test_return_forms():
    assert testing.run(lambda r: None, Record("k", "v")) == []
    assert testing.run(lambda r: r, Record("k", "v", 3)) == [Record("k", "v", 3)]
    assert testing.run(lambda r: (r for _ in range(3)), Record("k", "v")) == [Record("k", "v")] * 3
    assert testing.run(lambda r: (), Record("k", "v")) == []


def test_wrong_return_types_are_errors_not_rejections():
    with pytest.raises(TypeError):
        testing.run(lambda r: "text", Record("k", "v"))
    with pytest.raises(TypeError):
        testing.run(lambda r: [r, 1], Record("k", "v"))
    with pytest.raises(TypeError):
        testing.run(lambda r: 5, Record("k", "v"))


def test_other_exceptions_propagate_as_traps():
    def boom(record):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        testing.run_batch(boom, [Record("k", "v")])


def test_run_raises_the_rejection():
    with pytest.raises(Reject) as e:
        testing.run(split_words, Record("k", ""))
    assert e.value.code == "empty"


def test_a_generator_that_rejects_midway_emits_nothing():
    def gen(record):
        yield record
        raise Reject("half", "changed my mind")

    (status,) = testing.run_batch(gen, [Record("k", "v")])
    assert status == Reject("half", "changed my mind")


class Counter:
    def __init__(self, config):
        self.step = config.parse("step", 1)
        self.seen = 0

    def process(self, record):
        self.seen += self.step
        return record.with_value(str(self.seen))


def test_stateful_class_keeps_state_across_records_and_reads_config():
    out = testing.run_processor(Counter, {"step": "10"}, [Record("k", ""), Record("k", "")])
    assert out[1][0].value == b"20"
    with pytest.raises(Reject) as e:
        testing.run_processor(Counter, {"step": "x"}, [])
    assert e.value.code == "bad-config"


def test_function_with_config_and_class_without_init():
    def tag(record, config):
        return record.with_header("tag", config.get("tag", "none"))

    class Upper:
        def process(self, record):
            return record.with_value(record.value_text().upper())

    assert testing.run(tag, Record("k", "v"), {"tag": "t"})[0].header("tag") == b"t"
    assert testing.run(tag, Record("k", "v"))[0].header("tag") == b"none"
    assert testing.run(Upper, Record("k", "v"))[0].value == b"V"


def test_processor_decorator_registers_and_returns_the_object():
    def f(record):
        return record

    before = len(registered)
    assert processor(f) is f
    assert processor(f) is f  # twice is once
    assert registered[before:] == [f]
    registered.remove(f)
    with pytest.raises(TypeError):
        processor(42)


def test_process_frame_decodes_runs_and_encodes():
    process = instantiate(split_words)
    out = process_frame(process, encode_input([Record("a", "p q"), Record("b", "")]))
    assert decode_output(out) == [
        [Record("a", "p"), Record("a", "q")],
        Reject("empty", "nothing to split"),
    ]
    with pytest.raises(FrameError):
        process_frame(process, b"\x01\x01\x00\x00\x00")


def test_state_in_memory_through_the_store_api():
    testing.clear_state()
    seen = state.Store("seen")

    def dedup(record):
        if seen.get(record.key) is None:
            seen.put(record.key, b"1")
            return record
        return None

    results = testing.run_batch(dedup, [Record("k", "a"), Record("k", "b"), Record("j", "c")])
    assert [len(r) for r in results] == [1, 0, 1]
    seen.put_json("z", {"n": 1})
    assert seen.get_json("z") == {"n": 1} and seen.get_json("nope", 0) == 0
    assert seen.range(limit=10) == [(b"j", b"1"), (b"k", b"1"), (b"z", b'{"n":1}')]
    assert seen.range(b"k", b"z", limit=10) == [(b"k", b"1")]
    assert seen.range(limit=1) == [(b"j", b"1")]
    seen.delete("k")
    assert seen.get("k") is None
    testing.clear_state()
    assert seen.get("j") is None


def test_backends_are_substitutable():
    lines = []

    class Capture:
        def log(self, level, message):
            lines.append((level, message))

    class Failing(state.MemoryBackend):
        def get(self, store, key):
            raise state.StateError("no-store", f"store {store} is not reachable")

    old_log, old_state = log.backend, state.backend
    log.backend, state.backend = Capture(), Failing()
    try:
        log.info("hello")
        log.error("bad")
        (status,) = testing.run_batch(lambda r: state.Store("s").get(r.key), [Record("k", "v")])
    finally:
        log.backend, state.backend = old_log, old_state
    assert lines == [(log.INFO, "hello"), (log.ERROR, "bad")]
    # A state failure left uncaught rejects the record, with the host's code.
    assert isinstance(status, Reject) and status.code == "no-store"
