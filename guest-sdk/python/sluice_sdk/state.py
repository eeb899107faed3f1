"""Task-local state for processors that keep their own: the stores a step
declares in the pipeline file (``stores = ["seen"]``).

Sluice keeps each store per task (partition), backs it with a changelog
topic and commits its writes with the input offsets, so a processor's state
survives restarts and follows its partition. Writes are seen by later reads
at once and are kept only if the call batch succeeds::

    from sluice_sdk import processor
    from sluice_sdk.state import Store

    seen = Store("seen")

    @processor
    def dedup(record):
        key = record.key or b""
        if seen.get(key) is None:
            seen.put(key, b"1")
            return record           # the first of its key
        return None                 # a repeat: dropped

Keys and values are bytes (str is taken as UTF-8). A failure the host
reports raises :class:`StateError`, a :class:`Reject`: left uncaught it
rejects the record. Reaching a store the step did not declare is a trap.

Outside a component every store exists, in memory (:data:`backend`);
``sluice_sdk.testing.clear_state()`` empties them.
"""

import json

from .record import Reject, _to_bytes, dumps_json


class StateError(Reject):
    """The host refused a state operation (code and message from the host)."""


class MemoryBackend:
    """In-memory stores: the backend outside a component (unit tests)."""

    def __init__(self):
        self.stores = {}

    def get(self, store, key):
        return self.stores.get(store, {}).get(key)

    def put(self, store, key, value):
        self.stores.setdefault(store, {})[key] = value

    def delete(self, store, key):
        self.stores.get(store, {}).pop(key, None)

    def range(self, store, start, end, limit):
        entries = sorted(self.stores.get(store, {}).items())
        out = [
            (k, v)
            for k, v in entries
            if (start is None or k >= start) and (end is None or k < end)
        ]
        return out[:limit]


#: Replaced by the component glue with the ``sluice:plugin/state`` import;
#: tests may set their own (an object with get/put/delete/range as
#: :class:`MemoryBackend`, raising :class:`StateError` on failure).
backend = MemoryBackend()


class Store:
    """A store the step declared, by name."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = str(name)

    def get(self, key):
        """The value (bytes) of ``key``, or None."""
        return backend.get(self.name, _to_bytes(key, "key"))

    def put(self, key, value):
        """Sets ``key`` to ``value`` (bytes or str)."""
        value = _to_bytes(value, "value")
        if value is None:
            raise TypeError("Store.put needs a value; use delete to remove a key")
        backend.put(self.name, _to_bytes(key, "key"), value)

    def delete(self, key):
        """Removes ``key``."""
        backend.delete(self.name, _to_bytes(key, "key"))

    def range(self, start=None, end=None, *, limit):
        """Entries ``(key, value)`` with ``start <= key < end`` (None is
        open), in key order, at most ``limit``."""
        return backend.range(
            self.name, _to_bytes(start, "start"), _to_bytes(end, "end"), int(limit)
        )

    def get_json(self, key, default=None):
        """The value of ``key`` parsed as JSON, or ``default``."""
        raw = self.get(key)
        return default if raw is None else json.loads(raw.decode("utf-8"))

    def put_json(self, key, obj):
        """Sets ``key`` to ``obj`` as compact JSON."""
        self.put(key, dumps_json(obj))

    def __repr__(self):
        return f"Store({self.name!r})"
