"""What the component glue of every world shares: logging through
``sluice:plugin/log``, ``print`` to the log, the trap report, and the guard
that makes an exception a trap rather than the call's error result.

Imported only inside a component (by ``_component.py`` and
``_component_aggregator.py``), where componentize-py provides the
``wit_world`` bindings. It imports only ``log`` and ``types``, which every
world has; ``state`` is the processor glue's alone.
"""

import sys

from componentize_py_types import Err
from wit_world.imports import log as _wit_log
from wit_world.imports.types import Error as WitError

from . import log
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


def install():
    """Log, stdout, stderr and the exception hook to the host's log."""
    log.backend = _WitLog()
    sys.stdout = _LogStream(log.INFO)
    sys.stderr = _LogStream(log.WARN)
    sys.excepthook = _excepthook


def pick(found, decorator):
    """The one object ``found`` registered with ``@sluice_sdk.<decorator>``."""
    if len(found) != 1:
        names = ", ".join(getattr(p, "__qualname__", repr(p)) for p in found) or "none"
        raise RuntimeError(
            f"a Python plugin registers exactly one {decorator} with "
            f"@sluice_sdk.{decorator}; found {names}"
        )
    return found[0]


def _flush():
    sys.stdout.flush()
    sys.stderr.flush()


def guard(fn, *args):
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


def error(reject):
    """A :class:`Reject` as the call's ``error`` result."""
    return Err(WitError(reject.code, reject.message))
