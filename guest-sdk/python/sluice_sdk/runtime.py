"""Processors: what ``@processor`` registers, and the per-batch loop."""

import inspect

from . import frame
from .record import Config, Record, Reject

#: Every object decorated with ``@processor``, in order. A plugin module
#: registers exactly one; the component exports it.
registered = []


def processor(obj):
    """Marks the plugin's record processor, a function or a class.

    A **function** ``f(record)`` or ``f(record, config)`` is called once per
    record. A **class** is instantiated once per plugin instance, as
    ``cls(config)`` (or ``cls()`` if its ``__init__`` takes no argument), and
    its ``process(record)`` method is called once per record; it can keep
    state between records and batches.

    Either returns what the record produced: ``None`` (nothing: the record
    is filtered out), one :class:`Record`, or a list (or any iterable, a
    generator too) of records. Raising :class:`Reject` refuses the record;
    any other exception is a trap.

    The object is returned unchanged, so it stays callable in tests.
    """
    if not callable(obj):
        raise TypeError(f"@processor needs a function or a class, not {obj!r}")
    if obj not in registered:
        registered.append(obj)
    return obj


def _takes_config(fn, first):
    """Whether ``fn`` takes a ``config`` argument after ``first`` other ones."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return len(positional) > first or any(p.kind == p.VAR_POSITIONAL for p in params)


def instantiate(obj, config=None):
    """The per-record callable of a processor (function or class), built
    with ``config`` (a :class:`Config`, a dict, or ``(key, value)`` pairs).

    Raises whatever the class's ``__init__`` raises (``Reject`` for a bad
    configuration)."""
    if not isinstance(config, Config):
        config = Config(config or ())
    if isinstance(obj, type):
        if obj.__init__ is object.__init__ or not _takes_config(obj.__init__, 1):
            instance = obj()
        else:
            instance = obj(config)
        process = getattr(instance, "process", None)
        if process is None:
            raise TypeError(f"processor class {obj.__name__} has no process(record) method")
        return process
    if _takes_config(obj, 1):
        return lambda record: obj(record, config)
    return obj


def outputs(result):
    """What one call of a processor returned, as a list of records."""
    if result is None:
        return []
    if isinstance(result, Record):
        return [result]
    if isinstance(result, (str, bytes, bytearray, dict)):
        raise TypeError(
            f"a processor returns None, a Record or a list of Records, not {type(result).__name__}"
        )
    try:
        items = list(result)
    except TypeError:
        raise TypeError(
            f"a processor returns None, a Record or a list of Records, not {type(result).__name__}"
        ) from None
    for item in items:
        if not isinstance(item, Record):
            raise TypeError(f"a processor emits Record objects, not {type(item).__name__}")
    return items


def process_records(process, records):
    """Runs ``process`` over ``records``; one status per record: a list of
    output records or a :class:`Reject`. Other exceptions propagate."""
    statuses = []
    for record in records:
        try:
            statuses.append(outputs(process(record)))
        except Reject as e:
            statuses.append(e)
    return statuses


def process_frame(process, batch):
    """Decodes an input frame, runs ``process`` over its records and returns
    the output frame. A malformed frame raises :class:`frame.FrameError`;
    an exception other than :class:`Reject` from ``process`` propagates (in
    a component: a trap)."""
    return frame.encode_output(process_records(process, frame.decode_input(batch)))
