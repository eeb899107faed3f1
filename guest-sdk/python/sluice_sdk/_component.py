"""The glue between the component's WIT exports and the plugin's processor
(the ``record-processor`` world).

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

from componentize_py_types import Err
from wit_world import exports as _exports
from wit_world.imports import state as _wit_state

from . import _glue, frame, runtime, state
from .record import Reject


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


_PROCESSOR = _glue.pick(runtime.registered, "processor")
_process = None  # the per-record callable, built by init

_glue.install()
state.backend = _WitState()


def _instantiate(config):
    global _process
    try:
        _process = _glue.guard(runtime.instantiate, _PROCESSOR, config)
    except Reject as e:
        raise _glue.error(e) from None


class Processor(_exports.Processor):
    """``sluice:plugin/processor@0.1.0``."""

    def init(self, config):
        _instantiate(config)

    def process(self, batch):
        if _process is None:
            _instantiate(None)
        try:
            records = frame.decode_input(batch)
        except frame.FrameError as e:
            raise Err(_glue.WitError("bad-frame", str(e))) from None
        statuses = _glue.guard(runtime.process_records, _process, records)
        return _glue.guard(frame.encode_output, statuses)
