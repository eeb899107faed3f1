"""Aggregators: what ``@aggregator`` registers, and the ``add`` / ``merge``
calls of the ``sluice:plugin/aggregator`` interface.

The host groups records by key, keeps each key's aggregate in a state
store (with a changelog) and sends every updated aggregate downstream; the
plugin only says how a record changes an aggregate::

    from sluice_sdk import Reject, aggregator

    @aggregator
    class Total:
        def initial(self, key):
            return 0

        def add(self, total, record):
            amount = record.value_json()
            if not isinstance(amount, (int, float)):
                raise Reject("bad-amount", "the value is not a number")
            return total + amount

Aggregates are JSON: whatever ``initial``, ``add`` and ``merge`` return is
stored (and sent downstream) as compact JSON, and comes back parsed.
Semantics are those of the Rust SDK (``guest-sdk/rust/src/aggregate.rs``):

- ``add`` threads each key's aggregate through that key's records of the
  call; a key the host has no aggregate for starts from ``initial(key)``.
- Raising :class:`Reject` in ``add`` rejects the record and leaves the
  key's aggregate as it was before it (even if ``add`` changed the object
  in place: the next record gets the last accepted aggregate, parsed
  again).
- A stored aggregate that is not JSON rejects the record (``bad-aggregate``);
  an aggregate that cannot be written as JSON (NaN, a set, ...) rejects it
  too (``bad-json``).
- ``merge(key, a, b)`` combines two aggregates of one key (session windows
  need it; ``a`` is the earlier). Without it, merging is refused with
  ``merge-unsupported``.
- Any other exception is a trap.
"""

import inspect
import json

from . import frame
from .record import Config, Record, Reject, dumps_json

#: Every class decorated with ``@aggregator``, in order. A plugin module
#: registers exactly one; the component exports it.
registered = []

MERGE_UNSUPPORTED = Reject("merge-unsupported", "this aggregator does not implement `merge`")


def aggregator(cls):
    """Marks the plugin's aggregator, a class with:

    - ``__init__(self, config)`` (or ``__init__(self)``): built once per
      plugin instance with the step's :class:`Config`; raising
      :class:`Reject` fails the plugin's start with that message. A
      ``@classmethod`` ``init(cls, config)`` returning the instance, or a
      method ``init(self, config)`` called after ``__init__(self)``, does
      the same;
    - ``initial(self, key)``: the aggregate of a key (bytes, or None) that
      has none yet;
    - ``add(self, aggregate, record)``: the key's aggregate after ``record``
      (a :class:`Record`); raise :class:`Reject` to refuse the record;
    - optionally ``merge(self, key, a, b)``: two aggregates of one key as
      one (session windows; ``a`` is the earlier).

    Aggregates are any JSON values (dicts, lists, numbers, strings, ...).
    The class is returned unchanged, so it stays usable in tests.
    """
    if not isinstance(cls, type):
        raise TypeError(
            f"@aggregator needs a class with initial(key) and add(aggregate, record), not {cls!r}"
        )
    missing = [m for m in ("initial", "add") if not callable(getattr(cls, m, None))]
    if missing:
        raise TypeError(
            f"aggregator class {cls.__name__} has no {' or '.join(f'{m}()' for m in missing)} method "
            "(it needs initial(self, key) and add(self, aggregate, record))"
        )
    if cls not in registered:
        registered.append(cls)
    return cls


