"""The golden frame vectors of wit/frames/ (see its README.md), read alike
by every SDK's tests: each valid vector decodes to its JSON and its JSON
encodes to its bytes; each malformed one is refused with a FrameError.

This suite also holds the C SDK's companion files to their JSON: each
``<name>.txt`` must be :func:`render_txt` of ``<name>.json``. After
editing a vector,
``PYTHONPATH=guest-sdk/python python guest-sdk/python/tests/test_frame_vectors.py``
rewrites every ``.txt``.
"""
import json
from pathlib import Path

import pytest

from sluice_sdk import Record, Reject
from sluice_sdk.frame import (
    FrameError,
    decode_input,
    decode_output,
    encode_input,
    encode_output,
)

FRAMES = Path(__file__).resolve().parents[3] / "wit" / "frames"
NAMES = sorted(p.stem for p in FRAMES.glob("*.json"))


def _unhex(text):
    return bytes.fromhex("".join(text.split()))


def _load(name):
    return json.loads((FRAMES / f"{name}.json").read_text(encoding="utf-8"))


def _bytes(j):
    if j is None:
        return None
    if set(j) == {"utf8"}:
        return j["utf8"].encode("utf-8")
    assert set(j) == {"hex"}, j
    return _unhex(j["hex"])


def _record(j):
    return Record(
        _bytes(j["key"]),
        _bytes(j["value"]),
        j["timestamp"],
        [(name, _bytes(value)) for name, value in j["headers"]],
    )


def _status(j):
    if "rejected" in j:
        return Reject(j["rejected"]["code"], j["rejected"]["message"])
    return [_record(r) for r in j["ok"]]


def _plain(rec):
    b = lambda x: None if x is None else bytes(x).hex()  # noqa: E731
    return (
        b(rec.key),
        b(rec.value),
        rec.timestamp,
        [(name, b(value)) for name, value in rec.headers],
    )


def _plain_status(s):
    if isinstance(s, Reject):
        return ("rejected", s.code, s.message)
    return ("ok", [_plain(r) for r in s])


def test_the_vectors_are_there():
    assert len(NAMES) >= 8, f"only {len(NAMES)} vectors in {FRAMES}"


@pytest.mark.parametrize("name", NAMES)
def test_golden_frame(name):
    want = _load(name)
    frame = _unhex((FRAMES / f"{name}.hex").read_text())
    direction = want["direction"]
    assert direction in ("input", "output")
    decode = decode_input if direction == "input" else decode_output
    if want.get("error") is True:
        with pytest.raises(FrameError):
            decode(frame)
        return
    if direction == "input":
        records = [_record(r) for r in want["records"]]
        assert [_plain(r) for r in decode(frame)] == [_plain(r) for r in records]
        assert encode_input(records).hex() == frame.hex()
    else:
        statuses = [_status(s) for s in want["statuses"]]
        assert [_plain_status(s) for s in decode(frame)] == [
            _plain_status(s) for s in statuses
        ]
        assert encode_output(statuses).hex() == frame.hex()


# ------------------------------------------------------------------ C companions


def _txt_bytes(j):
    data = _bytes(j)
    return "-" if data is None else "x" + data.hex()


def _txt_record(j, out):
    ts = "-" if j["timestamp"] is None else str(j["timestamp"])
    out.append(f"record {ts} {_txt_bytes(j['key'])} {_txt_bytes(j['value'])} {len(j['headers'])}")
    for name, value in j["headers"]:
        out.append(f"header {_txt_bytes({'utf8': name})} {_txt_bytes(value)}")


def render_txt(j):
    """The line-based twin of a vector's JSON that the C tests read (the
    format is in wit/frames/README.md)."""
    if j.get("error") is True:
        return f"error {j['direction']}\n"
    out = []
    if j["direction"] == "input":
        out.append(f"input {len(j['records'])}")
        for r in j["records"]:
            _txt_record(r, out)
    else:
        out.append(f"output {len(j['statuses'])}")
        for s in j["statuses"]:
            if "rejected" in s:
                code = _txt_bytes({"utf8": s["rejected"]["code"]})
                message = _txt_bytes({"utf8": s["rejected"]["message"]})
                out.append(f"rejected {code} {message}")
            else:
                out.append(f"ok {len(s['ok'])}")
                for r in s["ok"]:
                    _txt_record(r, out)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("name", NAMES)
def test_c_companion_matches_the_json(name):
    txt = FRAMES / f"{name}.txt"
    assert txt.exists(), f"{txt} is missing: run python {__file__}"
    assert txt.read_text() == render_txt(_load(name)), f"{txt} is stale: run python {__file__}"


if __name__ == "__main__":
    for name in NAMES:
        (FRAMES / f"{name}.txt").write_text(render_txt(_load(name)))
    print(f"wrote {len(NAMES)} .txt files in {FRAMES}")
