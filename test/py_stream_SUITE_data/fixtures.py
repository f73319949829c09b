# Fixtures of py_stream_SUITE: iterables to stream, and a record of what
# ran, so that cases can see how far a generator got and whether its
# finally block ran.
import asyncio
import threading
import time

produced = {}   # stream name -> items produced so far
finished = {}   # stream name -> how the generator ended ('finally' ran)
gate = {}       # stream name -> threading.Event the generator waits on


def counted(name, n):
    """0..n-1, noting each item produced and the finally block."""
    produced[name] = 0
    try:
        for i in range(n):
            produced[name] += 1
            yield i
    finally:
        finished[name] = True


def endless(name):
    produced[name] = 0
    try:
        i = 0
        while True:
            produced[name] += 1
            yield i
            i += 1
    finally:
        finished[name] = True


def blocked(name):
    """One item, then waits for its gate to open (for ever unless it is),
    in time.sleep, where an interruption reaches it."""
    gate[name] = threading.Event()
    try:
        yield 'first'
        while not gate[name].is_set():
            time.sleep(0.01)
        yield 'second'
    finally:
        finished[name] = True


def burst_then_block(name, n):
    """n items as fast as it can, then waits for its gate, then one more."""
    gate[name] = threading.Event()
    try:
        yield from range(n)
        while not gate[name].is_set():
            time.sleep(0.01)
        yield 'after'
    finally:
        finished[name] = True


def raises_at_once():
    raise ValueError('at once')
    yield  # a generator all the same


def raises_after(n):
    for i in range(n):
        yield i
    raise KeyError('after items')


async def async_counted(name, n):
    produced[name] = 0
    try:
        for i in range(n):
            await asyncio.sleep(0)
            produced[name] += 1
            yield i * 10
    finally:
        finished[name] = True


async def async_raises(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i
    raise RuntimeError('async boom')


async def async_stops_its_loop(name):
    """One item, then stops the event loop running it, as code that closes
    down "its" loop would: the loop the stream gave it is gone mid-item."""
    try:
        yield 1
        asyncio.get_running_loop().stop()
        await asyncio.sleep(0.01)
        yield 2
    finally:
        finished[name] = True


dead_loop = asyncio.new_event_loop()
dead_loop.close()


async def async_awaits_a_closed_loop(name):
    """One item, then work on a loop that was closed long ago."""
    try:
        yield 1
        yield await dead_loop.run_in_executor(None, lambda: 2)
    finally:
        finished[name] = True


def not_iterable():
    return 42


def tokens(text):
    for word in text.split():
        yield word


def ended(name):
    return finished.get(name, False)


def count(name):
    return produced.get(name, 0)
