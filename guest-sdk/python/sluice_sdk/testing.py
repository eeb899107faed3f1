"""Run processors and aggregators in unit tests (plain CPython, ``pytest``).

Records go through the same frame encoding the host uses, so a test sees
exactly what the plugin emits inside Sluice::

    from sluice_sdk import Record, testing

    out = testing.run(uppercase, Record("k", "hi"))
    assert out[0].value == b"HI"

    totals = testing.run_aggregator(Total, {}, [Record("a", "1"), Record("a", "2")])
    assert totals == [1, 3]

State (:mod:`sluice_sdk.state`) lives in memory; :func:`clear_state`
empties it. Log lines go to stderr.
"""

import importlib.util
import itertools
import sys
from pathlib import Path

import json

from . import aggregate, frame, runtime, state
from .record import Record, Reject, dumps_json

_loaded = itertools.count()


def run_batch(processor, records, config=None):
    """Builds ``processor`` (a function or class, decorated or not) from
    ``config`` and runs it over ``records`` as one call batch; returns one
    status per record: the list of output records, or the :class:`Reject`.

    Exceptions other than Reject (traps, inside Sluice) propagate."""
    process = runtime.instantiate(processor, config)
    batch = frame.encode_input(records)
    return frame.decode_output(runtime.process_frame(process, batch))


def run(processor, record, config=None):
    """Runs ``processor`` on one record; returns its output records, or
    raises the :class:`Reject`."""
    (status,) = run_batch(processor, [record], config)
    if isinstance(status, Reject):
        raise status
    return status


def run_processor(processor, config, records):
    """Like :func:`run_batch`, config first (as Rust's
    ``sluice_sdk::testing::run_processor``)."""
    return run_batch(processor, records, config)


def run_aggregator(aggregator, config, records, aggregates=None):
    """Builds ``aggregator`` (a class, decorated or not) from ``config`` and
    adds ``records`` in one call, through the frames the host uses (as
    Rust's ``sluice_sdk::testing::run_aggregator``). Keys start with no
    aggregate, or with ``aggregates[key]`` (a JSON value; key as str or
    bytes) when given. Returns, per record, the key's aggregate after it
    (parsed from its JSON), or the :class:`Reject` that refused it.

    A ``Reject`` while building the aggregator, and exceptions other than
    Reject (traps, inside Sluice), propagate."""
    fold = aggregate.instantiate(aggregator, config)
    start = frame.encode_input(
        Record(key, dumps_json(value)) for key, value in (aggregates or {}).items()
    )
    records = list(records)
    out = aggregate.add_frames(fold, start, frame.encode_input(records))
    results = []
    for record, status in zip(records, frame.decode_output(out), strict=True):
        if isinstance(status, Reject):
            results.append(status)
            continue
        if len(status) != 1 or status[0].key != record.key or status[0].timestamp is not None:
            raise frame.FrameError(f"an ok status holds one aggregate of the record's key, not {status!r}")
        results.append(json.loads(status[0].value))
    return results


def merge(aggregator, a, b, key=None, config=None):
    """Builds ``aggregator`` from ``config`` and merges the aggregates ``a``
    (the earlier) and ``b`` of ``key`` through their JSON, as the host's
    ``merge`` call does; returns the merged aggregate, or raises the
    :class:`Reject` (``merge-unsupported`` when the aggregator has no
    ``merge``)."""
    fold = aggregate.instantiate(aggregator, config)
    key = key.encode("utf-8") if isinstance(key, str) else key
    return json.loads(aggregate.merge_bytes(fold, key, dumps_json(a), dumps_json(b)))


def clear_state():
    """Empties the in-memory stores of :mod:`sluice_sdk.state`."""
    if isinstance(state.backend, state.MemoryBackend):
        state.backend.stores.clear()
    else:
        state.backend = state.MemoryBackend()


def load(path):
    """Imports a plugin's module (``app.py``, or the directory holding it)
    under a fresh name, so tests of several plugins can each load their own
    ``app.py`` in one session. Its directory goes on ``sys.path`` for the
    duration of the import, so the module can import its neighbours."""
    path = Path(path)
    if path.is_dir():
        path = path / "app.py"
    name = f"_sluice_plugin_{next(_loaded)}_{path.parent.name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load a plugin module from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


__all__ = [
    "Record",
    "Reject",
    "clear_state",
    "load",
    "merge",
    "run",
    "run_aggregator",
    "run_batch",
    "run_processor",
]
