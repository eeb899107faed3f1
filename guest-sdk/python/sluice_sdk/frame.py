"""The call-batch frame: how records cross the Sluice plugin boundary.

The byte layout is specified in ``wit/FRAME.md`` (all integers
little-endian); this is the Python twin of ``guest-sdk/rust/frame``.
Plugin authors never see frames: the SDK decodes the input frame, calls the
processor once per record and encodes the output frame.

- :func:`decode_input` / :func:`encode_input`: host -> plugin frames.
- :func:`decode_output` / :func:`encode_output`: plugin -> host frames,
  one status per input record: a list of records (ok) or a :class:`Reject`.

Malformed frames raise :class:`FrameError`, never another exception.
"""

import struct

from .record import Record, Reject

#: The frame format version written in the first byte of every frame.
VERSION = 1

_NULL = 0xFFFFFFFF
_FLAG_TIMESTAMP = 1
_STATUS_OK = 0
_STATUS_REJECTED = 1

_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_HEAD = struct.Struct("<BI")  # version, count
_REC = struct.Struct("<qB")  # timestamp, flags
_REC_LEN = struct.Struct("<qBI")  # timestamp, flags, key length


class FrameError(Exception):
    """A frame that does not follow the layout of ``wit/FRAME.md``."""


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def _need(self, n):
        if n > len(self.buf) - self.pos:
            raise FrameError(f"frame truncated at byte {self.pos}")

    def header(self):
        self._need(1)
        version = self.buf[self.pos]
        if version != VERSION:
            raise FrameError(
                f"frame version {version} is not supported (expected {VERSION})"
            )
        self.pos += 1
        return self.u32()

    def u8(self):
        self._need(1)
        self.pos += 1
        return self.buf[self.pos - 1]

    def u32(self):
        self._need(4)
        (n,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return n

    def bytes(self):
        n = self.u32()
        if n == _NULL:
            return None
        self._need(n)
        start = self.pos
        self.pos += n
        return bytes(self.buf[start : self.pos])

    def string(self):
        at = self.pos
        raw = self.bytes()
        if raw is None:  # as the Rust reader: a null string is empty
            return ""
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError(f"string at byte {at} is not valid UTF-8") from None

    def record(self):
        self._need(_REC.size)
        timestamp, flags = _REC.unpack_from(self.buf, self.pos)
        if flags & ~_FLAG_TIMESTAMP:
            raise FrameError(
                f"record flags {flags:#04x} at byte {self.pos + 8} set reserved bits"
                " (only bit 0, the timestamp, is defined)"
            )
        self.pos += _REC.size
        key = self.bytes()
        value = self.bytes()
        headers = []
        for _ in range(self.u32()):
            name = self.string()
            headers.append((name, self.bytes()))
        return Record(
            key,
            value,
            timestamp if flags & _FLAG_TIMESTAMP else None,
            headers,
        )

    def end(self):
        left = len(self.buf) - self.pos
        if left:
            raise FrameError(f"{left} trailing bytes after the frame, at byte {self.pos}")


class _Malformed(Exception):
    pass


def _decode_records(buf, count):
    """The fast path of :func:`decode_input`: no bounds reporting (any
    failure raises, and the careful reader then says where and why)."""
    size = len(buf)
    unpack_rec = _REC_LEN.unpack_from
    unpack_u32 = _U32.unpack_from
    new = Record.__new__
    records = []
    pos = 5
    for _ in range(count):
        timestamp, flags, n = unpack_rec(buf, pos)
        if flags & ~_FLAG_TIMESTAMP:
            raise _Malformed
        pos += 13
        if n == _NULL:
            key = None
        else:
            key = buf[pos : pos + n]
            pos += n
        (n,) = unpack_u32(buf, pos)
        pos += 4
        if n == _NULL:
            value = None
        else:
            value = buf[pos : pos + n]
            pos += n
        (n,) = unpack_u32(buf, pos)
        pos += 4
        headers = []
        for _ in range(n):
            (m,) = unpack_u32(buf, pos)
            pos += 4
            if m == _NULL:
                name = ""
            else:
                name = buf[pos : pos + m].decode("utf-8")
                pos += m
            (m,) = unpack_u32(buf, pos)
            pos += 4
            if m == _NULL:
                headers.append((name, None))
            else:
                headers.append((name, buf[pos : pos + m]))
                pos += m
        if pos > size:
            raise _Malformed
        r = new(Record)
        r.key = key
        r.value = value
        r.timestamp = timestamp if flags & _FLAG_TIMESTAMP else None
        r.headers = headers
        records.append(r)
    if pos != size:
        raise _Malformed
    return records


def decode_input(frame):
    """The records of an input frame, as a list of :class:`Record`."""
    buf = bytes(frame)
    r = _Reader(buf)
    count = r.header()
    # Every record takes at least 21 bytes: refuse absurd counts up front.
    if count > (len(buf) - 5) // 21:
        raise FrameError(f"frame truncated: {count} records cannot fit in {len(buf)} bytes")
    try:
        return _decode_records(buf, count)
    except (_Malformed, struct.error, UnicodeDecodeError):
        pass
    for _ in range(count):
        r.record()  # raises FrameError
    r.end()
    raise AssertionError("a frame the careful reader accepts must decode")  # pragma: no cover


def decode_output(frame):
    """The statuses of an output frame: per input record, a list of
    :class:`Record` (ok) or a :class:`Reject` (rejected)."""
    r = _Reader(bytes(frame))
    count = r.header()
    statuses = []
    for _ in range(count):
        status = r.u8()
        if status == _STATUS_OK:
            statuses.append([r.record() for _ in range(r.u32())])
        elif status == _STATUS_REJECTED:
            code = r.string()
            statuses.append(Reject(code, r.string()))
        else:
            raise FrameError(f"unknown record status {status}")
    r.end()
    return statuses


_NULL_BYTES = b"\xff\xff\xff\xff"
_PACK_U32 = _U32.pack
_NO_TIMESTAMP = _REC.pack(0, 0)


def _put_bytes(out, data, what):
    if data is None:
        out.append(_NULL_BYTES)
        return
    if not isinstance(data, bytes):
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        elif isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        else:
            raise TypeError(f"{what} must be bytes, str or None, not {type(data).__name__}")
    out.append(_PACK_U32(len(data)))
    out.append(data)


def _put_string(out, text):
    data = str(text).encode("utf-8", "replace")
    out.append(_PACK_U32(len(data)))
    out.append(data)


def _put_record(out, record):
    if not isinstance(record, Record):
        raise TypeError(f"a processor emits Record objects, not {type(record).__name__}")
    ts = record.timestamp
    if ts is None:
        out.append(_NO_TIMESTAMP)
    elif type(ts) is int:  # bool and float are mistakes here
        out.append(_REC.pack(ts, _FLAG_TIMESTAMP))
    else:
        raise TypeError(f"Record.timestamp must be an int (ms) or None, not {ts!r}")
    _put_bytes(out, record.key, "Record.key")
    _put_bytes(out, record.value, "Record.value")
    headers = record.headers
    out.append(_PACK_U32(len(headers)))
    for name, value in headers:
        if not isinstance(name, str):
            raise TypeError(f"a header name must be a str, not {type(name).__name__}")
        _put_string(out, name)
        _put_bytes(out, value, f"header {name!r}")


def encode_input(records):
    """An input frame holding ``records``, as the host writes it."""
    records = list(records)
    out = [_HEAD.pack(VERSION, len(records))]
    for record in records:
        _put_record(out, record)
    return b"".join(out)


_OK = bytes([_STATUS_OK])
_REJECTED = bytes([_STATUS_REJECTED])


def encode_output(statuses):
    """An output frame: one status per input record, each a list of
    :class:`Record` (ok; empty filters the record out) or a
    :class:`Reject`."""
    statuses = list(statuses)
    out = [_HEAD.pack(VERSION, len(statuses))]
    for status in statuses:
        if isinstance(status, Reject):
            out.append(_REJECTED)
            _put_string(out, status.code)
            _put_string(out, status.message)
        else:
            out.append(_OK)
            out.append(_PACK_U32(len(status)))
            for record in status:
                _put_record(out, record)
    return b"".join(out)
