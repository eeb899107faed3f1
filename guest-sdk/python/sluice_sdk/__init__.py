"""Write Sluice plugins in Python.

A plugin is a function from one record to zero or more records::

    from sluice_sdk import Record, Reject, processor

    @processor
    def uppercase(record: Record):
        text = record.value_text()          # a tombstone rejects the record
        if not text:
            raise Reject("empty", "nothing to shout")
        return record.with_value(text.upper())

- :class:`Record`: key, value, timestamp and headers.
- :func:`processor`: marks the plugin's processor, a function
  ``f(record)`` / ``f(record, config)`` or a class built from the step's
  :class:`Config` with a ``process(record)`` method. It returns None (drop
  the record), a Record, or a list of records.
- :func:`aggregator`: marks the plugin's aggregator instead, a class with
  ``initial(key)``, ``add(aggregate, record)`` and optionally
  ``merge(key, a, b)``, whose aggregates are JSON values (see
  :mod:`sluice_sdk.aggregate`).
- :class:`Reject`: raise it to refuse a record (the pipeline's ``rejected``
  policy applies). Any other exception is a trap: the host discards the
  instance and applies the ``trap`` policy to the record.
- :mod:`sluice_sdk.state`: task-local stores the step declares.
- :mod:`sluice_sdk.log`: log lines the host prints with the plugin's name.
- :mod:`sluice_sdk.testing`: run a processor or an aggregator in unit tests
  through the same frame encoding the host uses.

The plugin's module is ``app.py`` in the plugin's directory; build it with
``sluice plugin build <dir>``. Import everything at the top of the module:
a component cannot import later (there are no files at run time), and it
has no clock, no network and no console (``print`` goes to the log).
"""

from . import log, state
from .aggregate import aggregator
from .record import Config, Record, Reject
from .runtime import processor
from .state import StateError, Store

__all__ = [
    "Config",
    "Record",
    "Reject",
    "StateError",
    "Store",
    "aggregator",
    "log",
    "processor",
    "state",
]

__version__ = "0.1.0"
