"""The glue between the component's WIT exports and the plugin's processor.

Imported only inside a component (by the entry module that ``build.py``
generates, after the plugin's module), where componentize-py provides the
``wit_world`` bindings; the rest of the SDK never imports them, so it runs
on plain CPython in unit tests.

- ``init`` builds the processor from the step's config; a :class:`Reject`
  there is the ``error`` result (the plugin fails to start with it).
- ``process`` decodes the frame, runs the processor, encodes the statuses.
  A malformed frame is the ``error`` result, code ``bad-frame``. Any other
  exception escapes to componentize-py, which traps (``unreachable``): the
  host discards the instance and replays the batch record by record. The
  exception and its stack are logged first (level error).

Everything this module needs at run time is imported now: the component
is snapshotted after import and has no files to import from later.
"""

import sys

from componentize_py_types import Err
from wit_world import exports as _exports
from wit_world.imports import log as _wit_log
from wit_world.imports import state as _wit_state
from wit_world.imports.types import Error as _WitError

from . import frame, log, runtime, state
from .record import Reject

_LEVELS = [
    _wit_log.Level.TRACE,
    _wit_log.Level.DEBUG,
    _wit_log.Level.INFO,
    _wit_log.Level.WARN,
    _wit_log.Level.ERROR,
]


class _WitLog:
    def log(self, level, message):
        _wit_log.log(_LEVELS[level], message)


def _state_call(fn, *args):
    try:
        return fn(*args)
    except Err as e:
        raise state.StateError(e.value.code, e.value.message) from None


class _WitState:
    def get(self, store, key):
        return _state_call(_wit_state.get, store, key)

    def put(self, store, key, value):
        _state_call(_wit_state.put, store, key, value)

    def delete(self, store, key):
        _state_call(_wit_state.delete, store, key)

    def range(self, store, start, end, limit):
        return _state_call(_wit_state.range, store, start, end, limit)


class _LogStream:
    """``sys.stdout`` / ``sys.stderr`` inside the component: whole lines go
    to the host's log (the stubbed WASI streams would trap)."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, level):
        self.level = level
        self.pending = ""

    def write(self, text):
        text = self.pending + str(text)
        *lines, self.pending = text.split("\n")
        for line in lines:
            log.log(self.level, line)
        return len(text)

    def flush(self):
        if self.pending:
            line, self.pending = self.pending, ""
            log.log(self.level, line)

    def writable(self):
        return True

    def isatty(self):
        return False


def _describe(exc):
    """``exc`` and its stack, as Python prints them but without source
    lines: there are no files at run time, and the ``traceback`` module
    would trap looking for them."""
    parts = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        lines = ["Traceback (most recent call last):"]
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            name = code.co_filename
            if name[:1] == "/" and name[2:3] == "/" and name[1:2].isdigit():
                name = name[3:]  # "/1/app.py": python-path entry 1 of the build
            lines.append(f'  File "{name}", line {tb.tb_lineno}, in {code.co_name}')
            tb = tb.tb_next
        lines.append(f"{type(exc).__name__}: {exc}")
        parts.append("\n".join(lines))
        if exc.__cause__ is not None:
            parts.append("The above exception was the direct cause of the following exception:")
            exc = exc.__cause__
        elif exc.__context__ is not None and not exc.__suppress_context__:
            parts.append("During handling of the above exception, another exception occurred:")
            exc = exc.__context__
        else:
            exc = None
    # Python prints the first cause first.
    return "\n\n".join(reversed(parts))


def _report(exc):
    if getattr(exc, "_sluice_reported", False):
        return
    try:
        exc._sluice_reported = True
    except AttributeError:
        pass
    try:
        log.error("trap: uncaught exception in the plugin\n" + _describe(exc))
    except BaseException:
        pass


def _excepthook(kind, exc, tb):
    _report(exc)


class Trap(Exception):
    """Raised to trap on an exception componentize-py would otherwise turn
    into the call's ``error`` result."""


def _pick_processor():
    found = runtime.registered
    if len(found) != 1:
        names = ", ".join(getattr(p, "__qualname__", repr(p)) for p in found) or "none"
        raise RuntimeError(
            f"a Python plugin registers exactly one processor with @sluice_sdk.processor; found {names}"
        )
    return found[0]


_PROCESSOR = _pick_processor()
_process = None  # the per-record callable, built by init

log.backend = _WitLog()
state.backend = _WitState()
sys.stdout = _LogStream(log.INFO)
sys.stderr = _LogStream(log.WARN)
sys.excepthook = _excepthook


def _flush():
    sys.stdout.flush()
    sys.stderr.flush()


def _guard(fn, *args):
    """Calls ``fn``; an exception other than ``Reject`` is reported, then
    traps (never an ``Err``, which would be the call's error result)."""
    try:
        return fn(*args)
    except Reject:
        raise
    except Err as e:
        _report(e)
        trap = Trap(f"{type(e).__name__} escaped the plugin: {e}")
        trap._sluice_reported = True
        raise trap from e
    except BaseException as e:
        _report(e)
        raise
    finally:
        _flush()


class Processor(_exports.Processor):
    """``sluice:plugin/processor@0.1.0``."""

    def init(self, config):
        global _process
        try:
            _process = _guard(runtime.instantiate, _PROCESSOR, config)
        except Reject as e:
            raise Err(_WitError(e.code, e.message)) from None

    def process(self, batch):
        global _process
        if _process is None:
            try:
                _process = _guard(runtime.instantiate, _PROCESSOR, None)
            except Reject as e:
                raise Err(_WitError(e.code, e.message)) from None
        try:
            records = frame.decode_input(batch)
        except frame.FrameError as e:
            raise Err(_WitError("bad-frame", str(e))) from None
        statuses = _guard(runtime.process_records, _process, records)
        return _guard(frame.encode_output, statuses)
