"""End to end: build real components with build.py and run them under
wasmtime (pip's ``wasmtime``, with its component model API), through the
same frames the host sends. Skipped unless ``wasmtime`` and componentize-py
are installed; each build takes ~15 s and ~400 MB:

    pip install wasmtime==50.0.1   # into a venv of its own
    PATH="$T/bin:$PATH" python -m pytest guest-sdk/python/tests/test_component.py
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

wasmtime = pytest.importorskip("wasmtime")
component = pytest.importorskip("wasmtime.component")

from sluice_sdk import Record, Reject  # noqa: E402
from sluice_sdk.frame import decode_output, encode_input  # noqa: E402

SDK = Path(__file__).resolve().parents[1]
REPO = SDK.parents[1]
HAS_TOOL = (Path(sys.executable).parent / "componentize-py").exists() or shutil.which(
    "componentize-py"
)
pytestmark = pytest.mark.skipif(not HAS_TOOL, reason="componentize-py is not installed")
IMPORTS = {
    "sluice:plugin/log@0.1.0",
    "sluice:plugin/state@0.1.0",
    "sluice:plugin/types@0.1.0",
}
AGGREGATOR_IMPORTS = {"sluice:plugin/log@0.1.0", "sluice:plugin/types@0.1.0"}


class Trapped(Exception):
    pass


class Host:
    """A minimal Sluice host: log and state imports, a fresh instance per
    ``start``, traps raised as :class:`Trapped`."""

    compiled = {}  # path -> (engine, component): compiling takes seconds

    def __init__(self, path, stores=("counts",), interface="processor", funcs=("init", "process")):
        if path not in Host.compiled:
            engine = wasmtime.Engine()
            Host.compiled[path] = (engine, component.Component.from_file(engine, str(path)))
        self.engine, self.component = Host.compiled[path]
        self.declared = set(stores)
        self.interface, self.funcs = interface, funcs
        self.logs = []
        self.stores = {}
        self.linker = component.Linker(self.engine)
        with self.linker.root() as root:
            with root.add_instance("sluice:plugin/log@0.1.0") as log:
                log.add_func("log", self._log)
            if interface == "aggregator":  # the record-aggregator world has no state
                return
            with root.add_instance("sluice:plugin/state@0.1.0") as st:
                st.add_func("get", self._get)
                st.add_func("put", self._put)
                st.add_func("delete", self._delete)
                st.add_func("range", self._range)

    def start(self, config=()):
        self.store = wasmtime.Store(self.engine)
        instance = self.linker.instantiate(self.store, self.component)
        iface = instance.get_export_index(self.store, f"sluice:plugin/{self.interface}@0.1.0")
        get = lambda name: instance.get_func(  # noqa: E731
            self.store, instance.get_export_index(self.store, name, iface)
        )
        self.exports = {name: get(name) for name in self.funcs}
        return self._call(self.exports["init"], list(config))

    def process(self, batch):
        return self._call(self.exports["process"], batch)

    def add(self, aggregates, batch):
        return self._call(self.exports["add"], aggregates, batch)

    def merge(self, key, a, b):
        return self._call(self.exports["merge"], key, a, b)

    def _call(self, func, *args):
        try:
            result = func(self.store, *args)
        except Exception as e:  # a trap, or a host function's failure (also a trap)
            raise Trapped(f"{type(e).__name__}: {e}") from None
        func.post_return(self.store)
        return result

    def _log(self, store, level, message):
        self.logs.append((level, message))

    def _store(self, name):
        if name not in self.declared:  # as the host: a sandbox violation traps
            raise RuntimeError(f"store {name} is not declared")
        return self.stores.setdefault(name, {})

    def _get(self, store, name, key):
        return self._store(name).get(key)

    def _put(self, store, name, key, value):
        self._store(name)[key] = value

    def _delete(self, store, name, key):
        self._store(name).pop(key, None)

    def _range(self, store, name, start, end, limit):
        items = sorted(self._store(name).items())
        return [
            (k, v) for k, v in items if (start is None or k >= start) and (end is None or k < end)
        ][:limit]


def build(plugin, out, world="record-processor"):
    """Builds ``plugin``; ``world=None`` leaves it to build.py to detect."""
    started = __import__("time").monotonic()
    p = subprocess.run(
        [sys.executable, str(SDK / "build.py"), "--plugin", str(plugin), "--wit",
         str(REPO / "wit"), *(["--world", world] if world else []), "--out", str(out)],
        capture_output=True, text=True,
    )
    assert p.returncode == 0, p.stderr
    print(p.stderr.strip(), f"({__import__('time').monotonic() - started:.1f} s)")
    return out


def imports_and_exports(path):
    tool = shutil.which("wasm-tools")
    if tool is None:
        return None
    wit = subprocess.run([tool, "component", "wit", str(path)], capture_output=True, text=True).stdout
    lines = [line.strip().rstrip(";") for line in wit.splitlines()]
    imports = {line.split()[1] for line in lines if line.startswith("import ")}
    exports = {line.split()[1] for line in lines if line.startswith("export ")}
    return imports, exports


@pytest.fixture(scope="module")
def markers(tmp_path_factory):
    return build(SDK / "tests/fixtures/markers", tmp_path_factory.mktemp("c") / "markers.wasm")


@pytest.fixture(scope="module")
def large_orders(tmp_path_factory):
    return build(REPO / "plugins/large-orders-py", tmp_path_factory.mktemp("c") / "lo.wasm")


def is_err(result):
    return isinstance(result, component.Record)


def test_imports_only_the_sluice_interfaces(markers):
    found = imports_and_exports(markers)
    if found is None:
        pytest.skip("wasm-tools is not installed")
    imports, exports = found
    assert imports == IMPORTS
    assert "sluice:plugin/processor@0.1.0" in exports


def test_ok_reject_and_pass_through_in_one_frame(markers):
    host = Host(markers)
    assert host.start([("suffix", "!")]) is None
    out = host.process(
        encode_input(
            [
                Record("a", "hello", 5, [("h", b"1")]),
                Record(None, "REJECT me"),
                Record("c", "LOG"),
                Record(b"\x00", None),
            ]
        )
    )
    assert not is_err(out)
    assert decode_output(out) == [
        [Record("a", "hello!", 5, [("h", b"1")])],
        Reject("rejected-marker", "REJECT me"),
        [],
        Reject("null-value", "the record has no value"),
    ]
    assert ("warn", "warned from the plugin") in host.logs
    assert ("info", "printed line") in host.logs  # print() goes to the log


def test_empty_batch(markers):
    host = Host(markers)
    host.start()
    assert decode_output(host.process(encode_input([]))) == []


def test_state_survives_batches_of_one_instance(markers):
    host = Host(markers)
    host.start()
    for expected in (b"1", b"2"):
        (status,) = decode_output(host.process(encode_input([Record("k", "COUNT")])))
        assert status[0].value == expected
    assert host.stores["counts"] == {b"k": b"2"}


@pytest.mark.parametrize("marker", ["TRAP", "ERR", "BAD-RETURN", "UNDECLARED"])
def test_exceptions_trap_and_are_logged(markers, marker):
    host = Host(markers)
    host.start()
    with pytest.raises(Trapped) as e:
        host.process(encode_input([Record("k", "fine"), Record("k", marker)]))
    assert "unreachable" in str(e.value) or "not declared" in str(e.value)
    if marker != "UNDECLARED":  # that one is the host's trap, not Python's
        errors = [m for level, m in host.logs if level == "error"]
        assert errors and errors[0].startswith("trap: uncaught exception"), host.logs
        assert "Traceback (most recent call last):" in errors[0]


def test_malformed_frame_is_the_error_result(markers):
    host = Host(markers)
    host.start()
    result = host.process(b"\x01\x05\x00\x00\x00")
    assert is_err(result)
    assert result.code == "bad-frame" and "truncated" in result.message


def test_init_reject_is_the_error_result_and_other_exceptions_trap(markers):
    host = Host(markers)
    err = host.start([("fail", "reject")])
    assert is_err(err) and (err.code, err.message) == ("bad-config", "told to fail")
    with pytest.raises(Trapped):
        host.start([("fail", "trap")])


def test_large_orders_py(large_orders):
    def order(key, amount, customer="c-9"):
        value = '{"order_id":"%s","customer_id":"%s","amount":%s}' % (key, customer, amount)
        return Record(key, value, 5)

    host = Host(large_orders, stores=())
    assert host.start([("min.amount", "10000")]) is None
    batch = [
        order("o1", "10000.01"),
        order("o2", "10000"),
        Record("o3", "{oops"),
        order("o4", '"lots"'),
        order("o5", "99999", customer="c-42"),
    ]
    statuses = decode_output(host.process(encode_input(batch)))
    assert statuses[0] == [batch[0].with_key("c-9")]
    assert statuses[1] == []
    assert statuses[2].code == "bad-json"
    assert statuses[3].code == "bad-json"
    assert statuses[4] == [batch[4].with_key("c-42")]
    err = Host(large_orders, stores=()).start([("min.amount", "lots")])
    assert is_err(err) and err.code == "bad-config"


@pytest.fixture(scope="module")
def parse(tmp_path_factory):
    return build(REPO / "plugins/polyglot/parse", tmp_path_factory.mktemp("c") / "parse.wasm")


def test_polyglot_parse(parse):
    found = imports_and_exports(parse)
    if found is not None:
        assert found[0] == IMPORTS and "sluice:plugin/processor@0.1.0" in found[1]
    host = Host(parse, stores=())
    assert host.start() is None
    statuses = decode_output(
        host.process(encode_input([Record("x", "t-1,acct-7,12.50,4111111111111111", 9), Record("x", "t-2,acct-7,abc,4111")]))
    )
    assert statuses[0] == [
        Record("acct-7", b'{"txn":"t-1","account":"acct-7","amount":12.5}', 9, [("card", b"4111111111111111")])
    ]
    assert statuses[1].code == "bad-line"


@pytest.fixture(scope="module")
def tally(tmp_path_factory):
    return build(SDK / "tests/fixtures/tally", tmp_path_factory.mktemp("c") / "tally.wasm", world=None)


def aggregator_host(path):
    return Host(path, stores=(), interface="aggregator", funcs=("init", "add", "merge"))


def test_an_aggregator_imports_only_log_and_types(tally):
    found = imports_and_exports(tally)
    if found is None:
        pytest.skip("wasm-tools is not installed")
    imports, exports = found
    assert imports == AGGREGATOR_IMPORTS
    assert "sluice:plugin/aggregator@0.1.0" in exports
    assert "sluice:plugin/processor@0.1.0" not in exports


def test_aggregates_are_threaded_per_key_and_rejections_leave_them(tally):
    host = aggregator_host(tally)
    assert host.start([("step", "2")]) is None
    aggregates = encode_input([Record("a", b'{"n":10,"seen":["old"]}'), Record("b", None)])
    batch = encode_input(
        [
            Record("a", "x", 5, [("h", b"1")]),
            Record("b", "y"),
            Record("a", "REJECT me"),
            Record("a", "LOG"),
            Record(None, "z"),
        ]
    )
    out = host.add(aggregates, batch)
    assert not is_err(out), out
    assert decode_output(out) == [
        [Record("a", b'{"n":12,"seen":["old","x"]}')],
        [Record("b", b'{"n":2,"seen":["y"]}')],
        Reject("rejected-marker", "REJECT me"),
        [Record("a", b'{"n":14,"seen":["old","x","LOG"]}')],
        [Record(None, b'{"n":2,"seen":["z"]}')],
    ]
    assert ("info", "printed line") in host.logs
    assert decode_output(host.add(encode_input([]), encode_input([]))) == []


def test_a_bad_stored_aggregate_rejects_and_a_malformed_frame_is_the_error_result(tally):
    host = aggregator_host(tally)
    host.start()
    (status,) = decode_output(host.add(encode_input([Record("a", b"{nope")]), encode_input([Record("a", "x")])))
    assert status.code == "bad-aggregate"
    result = host.add(encode_input([]), b"\x01\x05\x00\x00\x00")
    assert is_err(result) and result.code == "bad-frame" and "truncated" in result.message


def test_an_exception_in_add_traps_and_is_logged(tally):
    host = aggregator_host(tally)
    host.start()
    with pytest.raises(Trapped) as e:
        host.add(encode_input([]), encode_input([Record("k", "fine"), Record("k", "TRAP")]))
    assert "unreachable" in str(e.value)
    errors = [m for level, m in host.logs if level == "error"]
    assert errors and errors[0].startswith("trap: uncaught exception")
    assert "ValueError: trap marker" in errors[0] and 'File "app.py"' in errors[0]


def test_merge_and_its_refusals_are_results(tally):
    host = aggregator_host(tally)
    host.start()
    merged = host.merge(b"k", b'{"n":1,"seen":["a"]}', b'{"n":2,"seen":["b"]}')
    assert merged == b'{"n":3,"seen":["a","b"]}'
    err = host.merge(b"refuse", b'{"n":1,"seen":[]}', b'{"n":1,"seen":[]}')
    assert is_err(err) and (err.code, err.message) == ("no-merge", "told to refuse")
    err = host.merge(None, b"{", b'{"n":1,"seen":[]}')
    assert is_err(err) and err.code == "bad-aggregate"


def test_an_aggregators_init_reject_is_the_error_result(tally):
    err = aggregator_host(tally).start([("fail", "reject")])
    assert is_err(err) and (err.code, err.message) == ("bad-config", "told to fail")
    err = aggregator_host(tally).start([("step", "many")])
    assert is_err(err) and err.code == "bad-config"
