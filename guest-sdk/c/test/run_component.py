#!/usr/bin/env python3
"""Run a Sluice processor component on a JSONL sample, without Kafka or the
host: a check of a C plugin end to end through the component model (needs
`pip install wasmtime`).

It encodes the input frame (wit/FRAME.md) in Python, independently of the C
SDK, calls `init` and `process` through wasmtime's component API, decodes
the output frame, and turns statuses into the records a pipeline would
write: ok records to the sink topic (timestamp absent = the input's),
rejected records to `<app>-dlq` with the input value and the
`sluice.error.*` headers.

    run_component.py COMPONENT INPUT.jsonl --app checksum-c --sink cards-valid \
        [--config header=card] [--expect expected.jsonl] [--batch N]

With --expect it compares per key, in order (headers of an expected line
are a subset; values compared as JSON), prints `N passed, M failed` and
exits non-zero on a difference. Log lines go to stderr; the only state
store is an in-memory `seen`.
"""
import argparse
import json
import struct
import sys

import wasmtime
import wasmtime.component as wc

NULL = 0xFFFFFFFF
LEVELS = ["trace", "debug", "info", "warn", "error"]


def to_bytes(v):
    if v is None:
        return None
    if isinstance(v, str):
        return v.encode()
    return json.dumps(v, separators=(",", ":")).encode()


def put_bytes(out, b):
    if b is None:
        out += struct.pack("<I", NULL)
    else:
        out += struct.pack("<I", len(b)) + b


def encode_input(records):
    out = bytearray(struct.pack("<BI", 1, len(records)))
    for r in records:
        ts = r.get("timestamp")
        out += struct.pack("<qB", ts or 0, 1 if ts is not None else 0)
        put_bytes(out, to_bytes(r.get("key")))
        put_bytes(out, to_bytes(r.get("value")))
        headers = r.get("headers") or {}
        out += struct.pack("<I", len(headers))
        for name, value in headers.items():
            put_bytes(out, name.encode())
            put_bytes(out, to_bytes(value))
    return bytes(out)


class Reader:
    def __init__(self, buf):
        self.buf, self.pos = buf, 0

    def take(self, n):
        if n > len(self.buf) - self.pos:
            raise ValueError(f"output frame truncated at byte {self.pos}")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def bytes(self):
        n = self.u32()
        return None if n == NULL else self.take(n)

    def string(self):
        b = self.bytes()
        if b is None:
            raise ValueError("null string in output frame")
        return b.decode("utf-8")  # raises on invalid UTF-8, like the host

    def record(self):
        ts, flags = struct.unpack("<qB", self.take(9))
        key, value = self.bytes(), self.bytes()
        headers = [(self.string(), self.bytes()) for _ in range(self.u32())]
        return {"timestamp": ts if flags & 1 else None, "key": key, "value": value, "headers": headers}


def decode_output(buf, count):
    r = Reader(buf)
    version = r.take(1)[0]
    if version != 1:
        raise ValueError(f"output frame version {version}")
    n = r.u32()
    if n != count:
        raise ValueError(f"output frame has {n} statuses for {count} records")
    statuses = []
    for _ in range(n):
        kind = r.take(1)[0]
        if kind == 0:
            statuses.append(("ok", [r.record() for _ in range(r.u32())]))
        elif kind == 1:
            statuses.append(("rejected", (r.string(), r.string())))
        else:
            raise ValueError(f"unknown status {kind}")
    if r.pos != len(buf):
        raise ValueError(f"{len(buf) - r.pos} trailing bytes in output frame")
    return statuses


def field(v):
    if v is None:
        return None
    try:
        return json.loads(v)
    except (ValueError, UnicodeDecodeError):
        return v.decode("utf-8", "replace")


