# What py_thread_SUITE's cases call, run in __main__ by init_per_suite.
# `erlang' is imported there already.
import threading, time, ctypes
from concurrent.futures import ThreadPoolExecutor

# The reference doc's examples, as written; the values they print or
# return are collected for Erlang.
def th_doc_thread(arg1, arg2):
    got = []
    def worker():
        result = erlang.call('my_function', arg1, arg2)
        got.append((result, threading.get_ident() != caller))
    caller = threading.get_ident()
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    return got

def th_doc_pool():
    idents = set()
    def call_erlang(x):
        idents.add(threading.get_ident())
        return erlang.call('double_it', x)
    with ThreadPoolExecutor(max_workers=4) as executor:
        results = list(executor.map(call_erlang, range(10)))
    return (results, threading.get_ident() not in idents, len(idents) <= 4)

def th_doc_chain():
    got = []
    def worker():
        # Chain multiple Erlang calls
        x = erlang.call('add_one', 0)
        x = erlang.call('add_one', x)
        x = erlang.call('add_one', x)
        got.append(x)
        return x  # Returns 3
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    return got

def th_doc_ten_threads():
    got = [None] * 10
    def worker(n):
        got[n] = erlang.call('double_it', n)
        return got[n]
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got

def th_doc_error():
    got = []
    def worker():
        try:
            result = erlang.call('maybe_fail', 42)
            got.append(('no exception', result))
        except RuntimeError as e:
            got.append((type(e).__name__, isinstance(e, erlang.ErlangError),
                        e.erlang_class, e.reason, f'Erlang error: {e}'))
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    return got

# Generic: one thread per argument list, each calling `name' once.
# Each result is ('ok', value) or ('raised', class name, str,
# erlang_class, reason).
def th_outcome(name, args):
    try:
        return ('ok', erlang.call(name, *args))
    except BaseException as e:
        return ('raised', type(e).__name__, str(e),
                getattr(e, 'erlang_class', None), getattr(e, 'reason', None))

# Starts one thread per tuple of arguments, running worker, and
# waits for them all.
def th_run_all(worker, arg_tuples):
    threads = [threading.Thread(target=worker, args=a) for a in arg_tuples]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

def th_in_threads(name, arg_lists):
    got = [None] * len(arg_lists)
    def worker(i, args):
        got[i] = th_outcome(name, args)
    th_run_all(worker, list(enumerate(arg_lists)))
    return got

# n threads, each making `calls' calls of th_scramble with unique
# arguments, all n bound to a worker at once after their first
# call; gives (results per thread, exceptions).
def th_calls_in_threads(n, calls):
    got = [None] * n
    errors = []
    barrier = threading.Barrier(n)
    def worker(t):
        try:
            first = erlang.call('th_scramble', t * 1000)
            barrier.wait(timeout=60)
            got[t] = [first] + [erlang.call('th_scramble', t * 1000 + i)
                                for i in range(1, calls)]
        except BaseException as e:
            errors.append((t, type(e).__name__, str(e)))
    th_run_all(worker, [(t,) for t in range(n)])
    return (got, errors)

# Threads of threads: level d calls double_it(x + d), then starts
# level d + 1 and waits for it.
def th_nested_threads(depth, x):
    got = {}
    def level(d):
        got[d] = th_outcome('double_it', [x + d])
        if d < depth:
            t = threading.Thread(target=level, args=(d + 1,))
            t.start()
            t.join()
    t = threading.Thread(target=level, args=(1,))
    t.start()
    t.join()
    return [got.get(d) for d in range(1, depth + 1)]

def th_executor_in_thread(n):
    got = []
    def outer():
        with ThreadPoolExecutor(max_workers=3) as executor:
            got.append(list(executor.map(lambda x: erlang.call('th_scramble', x), range(n))))
    t = threading.Thread(target=outer)
    t.start()
    t.join()
    return got

# Threads created by C code: pthread_create with a ctypes callback.
th_c_callback_type = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)

