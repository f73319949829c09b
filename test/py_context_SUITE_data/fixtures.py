# Fixtures of py_context_SUITE. Nothing runs this file in the main
# interpreter: a case runs it in each context it makes (py:exec(Ctx,
# Source)), so every name here belongs to that context's __main__ alone.
# Calls that wait or spin tell the case's process when they start and how
# they ended, so that cases wait for that evidence rather than for time.
import threading
import time

import erlang

Atom = erlang.Atom

# Which context this is, as the case named it (set_marker).
ctx_marker = None


def set_marker(marker):
    global ctx_marker
    ctx_marker = marker


def add(a, b=0, *, c=0):
    return a + b + c


def fail(message):
    raise ValueError(message)


def note(pid, message):
    erlang.send(pid, message)


def _tell(pid, message):
    '''erlang.send for finally blocks, which also run while a context
    stops: a failure to send must not replace the exception on its way.'''
    try:
        erlang.send(pid, message)
    except BaseException:
        pass


# Long calls: (started, Tag) when they begin, (ended, Tag, Outcome) when
# they end, Outcome the name of what ended them ('finished' if nothing).

def sleep_noting(pid, tag, seconds):
    erlang.send(pid, (Atom('started'), tag))
    outcome = 'finished'
    try:
        time.sleep(seconds)
    except BaseException as e:
        outcome = type(e).__name__
        raise
    finally:
        _tell(pid, (Atom('ended'), tag, outcome))


def spin_noting(pid, tag):
    '''A pure-Python loop that never returns nor waits.'''
    erlang.send(pid, (Atom('started'), tag))
    outcome = 'finished'
    n = 0
    try:
        while True:
            n += 1
    except BaseException as e:
        outcome = type(e).__name__
        raise
    finally:
        _tell(pid, (Atom('ended'), tag, outcome))


# Objects handed to Erlang by reference

class Tally:
    def __init__(self):
        self.total = 0
        self._lock = threading.Lock()

    def add(self, n):
        with self._lock:
            self.total += n
            return self.total

    def marker(self):
        return ctx_marker


def wrapped_tally():
    '''A new Tally, handed to Erlang through erlang.ref.'''
    return erlang.ref(Tally())


def is_tally(x):
    return isinstance(x, Tally)


# Many callers at once

_calls_lock = threading.Lock()
calls = 0


def count_call(x):
    global calls
    with _calls_lock:
        calls += 1
    return x * 2


# The erlang module from a thread of this interpreter

def in_thread(fun, *args):
    '''fun(*args) run in a new threading.Thread started here: its result,
    or its exception raised again in the caller.'''
    out = {}

    def run():
        try:
            out['result'] = fun(*args)
        except BaseException as e:
            out['error'] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if 'error' in out:
        raise out['error']
    return out['result']


def call_from_thread(name, *args):
    return in_thread(erlang.call, name, *args)


def send_from_thread(pid, message):
    return in_thread(erlang.send, pid, message)


def ref_from_thread():
    return in_thread(wrapped_tally)


# Python -> Erlang -> Python: the Erlang function registered as name calls
# deeper(name, n + 1, target) in this context again.

def deeper(name, n, target):
    if n >= target:
        return n
    return erlang.call(name, n, target)


# CPU-bound work that holds the interpreter's GIL throughout.

def burn(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def sys_id():
    import sys
    return id(sys)