class Plugin:
    def __init__(self, path, quiet=False):
        self.quiet = quiet
        self.engine = wasmtime.Engine()
        self.component = wc.Component.from_file(self.engine, path)
        self.store = wasmtime.Store(self.engine)
        self.state = {}
        self.logs = []
        linker = wc.Linker(self.engine)
        with linker.root() as root:
            with root.add_instance("sluice:plugin/log@0.1.0") as log:
                log.add_func("log", self._log)
            with root.add_instance("sluice:plugin/state@0.1.0") as st:
                st.add_func("get", self._get)
                st.add_func("put", self._put)
                st.add_func("delete", self._delete)
                st.add_func("range", self._range)
        self.instance = linker.instantiate(self.store, self.component)
        iface = self.instance.get_export_index(self.store, "sluice:plugin/processor@0.1.0")
        if iface is None:
            raise SystemExit("the component does not export sluice:plugin/processor@0.1.0")
        self.init_fn = self.instance.get_func(
            self.store, self.instance.get_export_index(self.store, "init", iface))
        self.process_fn = self.instance.get_func(
            self.store, self.instance.get_export_index(self.store, "process", iface))

    def _log(self, _store, level, message):
        self.logs.append((level, message))
        if not self.quiet:
            print(f"[plugin {level}] {message}", file=sys.stderr)

    @staticmethod
    def _err(code, message):
        rec = wc.Record()
        rec.code, rec.message = code, message
        return rec

    def _check(self, store):
        return store == "seen"

    def _get(self, _store, store, key):
        if not self._check(store):
            # wasmtime-py cannot return the error case of
            # result<option<list<u8>>, error> (it takes any value for ok).
            raise RuntimeError(f"store `{store}` is not declared")
        return self.state.get(bytes(key))

    def _put(self, _store, store, key, value):
        if not self._check(store):
            return self._err("no-store", f"store `{store}` is not declared")
        self.state[bytes(key)] = bytes(value)
        return None

    def _delete(self, _store, store, key):
        if not self._check(store):
            return self._err("no-store", f"store `{store}` is not declared")
        self.state.pop(bytes(key), None)
        return None

    def _range(self, _store, store, start, end, limit):
        if not self._check(store):
            raise RuntimeError(f"store `{store}` is not declared")
        keys = sorted(k for k in self.state
                      if (start is None or k >= start) and (end is None or k < end))
        return [(k, self.state[k]) for k in keys[:limit]]

    def init(self, config):
        result = self.init_fn(self.store, config)
        self.init_fn.post_return(self.store)
        return result

    def process(self, frame):
        result = self.process_fn(self.store, frame)
        self.process_fn.post_return(self.store)
        return result


def run(args):
    records = [json.loads(line) for line in open(args.input) if line.strip()]
    plugin = Plugin(args.component)
    config = [tuple(kv.split("=", 1)) for kv in args.config]
    err = plugin.init(config)
    if err is not None:
        raise SystemExit(f"init failed: {err.code}: {err.message}")
    out = []
    for start in range(0, len(records), args.batch):
        batch = records[start:start + args.batch]
        result = plugin.process(encode_input(batch))
        if not isinstance(result, (bytes, bytearray)):
            raise SystemExit(f"process failed: {result.code}: {result.message}")
        for rec, (kind, payload) in zip(batch, decode_output(bytes(result), len(batch))):
            if kind == "ok":
                for o in payload:
                    out.append({"topic": args.sink, "key": field(o["key"]), "value": field(o["value"]),
                                "timestamp": o["timestamp"] if o["timestamp"] is not None else rec.get("timestamp"),
                                "headers": {n: field(v) if v is not None else None for n, v in o["headers"]}})
            else:
                code, message = payload
                headers = dict(rec.get("headers") or {})
                headers.update({"sluice.error.kind": "rejected", "sluice.error.code": code,
                                "sluice.error": message})
                out.append({"topic": f"{args.app}-dlq", "key": rec.get("key"), "value": rec.get("value"),
                            "timestamp": rec.get("timestamp"), "headers": headers})
    return out


def by_key(lines):
    keyed = {}
    for line in lines:
        keyed.setdefault(json.dumps(line.get("key")), []).append(line)
    return keyed


def matches(got, want):
    if got.get("topic") != want.get("topic") or got.get("key") != want.get("key"):
        return False
    if "value" in want and got.get("value") != want["value"]:
        return False
    return all(got["headers"].get(n) == v for n, v in (want.get("headers") or {}).items())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("component")
    p.add_argument("input")
    p.add_argument("--app", required=True)
    p.add_argument("--sink", required=True)
    p.add_argument("--config", action="append", default=[])
    p.add_argument("--expect")
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    out = run(args)
    if not args.expect:
        for line in out:
            print(json.dumps(line))
        return
    want = [json.loads(line) for line in open(args.expect) if line.strip()]
    got_k, want_k = by_key(out), by_key(want)
    passed = failed = 0
    for key in sorted(set(got_k) | set(want_k)):
        g, w = got_k.get(key, []), want_k.get(key, [])
        for i in range(max(len(g), len(w))):
            if i < len(g) and i < len(w) and matches(g[i], w[i]):
                passed += 1
            else:
                failed += 1
                print(f"key {key} #{i}: got {json.dumps(g[i]) if i < len(g) else '(nothing)'}\n"
                      f"        want {json.dumps(w[i]) if i < len(w) else '(nothing)'}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
