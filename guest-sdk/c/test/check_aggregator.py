#!/usr/bin/env python3
"""Checks the aggregator probe (test/probe-aggregator/probe.c) through the
component model: init and the log import, `add` threading each key's
aggregate through a batch (stored aggregates, rejections that leave the
aggregate as it was, a stored aggregate that is not JSON), `merge` with and
without a key, a malformed frame (an error result), a state call (which
this world has not got) and a trap. Needs `pip install wasmtime`.
Usage: check_aggregator.py PROBE_AGGREGATOR_COMPONENT.wasm"""
import json
import os
import sys

import wasmtime
import wasmtime.component as wc

sys.path.insert(0, os.path.dirname(__file__))
from run_component import decode_output, encode_input  # noqa: E402

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


class Aggregator:
    """The component, linked with the log import only: the world of an
    aggregator (a component that imported `state` would fail here)."""

    def __init__(self, path):
        engine = wasmtime.Engine()
        self.store = wasmtime.Store(engine)
        self.logs = []
        linker = wc.Linker(engine)
        with linker.root() as root:
            with root.add_instance("sluice:plugin/log@0.1.0") as log:
                log.add_func("log", lambda _s, level, msg: self.logs.append((level, msg)))
        component = wc.Component.from_file(engine, path)
        instance = linker.instantiate(self.store, component)
        iface = instance.get_export_index(self.store, "sluice:plugin/aggregator@0.1.0")
        if iface is None:
            raise SystemExit("the component does not export sluice:plugin/aggregator@0.1.0")
        self.fns = {name: instance.get_func(self.store, instance.get_export_index(self.store, name, iface))
                    for name in ("init", "add", "merge")}

    def call(self, name, *args):
        fn = self.fns[name]
        result = fn(self.store, *args)
        fn.post_return(self.store)
        return result


def aggregates(out, n):
    """Each status: the aggregate (parsed) or ("rejected", code, message)."""
    got = []
    for kind, payload in decode_output(bytes(out), n):
        if kind == "rejected":
            got.append(("rejected",) + payload)
        else:
            assert len(payload) == 1, payload
            rec = payload[0]
            got.append((rec["key"], json.loads(rec["value"]), rec["timestamp"], rec["headers"]))
    return got


p = Aggregator(sys.argv[1])
check("init returns ok", p.call("init", [("greeting", "hi")]) is None)
check("init logs through sluice:plugin/log",
      p.logs[:1] == [("info", "probe-aggregator: 1 config entries, greeting=hi")], p.logs)

stored = [{"key": "c", "value": '{"n":10,"count":4}'}, {"key": "d", "value": "garbage"},
          {"key": "e", "value": None}]
batch = [{"key": "a", "value": '{"n":1.5}', "timestamp": 7}, {"key": "a", "value": "oops"},
         {"key": "a", "value": '{"n":2}'}, {"key": "c", "value": '{"n":1}'},
         {"key": "d", "value": '{"n":1}'}, {"key": "e", "value": '{"n":0.25}'},
         {"key": "refuse", "value": '{"n":1}'}, {"key": "b", "value": "state"}]
out = p.call("add", encode_input(stored), encode_input(batch))
check("add returns a frame", isinstance(out, (bytes, bytearray)), out)
got = aggregates(out, len(batch))
check("first record of a key starts from initial, timestamp absent, no headers",
      got[0] == (b"a", {"n": 1.5, "count": 1}, None, []), got[0])
check("a rejection", got[1] == ("rejected", "bad-n", "no numeric `n`"), got[1])
check("the next record adds to the aggregate before the rejection",
      got[2][:2] == (b"a", {"n": 3.5, "count": 2}), got[2])
check("a stored aggregate is added to", got[3][:2] == (b"c", {"n": 11, "count": 5}), got[3])
check("a stored aggregate that is not JSON: bad-aggregate",
      got[4] == ("rejected", "bad-aggregate",
                 "the stored aggregate is not JSON: expected a value at byte 0"), got[4])
check("a stored null starts from initial", got[5][:2] == (b"e", {"n": 0.25, "count": 1}), got[5])
check("initial may reject", got[6] == ("rejected", "no-start", "not this key"), got[6])
check("no state in this world",
      got[7][:2] == ("rejected", "no-state"), got[7])
check("debug log from add", ("debug", "probe-aggregator: a += 1.5") in p.logs, p.logs)

err = p.call("add", encode_input([]), b"\x01\x02\x00\x00\x00")
check("malformed batch: an error result",
      getattr(err, "code", None) == "bad-frame" and err.message == "frame truncated at byte 5", err)
err = p.call("add", b"\x01", encode_input(batch))
check("malformed aggregates: an error result", getattr(err, "code", None) == "bad-frame", err)
out = p.call("add", encode_input([]), encode_input([]))
check("empty batch", bytes(out) == b"\x01\x00\x00\x00\x00", out)

merged = p.call("merge", b"u1", b'{"n":2,"count":1}', b'{"n":0.5,"count":3}')
check("merge", isinstance(merged, (bytes, bytearray))
      and json.loads(bytes(merged)) == {"n": 2.5, "count": 4, "key": "u1"}, merged)
err = p.call("merge", None, b"{}", b"{}")
check("merge without a key reaches the plugin as none",
      getattr(err, "code", None) == "no-key", err)
err = p.call("merge", b"u1", b"{", b"{}")
check("merge of an aggregate that is not JSON: bad-aggregate",
      getattr(err, "code", None) == "bad-aggregate", err)

# Many calls, to see memory freed between them.
big = [{"key": f"k{i % 50}", "value": '{"n":1}' if i % 3 else "x" * 300} for i in range(600)]
ok = True
for _ in range(30):
    got = aggregates(p.call("add", encode_input([]), encode_input(big)), len(big))
    ok = ok and got[0][0] == "rejected" and got[599][1]["count"] == 8
check("many large batches", ok)

try:
    p.call("add", encode_input([]), encode_input([{"key": "z", "value": "trap"}]))
    check("trap fails the call", False, "no trap")
except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
    check("trap fails the call", "unreachable" in str(e), str(e))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
