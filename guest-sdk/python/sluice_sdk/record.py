"""Records, rejections and configuration."""

import json


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _to_bytes(data, what, json_ok=False):
    """``data`` as bytes: str is UTF-8, dict/list (when ``json_ok``) compact JSON."""
    if data is None or isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    if json_ok and isinstance(data, (dict, list)):
        return dumps_json(data)
    kinds = "bytes, str, dict, list or None" if json_ok else "bytes, str or None"
    raise TypeError(f"{what} must be {kinds}, not {type(data).__name__}")


def dumps_json(obj):
    """``obj`` as compact UTF-8 JSON bytes (no NaN or Infinity)."""
    return json.dumps(
        obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


class Reject(Exception):
    """Raise it to refuse one record: the record gets a *rejected* status
    with this code and message, and the pipeline's ``rejected`` policy
    (skip, dead-letter topic or fail) decides what happens to it. Other
    records of the batch are not affected.

    Any other exception is a *trap*: the call fails, the host discards the
    instance and replays the batch one record at a time, and the ``trap``
    policy applies to the record that traps again.
    """

    def __init__(self, code, message=""):
        super().__init__(code, message)
        #: A short machine-readable code, for example ``bad-json``.
        self.code = str(code)
        #: A human-readable explanation.
        self.message = str(message)

    def __str__(self):
        return f"{self.code}: {self.message}" if self.message else self.code

    def __repr__(self):
        return f"Reject({self.code!r}, {self.message!r})"

    def __eq__(self, other):
        if not isinstance(other, Reject):
            return NotImplemented
        return (self.code, self.message) == (other.code, other.message)

    __hash__ = Exception.__hash__


class Record:
    """One Kafka record as a plugin sees it.

    - ``key``: bytes, or None for a null key;
    - ``value``: bytes, or None for a tombstone;
    - ``timestamp``: event time in UTC milliseconds; on output, None keeps
      the input record's timestamp;
    - ``headers``: a list of ``(name, value)`` pairs in order (names may
      repeat; a value is bytes or None); the constructor also takes a dict.

    The constructor and the ``with_*`` methods take str (UTF-8) as well as
    bytes; ``with_value`` and the constructor's ``value`` also take a dict or
    list, written as compact JSON. The ``with_*`` methods return a changed
    copy and leave the record alone, so one input can yield several outputs.
    """

    __slots__ = ("key", "value", "timestamp", "headers")

    def __init__(self, key=None, value=None, timestamp=None, headers=None):
        self.key = _to_bytes(key, "key")
        self.value = _to_bytes(value, "value", json_ok=True)
        self.timestamp = timestamp
        if isinstance(headers, dict):
            headers = headers.items()
        self.headers = [
            (str(name), _to_bytes(v, f"header {name!r}")) for name, v in (headers or ())
        ]

    def _copy(self):
        r = Record.__new__(Record)
        r.key = self.key
        r.value = self.value
        r.timestamp = self.timestamp
        r.headers = list(self.headers)
        return r

    # Builders -------------------------------------------------------------

    def with_key(self, key):
        """A copy with this key (str, bytes or None)."""
        r = self._copy()
        r.key = _to_bytes(key, "key")
        return r

    def with_value(self, value):
        """A copy with this value: bytes, str (UTF-8), a dict or list
        (written as compact JSON), or None (a tombstone)."""
        r = self._copy()
        r.value = _to_bytes(value, "value", json_ok=True)
        return r

    def with_json_value(self, obj):
        """A copy whose value is ``obj`` (any JSON value) as compact JSON."""
        r = self._copy()
        r.value = dumps_json(obj)
        return r

    def with_timestamp(self, timestamp):
        """A copy with this event time (UTC ms); None keeps the input's."""
        r = self._copy()
        r.timestamp = None if timestamp is None else int(timestamp)
        return r

    def with_header(self, name, value):
        """A copy with one more header (value: str, bytes or None)."""
        r = self._copy()
        r.headers.append((str(name), _to_bytes(value, f"header {name!r}")))
        return r

    def without_header(self, name):
        """A copy without any header called ``name``."""
        r = self._copy()
        r.headers = [(n, v) for n, v in r.headers if n != name]
        return r

    # Accessors ------------------------------------------------------------

    def header(self, name):
        """The value (bytes) of the last header called ``name``, or None."""
        for n, v in reversed(self.headers):
            if n == name:
                return v
        return None

    def header_text(self, name):
        """The last header called ``name`` as text, or None."""
        v = self.header(name)
        return None if v is None else v.decode("utf-8", "replace")

    def key_text(self):
        """The key as text, or None for a null key. A key that is not
        UTF-8 rejects the record (``bad-utf8``)."""
        if self.key is None:
            return None
        try:
            return self.key.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Reject("bad-utf8", f"the key is not UTF-8: {e}") from None

    def value_text(self):
        """The value as text. A tombstone rejects the record
        (``null-value``), so does a value that is not UTF-8 (``bad-utf8``)."""
        if self.value is None:
            raise Reject("null-value", "the record has no value")
        try:
            return self.value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Reject("bad-utf8", f"the value is not UTF-8: {e}") from None

    def value_json(self):
        """The value parsed as JSON. A tombstone or malformed JSON rejects
        the record with code ``bad-json``."""
        if self.value is None:
            raise Reject("bad-json", "the record has no value")
        try:
            return json.loads(self.value.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as e:
            raise Reject("bad-json", str(e)) from None

    # Python protocol ----------------------------------------------------------

    def __eq__(self, other):
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.key == other.key
            and self.value == other.value
            and self.timestamp == other.timestamp
            and self.headers == other.headers
        )

    __hash__ = None

    def __repr__(self):
        parts = [f"key={self.key!r}", f"value={self.value!r}"]
        if self.timestamp is not None:
            parts.append(f"timestamp={self.timestamp}")
        if self.headers:
            parts.append(f"headers={self.headers!r}")
        return f"Record({', '.join(parts)})"


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class Config(dict):
    """A step's ``config`` table from the pipeline file: str keys and values.

    It is a dict (``config["k"]``, ``config.get("k", default)``) with
    :meth:`parse` for typed values.
    """

    def parse(self, key, default, convert=None):
        """``key`` converted by ``convert`` (by default the type of
        ``default``: int, float, bool or str), or ``default`` when absent. A
        value that does not convert raises ``Reject("bad-config", ...)``
        naming the key, which fails the plugin's start with that message."""
        raw = self.get(key)
        if raw is None:
            return default
        if convert is None:
            convert = str if default is None else type(default)
        try:
            if convert is bool:
                low = raw.strip().lower()
                if low in _TRUE:
                    return True
                if low in _FALSE:
                    return False
                raise ValueError("expected true or false")
            return convert(raw)
        except (TypeError, ValueError) as e:
            raise Reject("bad-config", f"config `{key}` = {raw!r}: {e}") from None
