"""The frame layout of wit/FRAME.md, byte for byte."""
import struct

import pytest

from sluice_sdk import Record, Reject
from sluice_sdk.frame import (
    FrameError,
    decode_input,
    decode_output,
    encode_input,
    encode_output,
)


def test_empty_batch_round_trips():
    assert encode_input([]) == b"\x01\x00\x00\x00\x00"
    assert decode_input(b"\x01\x00\x00\x00\x00") == []
    assert encode_output([]) == b"\x01\x00\x00\x00\x00"
    assert decode_output(encode_output([])) == []


def test_input_round_trip_keeps_nulls_timestamps_and_headers():
    records = [
        Record(None, b"v1", -5),
        Record(b"k2", None, None, [("a", b"1"), ("b", None), ("a", b"")]),
        Record(b"", b"", 0),
        Record("ключ", "значение", 1767225600000, [("ü", "ß")]),
    ]
    decoded = decode_input(encode_input(records))
    assert decoded == records
    assert decoded[0].key is None and decoded[0].timestamp == -5
    assert decoded[1].value is None and decoded[1].timestamp is None
    assert decoded[1].headers == [("a", b"1"), ("b", None), ("a", b"")]
    assert decoded[2].key == b"" and decoded[2].timestamp == 0
    assert decoded[3].key == "ключ".encode()


def test_record_bytes_follow_the_spec():
    frame = encode_input([Record(b"k", None, 7, [("h", b"x")])])
    expected = (
        b"\x01" + struct.pack("<I", 1)
        + struct.pack("<q", 7) + b"\x01"
        + struct.pack("<I", 1) + b"k"
        + b"\xff\xff\xff\xff"
        + struct.pack("<I", 1)
        + struct.pack("<I", 1) + b"h" + struct.pack("<I", 1) + b"x"
    )
    assert frame == expected
    # An absent timestamp is 0 with flag bit 0 clear.
    absent = encode_input([Record(None, None)])
    assert absent[5:14] == b"\x00" * 9


def test_output_statuses_round_trip():
    statuses = [
        [Record(b"x", b"1"), Record(b"y", b"2", 9)],
        Reject("nope", "bad input"),
        [],
        Reject("ünï", ""),
    ]
    frame = encode_output(statuses)
    assert decode_output(frame) == statuses
    # ok, count 2 | rejected, code, message | ok, count 0 | rejected
    assert frame[5] == 0 and struct.unpack_from("<I", frame, 6) == (2,)
    assert frame.endswith(b"\x01" + struct.pack("<I", 5) + "ünï".encode() + b"\x00" * 4)


@pytest.mark.parametrize(
    "frame, message",
    [
        (b"", "truncated at byte 0"),
        (b"\x02\x00\x00\x00\x00", "version 2 is not supported"),
        (b"\x01\x00\x00", "truncated at byte 1"),
        (b"\x01\x00\x00\x00\x00\x00", "1 trailing bytes"),
        (b"\x01\xff\xff\xff\xff", "cannot fit"),
    ],
)
def test_malformed_input_frames_are_frame_errors(frame, message):
    with pytest.raises(FrameError, match=message):
        decode_input(frame)


def test_every_truncation_of_a_record_is_an_error():
    frame = encode_input([Record(b"key", b"value", 1, [("h", b"v")])])
    for cut in range(len(frame)):
        with pytest.raises(FrameError):
            decode_input(frame[:cut])


def test_length_past_the_end_is_truncated_not_a_slice():
    frame = bytearray(encode_input([Record(b"key", b"v")]))
    struct.pack_into("<I", frame, 5 + 9, 0xFFFFFFFE)  # the key's length
    with pytest.raises(FrameError, match="truncated"):
        decode_input(bytes(frame))


def test_invalid_utf8_header_name_is_reported_with_offset():
    frame = bytearray(encode_input([Record(None, None, None, [("h", None)])]))
    name_at = len(frame) - 4 - 1
    frame[name_at] = 0xFF
    with pytest.raises(FrameError, match=f"string at byte {name_at - 4} is not valid UTF-8"):
        decode_input(bytes(frame))


def test_unknown_status_is_an_error():
    with pytest.raises(FrameError, match="unknown record status 7"):
        decode_output(b"\x01\x01\x00\x00\x00\x07")


def test_encoding_refuses_wrong_types():
    with pytest.raises(TypeError, match="Record.key"):
        r = Record(b"k", b"v")
        r.key = 42
        encode_input([r])
    with pytest.raises(TypeError, match="timestamp"):
        encode_input([Record(b"k", b"v", 1.5)])
    with pytest.raises(TypeError, match="Record objects"):
        encode_output([["not a record"]])


def test_corrupted_frames_decode_or_fail_with_frame_errors_only():
    import random

    rng = random.Random(7)
    good = encode_input(
        [Record(b"k", b"v" * 40, 1, [("h", b"x"), ("n", None)]), Record(None, None), Record(b"", b"x")]
    )
    assert decode_input(good)  # the fast path and the careful reader agree on good frames
    for _ in range(3000):
        frame = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            frame[rng.randrange(len(frame))] = rng.choice([0, 1, 0xFF, rng.randrange(256)])
        cut = rng.choice([len(frame), rng.randrange(len(frame) + 1)])
        try:
            records = decode_input(bytes(frame[:cut]))
        except FrameError:
            continue
        # Whatever decodes round-trips (flag bits and the timestamp of a
        # record without one are not kept: they mean nothing).
        assert decode_input(encode_input(records)) == records
