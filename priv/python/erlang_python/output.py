"""sys.stdout and sys.stderr that follow the call writing to them
(src/py_output.erl).

install() wraps the interpreter's sys.stdout and sys.stderr. A write from
a thread running a call whose output goes to an Erlang group leader
(py:call's `output' option, the application's `output') is written there,
through the Erlang function _erlang_python.put_chars, so that print() in
a call made from a remote shell shows in that shell. Any other write (a
thread Python started, a call whose output goes to the terminal, a group
leader that is gone) goes to the stream that was there before, the OS
process's own stdout or stderr.

Writing to a group leader waits for it, as io:put_chars does: a program
that prints a lot is held back to the pace of the group leader rather
than filling its mailbox.
"""

import sys

import erlang


class RoutedStream:
    """A text stream that writes to the running call's group leader, or to
    the stream it wraps. Anything but writing is the wrapped stream's."""

    def __init__(self, original):
        self._original = original

    def write(self, text):
        # The process whose group leader this call's output goes to.
        owner = erlang._output_target()
        if owner is not None:
            if not isinstance(text, str):
                raise TypeError('write() argument must be str, not ' + type(text).__name__)
            try:
                if erlang.call('_erlang_python.put_chars', owner, text):
                    return len(text)
            except (RuntimeError, RecursionError, ValueError):
                # The application is not running, the call is nested as
                # deep as it may be, this thread is converting another
                # call's values, or the text cannot be UTF-8 (a lone
                # surrogate): the terminal still takes it.
                pass
        return self._original.write(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        self._original.flush()

    def __getattr__(self, name):
        return getattr(self._original, name)


def install():
    """Wraps sys.stdout and sys.stderr, once."""
    for name in ('stdout', 'stderr'):
        stream = getattr(sys, name)
        if stream is not None and type(stream).__name__ != 'RoutedStream':
            setattr(sys, name, RoutedStream(stream))
