#!/usr/bin/env python3
"""Checks the probe plugin (test/probe/probe.c) through the component model:
log and state imports, rejections (the plugin's and the host's state
errors), a malformed frame (a returned error), and a trap. Needs
`pip install wasmtime`. Usage: check_probe.py PROBE_COMPONENT.wasm"""
import sys

import wasmtime

sys.path.insert(0, __import__("os").path.dirname(__file__))
from run_component import Plugin, decode_output, encode_input  # noqa: E402

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


p = Plugin(sys.argv[1], quiet=True)
check("init returns ok", p.init([("greeting", "hello"), ("x", "y")]) is None)
check("init logs through sluice:plugin/log",
      p.logs and p.logs[0] == ("info", "probe: 2 config entries, greeting=hello"), p.logs)

recs = [{"key": "a", "value": "1", "timestamp": 5}, {"key": "b", "value": "bad"},
        {"key": "a", "value": "2"}, {"key": "c", "value": "3", "headers": {"n": "old", "h": None}},
        {"key": "d", "value": "nostore"}]
out = p.process(encode_input(recs))
check("process returns a frame", isinstance(out, (bytes, bytearray)), out)
st = decode_output(bytes(out), len(recs))
check("first key passes with its timestamp",
      st[0][0] == "ok" and len(st[0][1]) == 1 and st[0][1][0]["timestamp"] == 5
      and st[0][1][0]["headers"] == [("n", b"1")], st[0])
check("plugin rejection", st[1] == ("rejected", ("bad-value", "refused")), st[1])
check("repeated key dropped via state", st[2] == ("ok", []), st[2])
check("state range counts keys; header replaced in place",
      st[3][0] == "ok" and st[3][1][0]["headers"] == [("n", b"2"), ("h", None)], st[3])
check("host state error becomes the rejection",
      st[4] == ("rejected", ("no-store", "store `other` is not declared")), st[4])
check("debug log from process", ("debug", "probe: drop repeated key a") in p.logs, p.logs)
check("state kept in the host", p.state == {b"a": b"1", b"c": b"1"}, p.state)

err = p.process(b"\x01\x02\x00\x00\x00")
check("malformed frame: an error result",
      getattr(err, "code", None) == "bad-frame"
      and err.message == "frame truncated at byte 5", err)
err = p.process(b"\x02\x00\x00\x00\x00")
check("wrong version: an error result", getattr(err, "code", None) == "bad-frame", err)
out = p.process(encode_input([]))
check("empty batch", bytes(out) == b"\x01\x00\x00\x00\x00", out)

# Many large calls, passing and rejecting.
big = [{"key": f"k{i}", "value": "x" * 200 if i % 2 else "bad", "headers": {"h": "v" * 50}}
       for i in range(500)]
ok = True
for _ in range(40):
    st = decode_output(bytes(p.process(encode_input(big))), len(big))
    ok = ok and st[0][0] == "rejected" and st[1][0] == "ok"
check("many large batches", ok)

try:
    p.process(encode_input([{"key": "z", "value": "trap"}]))
    check("trap fails the call", False, "no trap")
except wasmtime.Trap as e:
    check("trap fails the call", "unreachable" in str(e), str(e))
except wasmtime.WasmtimeError as e:
    check("trap fails the call", "unreachable" in str(e), str(e))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
