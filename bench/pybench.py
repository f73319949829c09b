"""The Python half of `make bench` (bench/py_bench.erl drives it).

Everything timed here returns durations in nanoseconds; py_bench turns them
into medians and percentiles. 'bench_identity' is an Erlang function that
py_bench registers: it returns its argument.
"""

import asyncio
import csv
import io
import json
import logging
import os
import threading
import time

import erlang

clock = time.perf_counter_ns
# A thread that fails breaks its barrier instead of leaving the others
# waiting for ever.
BARRIER_TIMEOUT = 120


def repeat(fn, n, *args):
    for _ in range(n):
        fn(*args)


def collect(once, n):
    """n durations, each returned by once(). Warm-ups are py_bench's: it
    asks for samples it throws away."""
    return [once() for _ in range(n)]


def timed(fn, *args):
    def once():
        start = clock()
        fn(*args)
        return clock() - start

    return once


def ident(x):
    return x


def one_changed(x):
    """A new object of the same size as x: a binary made by Python."""
    return x[:-1] + b"!"


async def nothing():
    return None


def double(x):
    return x * 2


_memory = io.StringIO()


def print_line():
    print('one line')


def print_line_to_memory():
    print('one line', file=_memory)
    _memory.seek(0)
    _memory.truncate()


_log = logging.getLogger('pybench')


def log_warning(x):
    _log.warning('value %d', x)
    return x


def log_debug(x):
    _log.debug('value %d', x)
    return x


class Doubler:
    """What py:call_method calls in row 10; double() above is its py:call
    twin."""

    def double(self, x):
        return x * 2


def ints(n):
    """Row 12's list."""
    return list(range(n))


def ints_gen(n):
    """Row 12's stream."""
    yield from range(n)


def channel_take(channel, n):
    """Row 13: receives n messages from an Erlang channel."""
    receive = channel.receive
    for _ in range(n):
        receive()
    return n


def sends(pid, n):
    """Row 13's baseline: n erlang.send to an Erlang process."""
    send = erlang.send
    for i in range(n):
        send(pid, i)
    return n


def pair():
    """A small object with an Erlang form: row 10 takes it by value and by
    reference."""
    return (1, 2)


def calls(n):
    """erlang.call from the thread this runs on."""
    return collect(timed(erlang.call, 'bench_identity', 1), n)


def with_threads(n, target, meanwhile):
    """Runs target in n new threads and meanwhile() in this one, then joins
    the threads; returns what meanwhile returned."""
    started = [threading.Thread(target=target) for _ in range(n)]
    for t in started:
        t.start()
    try:
        return meanwhile()
    finally:
        for t in started:
            t.join()


def threads(nthreads, calls_each, warmup):
    """One run of nthreads threads making calls_each erlang.calls at once,
    released together after their warm-up: wall time per call."""
    barrier = threading.Barrier(nthreads + 1, timeout=BARRIER_TIMEOUT)

    def work():
        repeat(erlang.call, warmup, 'bench_identity', 1)
        barrier.wait()
        repeat(erlang.call, calls_each, 'bench_identity', 1)
        barrier.wait()

    def time_the_calls():
        barrier.wait()
        start = clock()
        barrier.wait()
        return (clock() - start) / (nthreads * calls_each)

    return with_threads(nthreads, work, time_the_calls)


def first_calls(n):
    """The first erlang.call of each of n new threading.Threads, timed in
    the thread: from the first line of its target, which makes the call,
    to the result. Threads run one at a time, each joined before the next
    starts."""

    def once():
        took = []

        def target():
            start = clock()
            erlang.call('bench_identity', 1)
            took.append(clock() - start)

        t = threading.Thread(target=target)
        t.start()
        t.join()
        return took[0]

    return collect(once, n)


async def async_rounds(in_flight, warmup, n):
    """Wall times of n rounds of in_flight erlang.async_calls made from one
    event loop, all in flight at once (awaited alone when in_flight is 1),
    after warmup rounds in the same loop: py:call runs each coroutine in a
    new loop. A loop of its own, as a coroutine cannot share collect()."""
    call = erlang.async_call

    async def once():
        start = clock()
        if in_flight == 1:
            await call('bench_identity', 1)
        else:
            await asyncio.gather(*[call('bench_identity', i) for i in range(in_flight)])
        return clock() - start

    for _ in range(warmup):
        await once()
    return [await once() for _ in range(n)]


def usage():
    """RSS and open fds of the VM's process, and py:thread_stats()."""
    with open('/proc/self/status') as status:
        rss_kib = next(int(line.split()[1]) for line in status if line.startswith('VmRSS:'))
    return {
        'rss_kib': rss_kib,
        'fds': len(os.listdir('/proc/self/fd')),
        'stats': erlang.call('bench_thread_stats'),
    }


def live_threads(n):
    """Starts n threads that each make one erlang.call and then wait, and
    reads the process's RSS and open fds (and py:thread_stats/0 through
    'bench_thread_stats') before they start and while they all wait."""
    called = threading.Barrier(n + 1, timeout=BARRIER_TIMEOUT)
    release = threading.Event()

    def work():
        erlang.call('bench_identity', 1)
        called.wait()
        release.wait()

    def read_usage():
        called.wait()
        try:
            return usage()
        finally:
            release.set()

    return {'before': usage(), 'after': with_threads(n, work, read_usage)}


def write_csv(path, header, rows):
    with open(path, 'w', newline='') as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


def write_json(path, document):
    with open(path, 'w') as out:
        json.dump(document, out, indent=2)
        out.write('\n')
