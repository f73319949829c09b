# What py_fault_SUITE's cases call, run in __main__ by init_per_suite.
# `erlang' is imported there already.
import asyncio, collections, threading, time

# The outcomes of every fault_load so far, counted by (kind, outcome) as
# they happen: the cases wait on them (the kinds are 'call' and
# 'async_call'). Cleared by the cases.
fault_seen = collections.Counter()

def fault_failures():
    '''How many calls of the loads have failed so far.'''
    return sum(n for (kind, outcome), n in fault_seen.items() if outcome != 'ok')

def fault_load(ncallers, nloops, seconds):
    '''ncallers threads looping erlang.call and nloops threads each
    running an event loop that gathers 20 erlang.async_calls at a time,
    for the given seconds. Every result is checked against what was
    sent; returns the outcomes counted: 'ok', 'wrong', or the name of
    the exception raised.'''
    deadline = time.monotonic() + seconds
    counts = collections.Counter()
    lock = threading.Lock()
    def caller(k):
        c = collections.Counter()
        def count(outcome):
            c[outcome] += 1
            fault_seen[('call', outcome)] += 1
        i = 0
        while time.monotonic() < deadline:
            i += 1
            try:
                count('ok' if erlang.call('fault_ident', (k, i)) == (k, i) else 'wrong')
            except Exception as e:
                count(type(e).__name__)
                time.sleep(0.001)
        with lock:
            counts.update(c)
    def looper(k):
        c = collections.Counter()
        def count(outcome):
            c[outcome] += 1
            fault_seen[('async_call', outcome)] += 1
        async def main():
            i = 0
            while time.monotonic() < deadline:
                args = [(k, i + j) for j in range(20)]
                i += 20
                futures = []
                try:
                    for a in args:
                        futures.append(erlang.async_call('fault_ident', a))
                except Exception as e:
                    count(type(e).__name__)
                results = await asyncio.gather(*futures, return_exceptions=True)
                for a, r in zip(args, results):
                    if isinstance(r, BaseException):
                        count(type(r).__name__)
                    else:
                        count('ok' if r == a else 'wrong')
                if len(futures) < len(args):
                    await asyncio.sleep(0.001)
        asyncio.run(main())
        with lock:
            counts.update(c)
    threads = ([threading.Thread(target=caller, args=(k,)) for k in range(ncallers)] +
               [threading.Thread(target=looper, args=(ncallers + k,)) for k in range(nloops)])
    for t in threads: t.start()
    for t in threads: t.join()
    return dict(counts)

def fault_reenter(x):
    return erlang.call('fault_ident', x)

def fault_sleep_then_call(pid, ms, x):
    '''Tells pid (sleeping, x), sleeps ms, then calls fault_ident(x).'''
    erlang.send(pid, (erlang.Atom('sleeping'), x))
    time.sleep(ms / 1000)
    return erlang.call('fault_ident', x)