def _positional(fn):
    """How many positional arguments ``fn`` takes (None: any number)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


class Fold:
    """An aggregator instance as the interface calls it: JSON aggregates in
    and out, keys threaded through a batch."""

    __slots__ = ("instance", "_initial", "_initial_takes_key", "_add", "_merge", "_merge_takes_key")

    def __init__(self, instance):
        self.instance = instance
        self._initial = instance.initial
        self._initial_takes_key = _positional(self._initial) != 0
        self._add = instance.add
        self._merge = getattr(instance, "merge", None)
        self._merge_takes_key = self._merge is not None and _positional(self._merge) != 2

    def initial(self, key):
        return self._initial(key) if self._initial_takes_key else self._initial()

    def add(self, aggregate, record):
        result = self._add(aggregate, record)
        if result is None:
            raise TypeError(
                f"{type(self.instance).__name__}.add returned None: it returns the key's new "
                "aggregate (changing it in place is fine, but return it)"
            )
        return result

    def merge(self, key, a, b):
        if self._merge is None:
            raise Reject(MERGE_UNSUPPORTED.code, MERGE_UNSUPPORTED.message)
        result = self._merge(key, a, b) if self._merge_takes_key else self._merge(a, b)
        if result is None:
            raise TypeError(
                f"{type(self.instance).__name__}.merge returned None: it returns the merged aggregate"
            )
        return result


def instantiate(cls, config=None):
    """A :class:`Fold` of aggregator class ``cls`` built with ``config``
    (a :class:`Config`, a dict, or ``(key, value)`` pairs). Raises whatever
    building it raises (``Reject`` for a bad configuration)."""
    if not isinstance(config, Config):
        config = Config(config or ())
    if not isinstance(cls, type):
        raise TypeError(f"an aggregator is a class, not {cls!r}")
    init = inspect.getattr_static(cls, "init", None)
    if isinstance(init, (classmethod, staticmethod)):
        instance = cls.init(config)
        if not isinstance(instance, cls):
            raise TypeError(
                f"{cls.__name__}.init(config) returns the aggregator (a {cls.__name__}), "
                f"not {type(instance).__name__}"
            )
    else:
        if cls.__init__ is object.__init__ or _positional(cls.__init__) == 1:
            instance = cls()
        else:
            instance = cls(config)
        if init is not None:
            instance.init(config)
    return Fold(instance)


def _decode(raw):
    """A stored aggregate (JSON bytes), or ``Reject('bad-aggregate')``."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise Reject("bad-aggregate", f"the stored aggregate does not decode: {e}") from None


def _no_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _encode(aggregate):
    """``aggregate`` as compact JSON, or ``Reject('bad-json')``."""
    try:
        return dumps_json(aggregate)
    except (TypeError, ValueError) as e:
        raise Reject("bad-json", f"the aggregate cannot be written as JSON: {e}") from None


_NONE = object()  # a slot without a decoded aggregate


def add_records(fold, aggregates, records):
    """Adds ``records`` to ``aggregates`` (key -> JSON bytes, or None for a
    key without one); returns one status per record: ``[Record(key,
    aggregate JSON)]`` or the :class:`Reject`. Exceptions other than
    ``Reject`` propagate (in a component: a trap)."""
    # Per key: [last accepted aggregate as JSON bytes (None: none yet),
    # the same decoded (_NONE: not at hand)]. A rejection drops the decoded
    # one, which ``add`` may have changed in place.
    slots = {key: [raw, _NONE] for key, raw in aggregates.items()}
    statuses = []
    for record in records:
        key = record.key
        slot = slots.get(key)
        if slot is None:
            slot = slots[key] = [None, _NONE]
        aggregate, slot[1] = slot[1], _NONE
        try:
            if aggregate is _NONE:
                aggregate = fold.initial(key) if slot[0] is None else _decode(slot[0])
            after = fold.add(aggregate, record)
            raw = _encode(after)
        except Reject as e:
            statuses.append(e)
            continue
        slot[0], slot[1] = raw, after
        out = Record.__new__(Record)
        out.key, out.value, out.timestamp, out.headers = key, raw, None, []
        statuses.append([out])
    return statuses


def add_frames(fold, aggregates, batch):
    """The ``add`` call: input frames in, output frame out. A malformed
    frame raises :class:`frame.FrameError`."""
    current = {r.key: r.value for r in frame.decode_input(aggregates)}
    return frame.encode_output(add_records(fold, current, frame.decode_input(batch)))


def merge_bytes(fold, key, a, b):
    """The ``merge`` call: two JSON aggregates in, the merged one out.
    Raises :class:`Reject` (``bad-aggregate``, ``merge-unsupported``, the
    aggregator's own) for the call's error result."""
    return _encode(fold.merge(None if key is None else bytes(key), _decode(bytes(a)), _decode(bytes(b))))
