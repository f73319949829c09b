"""Python's logging into Erlang's logger (src/py_logger.erl).

install() puts one ErlangHandler on the root logger of the interpreter it
runs in (the main one, or an own-GIL context's): each record that passes
its level is sent, as a plain tuple, to the Erlang process that installed
it, which logs it with logger. Sending never waits for Erlang, so a record
logged from any thread (a call's, one Python started, an asyncio loop's)
costs the thread no more than building the tuple.

Only the application's one process installs (never two at once).
Installing again replaces the handler, so that a restart of the
application leaves one; uninstall() removes it, and Python's own default
(records of WARNING and above on stderr) applies again.
"""

import logging

import erlang

TAG = 'py_log'


class ErlangHandler(logging.Handler):
    """Sends each record to the Erlang process `pid`."""

    def __init__(self, pid, level):
        super().__init__(level)
        self.pid = pid
        self._formatter = logging.Formatter()

    def emit(self, record):
        try:
            exception = None
            if record.exc_info:
                exception = self._formatter.formatException(record.exc_info)
            elif record.exc_text:
                exception = record.exc_text
            if record.stack_info:
                stack = self._formatter.formatStack(record.stack_info)
                exception = stack if exception is None else exception + '\n' + stack
            erlang.send(self.pid, (TAG, record.levelno, record.name, record.getMessage(),
                                   record.module, record.funcName, record.lineno,
                                   record.pathname, record.threadName, record.created,
                                   exception))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def _ours(handler):
    # By name rather than class: a reloaded module makes a new class.
    return type(handler).__name__ == 'ErlangHandler'


def install(pid, level):
    """Sends the records of `level` and above (a number, as logging's
    levels) to `pid`; the root logger is set to `level` too."""
    uninstall()
    root = logging.getLogger()
    root.addHandler(ErlangHandler(pid, level))
    root.setLevel(level)


def uninstall():
    """Removes the handler install() put on the root logger, if any."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if _ours(h)]:
        root.removeHandler(handler)