def th_c_threads(n, at_once):
    libc = ctypes.CDLL(None)
    got = []
    # Kernel thread ids of the threads Python started and of this one:
    # unique among live threads (a thread ident, a pthread_t, is reused
    # by a new C thread as soon as an old one is gone).
    known = set(t.native_id for t in threading.enumerate()
                if not isinstance(t, threading._DummyThread))
    known.add(threading.get_native_id())
    barrier = threading.Barrier(n)
    def body(arg):
        try:
            got.append(('ok', erlang.call('double_it', 21),
                        threading.get_native_id() not in known))
            if at_once:
                barrier.wait(timeout=60)
        except BaseException as e:
            got.append(('raised', type(e).__name__, str(e)))
        return None
    cb = th_c_callback_type(body)
    created = []
    joined = []
    if at_once:
        tids = [ctypes.c_ulong() for _ in range(n)]
        for tid in tids:
            created.append(libc.pthread_create(ctypes.byref(tid), None, cb, None))
        for tid in tids:
            joined.append(libc.pthread_join(tid, None))
    else:
        for _ in range(n):
            tid = ctypes.c_ulong()
            created.append(libc.pthread_create(ctypes.byref(tid), None, cb, None))
            joined.append(libc.pthread_join(tid, None))
    return (created, joined, got)

# One thread, many calls in a row with unique arguments.
def th_in_a_row(n):
    got = []
    def worker():
        for i in range(n):
            got.append(erlang.call('th_scramble', i))
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    return got

# 8 threads each wait 150 ms in Erlang: (seconds taken, results).
def th_sleepers(n):
    got = [None] * n
    def worker(i):
        got[i] = erlang.call('sleep150', i)
    t0 = time.monotonic()
    th_run_all(worker, [(i,) for i in range(n)])
    return (time.monotonic() - t0, got)

# nthreads threads each call `name' ncalls times with unique
# arguments (thread t: t * stride + i) and check each result is
# factor times its argument: (mismatches, calls made, exceptions).
def th_check_calls(name, factor, nthreads, ncalls, stride):
    bad = [0] * nthreads
    made = [0] * nthreads
    errors = []
    def worker(t):
        try:
            for i in range(ncalls):
                x = t * stride + i
                if erlang.call(name, x) != factor * x:
                    bad[t] += 1
                made[t] += 1
        except BaseException as e:
            errors.append((t, type(e).__name__, str(e)))
    th_run_all(worker, [(t,) for t in range(nthreads)])
    return (sum(bad), sum(made), errors)

# n threads all bound to a worker at the same time: each calls once,
# waits for the others, then calls `calls' more times.
def th_held_together(n, calls):
    barrier = threading.Barrier(n)
    got = [None] * n
    def worker(t):
        try:
            first = erlang.call('th_scramble', t)
            barrier.wait(timeout=60)
            rest = [erlang.call('th_scramble', t * 100 + i) for i in range(calls)]
            got[t] = (first, rest)
        except BaseException as e:
            got[t] = ('raised', type(e).__name__, str(e))
    th_run_all(worker, [(t,) for t in range(n)])
    return got

# Reentry.
def th_triple(x):
    return x * 3

# Faults.
def th_fail_then_succeed(name, n):
    got = [None] * n
    def worker(i):
        got[i] = (th_outcome(name, [i]), th_outcome('double_it', [i]))
    th_run_all(worker, [(i,) for i in range(n)])
    return got

th_orphans = []

def th_orphaned_threads(pid, n):
    def worker(i):
        th_orphans.append((i, th_outcome('th_slow', [pid, i])))
    th_run_all(worker, [(i,) for i in range(n)])
    return 'joined'

# Resources: batches of short-lived threads, one call each; the
# threads of a batch all hold their worker at the same time.
def th_short_lived(batches, per_batch):
    bad = 0
    made = 0
    errors = []
    for b in range(batches):
        got = [None] * per_batch
        barrier = threading.Barrier(per_batch)
        def worker(i, x):
            try:
                got[i] = erlang.call('th_scramble', x)
                barrier.wait(timeout=60)
            except BaseException as e:
                got[i] = (type(e).__name__, str(e))
        th_run_all(worker, [(i, b * per_batch + i) for i in range(per_batch)])
        for i in range(per_batch):
            made += 1
            if got[i] != 3 * (b * per_batch + i) + 1:
                bad += 1
                if len(errors) < 5:
                    errors.append((b, i, got[i]))
    return (bad, made, errors)

# A thread's first erlang.call, from a thread started for it.
def th_first_call():
    out = []
    def run():
        try:
            out.append(('ok', erlang.call('th_scramble', 1)))
        except Exception as e:
            out.append(('raised', type(e).__name__))
    t = threading.Thread(target=run)
    t.start(); t.join()
    return out[0]
