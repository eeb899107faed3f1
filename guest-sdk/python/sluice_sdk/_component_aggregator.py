"""The glue between the component's WIT exports and the plugin's
aggregator (the ``record-aggregator`` world, which imports only ``log``).

Imported only inside a component, as ``_component.py`` is.

- ``init`` builds the aggregator from the step's config; a :class:`Reject`
  there is the ``error`` result (the plugin fails to start with it).
- ``add`` decodes both frames, threads each key's aggregate through its
  records and encodes one status per record. A malformed frame is the
  ``error`` result, code ``bad-frame``.
- ``merge`` merges two aggregates of a key; a :class:`Reject` (from the
  aggregator, ``bad-aggregate``, or ``merge-unsupported`` when it has no
  ``merge``) is the ``error`` result.
- Any other exception is logged with its stack, then traps.

Everything this module needs at run time is imported now: the component
is snapshotted after import and has no files to import from later.
"""

from componentize_py_types import Err
from wit_world import exports as _exports

from . import _glue, aggregate, frame
from .record import Reject

_AGGREGATOR = _glue.pick(aggregate.registered, "aggregator")
_fold = None  # the aggregate.Fold, built by init

_glue.install()


def _instantiate(config):
    global _fold
    try:
        _fold = _glue.guard(aggregate.instantiate, _AGGREGATOR, config)
    except Reject as e:
        raise _glue.error(e) from None


class Aggregator(_exports.Aggregator):
    """``sluice:plugin/aggregator@0.1.0``."""

    def init(self, config):
        _instantiate(config)

    def add(self, aggregates, batch):
        if _fold is None:
            _instantiate(None)
        try:
            current = {r.key: r.value for r in frame.decode_input(aggregates)}
            records = frame.decode_input(batch)
        except frame.FrameError as e:
            raise Err(_glue.WitError("bad-frame", str(e))) from None
        statuses = _glue.guard(aggregate.add_records, _fold, current, records)
        return _glue.guard(frame.encode_output, statuses)

    def merge(self, key, a, b):
        if _fold is None:
            _instantiate(None)
        try:
            return _glue.guard(aggregate.merge_bytes, _fold, key, a, b)
        except Reject as e:
            raise _glue.error(e) from None
