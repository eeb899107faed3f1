"""Log lines from a plugin. Inside Sluice they go to the host's log
(``sluice:plugin/log``) with the plugin's name; in unit tests, to stderr.

Inside a component ``print()`` goes here too, at info level (standard
error at warn level): the sandbox has no console of its own.
"""

import sys

TRACE, DEBUG, INFO, WARN, ERROR = range(5)
_NAMES = ("trace", "debug", "info", "warn", "error")


class StderrBackend:
    """Where log lines go outside a component."""

    def log(self, level, message):
        print(f"[{_NAMES[level]}] {message}", file=sys.stderr)


#: Replaced by the component glue with the ``sluice:plugin/log`` import;
#: tests may set their own (any object with ``log(level, message)``).
backend = StderrBackend()


def log(level, message):
    """Logs one line at ``level`` (``TRACE`` … ``ERROR``)."""
    if not 0 <= level <= 4:
        raise ValueError(f"log level {level!r} is not one of TRACE..ERROR (0..4)")
    backend.log(level, str(message))


def trace(message):
    log(TRACE, message)


def debug(message):
    log(DEBUG, message)


def info(message):
    log(INFO, message)


def warn(message):
    log(WARN, message)


def error(message):
    log(ERROR, message)
