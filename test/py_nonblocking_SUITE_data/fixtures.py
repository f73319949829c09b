# What py_nonblocking_SUITE's cases call, run in __main__ by init_per_suite.
# `erlang' is imported there already.
import asyncio, time

counters = {}

def count_forever(name, pid):
    '''Counts in counters[name] for ever; tells pid ('counting', name) once
    it has started and ('stopped', name) once it has stopped.'''
    counters[name] = 0
    try:
        erlang.send(pid, (erlang.Atom('counting'), name))
        while True:
            counters[name] += 1
    finally:
        erlang.send(pid, (erlang.Atom('stopped'), name))

told = set()

def count_until_told(name, pid):
    '''As count_forever, until name is added to told.'''
    counters[name] = 0
    try:
        erlang.send(pid, (erlang.Atom('counting'), name))
        while name not in told:
            counters[name] += 1
    finally:
        erlang.send(pid, (erlang.Atom('stopped'), name))

def slow_answer(seconds, value):
    time.sleep(seconds)
    return value

def tell(pid, what):
    erlang.send(pid, what)

def fail(message):
    raise ValueError(message)

async def nap(seconds, value):
    await asyncio.sleep(seconds)
    return value

async def nap_then_fail(seconds, message):
    await asyncio.sleep(seconds)
    raise KeyError(message)
