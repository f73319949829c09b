# What py_async_SUITE's cases call, run in __main__ by init_per_suite.
# `erlang' is imported there already.
import asyncio, threading, time

# The example, as written.
async def fetch(uid):
    return await erlang.async_call('get_user', uid)

async def as_gather_abc():
    return await asyncio.gather(erlang.async_call('a', 1), erlang.async_call('b', 2),
                                erlang.async_call('c', 3))

async def as_gather(name, argss):
    return await asyncio.gather(*[erlang.async_call(name, *args) for args in argss])

def as_timed(coroutine):
    t = time.monotonic()
    result = asyncio.run(coroutine)
    return (result, time.monotonic() - t)

def as_in_threads(n, make_coroutine):
    '''Runs make_coroutine(i) in its own loop on thread i, for i < n. The
    threads all live from before the first call of any until after the
    last, so they hold n workers at once.'''
    results = [None] * n
    all_started = threading.Barrier(n)
    all_done = threading.Barrier(n)
    def run(i):
        all_started.wait()
        try:
            results[i] = ('ok', asyncio.run(make_coroutine(i)))
        except BaseException as e:
            results[i] = ('raised', type(e).__name__, str(e))
        all_done.wait()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads: t.start()
    for t in threads: t.join()
    return results

async def as_try(name, *args):
    '''The outcome of erlang.async_call(name, *args), made in the loop.'''
    async def call():
        return await erlang.async_call(name, *args)
    return await as_outcome(call())

async def as_outcome(awaitable):
    try:
        return ('ok', await awaitable)
    except BaseException as e:
        return ('raised', type(e).__name__, str(e), getattr(e, 'erlang_class', None),
                getattr(e, 'reason', None))

def as_gather_values(values):
    async def gather():
        return list(await asyncio.gather(
            *[erlang.async_call('as_identity', v) for v in values]))
    return asyncio.run(gather())

def as_add_ten(x):
    return x + 10

async def as_double_later(x):
    await asyncio.sleep(0.01)
    return 2 * x

async def as_fail_later(text):
    await asyncio.sleep(0)
    raise ValueError(text)

as_log = []
async def as_sleep_forever():
    try:
        await asyncio.sleep(30)
    finally:
        as_log.append('sleep_forever cleaned up')

async def as_await_erlang(pid, x):
    try:
        return await erlang.async_call('as_hold', pid, x)
    finally:
        as_log.append(('await_erlang cleaned up', x))

def as_pending():
    '''Calls in flight and loops watching, for this thread.'''
    channel = erlang._channel()
    return (len(channel.pending), len(channel.watching))

as_told = set()

async def as_until_told(x):
    '''Returns once the test has said x (it adds x to as_told): that it has
    seen what it waits for before the coroutine may go on.'''
    while x not in as_told:
        await asyncio.sleep(0.01)
    as_told.discard(x)

# loops

def as_three_loops():
    out = []
    for k in range(3):
        out.append(tuple(asyncio.run(as_gather('as_identity', [(3 * k + j,) for j in (1, 2, 3)]))))
    loop = asyncio.new_event_loop()
    try:
        out.append(loop.run_until_complete(as_gather('as_identity', [(0,)])) * 2)
    finally:
        loop.close()
    out[-1] = tuple(out[-1])
    return out

def as_policy_check():
    before = asyncio.get_event_loop_policy()
    asyncio.run(fetch(1))
    after = asyncio.get_event_loop_policy()
    loop = asyncio.new_event_loop()
    try:
        same_loop_type = type(loop) is asyncio.SelectorEventLoop
    finally:
        loop.close()
    return (before is after, same_loop_type,
            type(after) is asyncio.DefaultEventLoopPolicy)

async def as_mixed():
    first = erlang.async_call('as_sleep', 50, (1, erlang.Atom('a')))
    second = erlang.async_call('as_sleep', 100, (2, erlang.Atom('b')))
    sync = erlang.call('as_sleep', 150, 30)
    return (await asyncio.gather(first, second), sync)

# errors

async def as_mixed_outcomes():
    return await asyncio.gather(as_outcome(erlang.async_call('as_identity', 1)),
                                as_outcome(erlang.async_call('as_raise', 2)),
                                as_outcome(erlang.async_call('as_identity', 3)))

async def as_bad_calls():
    out = []
    for args in [(), (1,), ('as_identity', object())]:
        try:
            erlang.async_call(*args)
            out.append('no error')
        except TypeError as e:
            out.append((type(e).__name__, str(e)))
    out.append(as_pending())
    return out

def as_no_loop():
    try:
        erlang.async_call('as_identity', 1)
    except RuntimeError as e:
        return (type(e).__name__, str(e))

# cancellation

async def as_wait_for_main(pid):
    try:
        await asyncio.wait_for(erlang.async_call('as_hold', pid, 1), 0.3)
        return 'not cancelled'
    except asyncio.TimeoutError:
        return ('timed out', as_pending())

def as_wait_for(pid):
    return asyncio.run(as_wait_for_main(pid))

def as_cancel_and_reuse(pid):
    loop = asyncio.new_event_loop()
    try:
        async def cancel_one():
            task = asyncio.ensure_future(erlang.async_call('as_hold', pid, 2))
            await as_until_told(2)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                return 'cancelled'
        first = loop.run_until_complete(cancel_one())
        second = loop.run_until_complete(as_gather('as_triple', [(i,) for i in range(10)]))
        return (first, second, as_pending())
    finally:
        loop.close()

async def as_gather_cancelled(pid):
    try:
        await asyncio.wait_for(as_gather('as_hold', [(pid, i) for i in range(20)]), 0.5)
    except asyncio.TimeoutError:
        return as_pending()

async def as_one_killed(pid):
    held = as_outcome(erlang.async_call('as_hold', pid, 8))
    others = [as_outcome(erlang.async_call('as_sleep', 300, i)) for i in range(3)]
    return await asyncio.gather(held, *others)

async def as_killed_while_blocked(pid):
    held = as_outcome(erlang.async_call('as_hold', pid, 9))
    blocked = erlang.call('as_block', pid)
    return blocked, await held

def as_closed_loop():
    loop = asyncio.new_event_loop()
    async def start():
        return (erlang.async_call('as_sleep', 100, 'late'),
                erlang.async_call('as_sleep', 3000, 'later still'))
    abandoned = loop.run_until_complete(start())
    loop.close()
    async def second():
        await asyncio.sleep(0.2)
        return ('second', await as_gather('as_identity', [(1,), (2,), (3,)]))
    result = asyncio.run(second())
    assert not any(f.done() for f in abandoned)
    return result + (as_pending(),)

# coroutines from Erlang

as_handled = []

async def as_busy_callbacks():
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(
        lambda loop, context: as_handled.append(repr(context.get('exception'))))
    def spin():
        time.sleep(0.001)
        loop.call_soon(spin)
    loop.call_soon(spin)
    try:
        await asyncio.sleep(30)
    finally:
        as_log.append('busy_callbacks cleaned up')

# faults

async def as_handler_dies(pid):
    calls = [as_outcome(erlang.async_call('as_hold', pid, i)) for i in range(3)]
    outcomes = await asyncio.gather(*calls)
    after = await erlang.async_call('as_triple', 5)
    return (outcomes, after, as_pending())

def as_handler_dies_main(pid):
    return asyncio.run(as_handler_dies(pid))

async def as_stop_under_me(pid):
    calls = [as_outcome(erlang.async_call('as_hold', pid, i)) for i in range(5)]
    return await asyncio.gather(*calls)

def as_stop_in_threads(pid):
    return as_in_threads(2, lambda i: as_stop_under_me(pid))

async def as_stopped():
    try:
        erlang.async_call('as_identity', 1)
    except RuntimeError as e:
        return (type(e).__name__, str(e))

async def as_cancel_first(pid):
    '''Cancels an async call at once and tells pid so; once told 7, makes
    one more call, as_mark, which reaches the handler after the cancel.'''
    task = asyncio.ensure_future(erlang.async_call('as_hold', pid, 7))
    await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        erlang.send(pid, erlang.Atom('as_cancelled'))
        await as_until_told(7)
        await erlang.async_call('as_mark', pid)
        return 'cancelled'

def as_cancel_first_main(pid):
    return as_in_threads(1, lambda i: as_cancel_first(pid))


# interrupted_coroutine_closes_its_loop_cleanly: an interruption that lands
# while py:call's event loop is shut down (in the coroutine's cleanup, in
# loop.close() just after the self-pipe socket is closed) or made
# (socketpair()), each made slow here so that it does.
import gc, io, socket, sys, weakref

as_loops = []
as_stderr = io.StringIO()
as_real_close = socket.socket.close
as_slow_sockets = set()
as_real_socketpair = socket.socketpair
as_slow_pair = []


def as_spin(seconds):
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


def as_socketpair_slowly(*args):
    pair = as_real_socketpair(*args)
    if as_slow_pair:
        as_slow_pair.clear()
        as_spin(3)
    return pair


def as_close_slowly(sock):
    slow = sock in as_slow_sockets
    as_real_close(sock)
    if slow:
        as_slow_sockets.discard(sock)
        as_spin(3)


async def as_cleanup_outlasts_interruption():
    as_loops.append(weakref.ref(asyncio.get_running_loop()))
    try:
        await asyncio.sleep(30)
    finally:
        await asyncio.sleep(3)


async def as_close_outlasts_interruption():
    loop = asyncio.get_running_loop()
    as_loops.append(weakref.ref(loop))
    as_slow_sockets.add(loop._ssock)
    await asyncio.sleep(30)


async def as_loop_made_slowly():
    as_loops.append(weakref.ref(asyncio.get_running_loop()))


def as_capture_stderr(slow_pair):
    """From now on stderr goes to as_stderr, and sockets close slowly."""
    global as_saved_stderr
    as_loops.clear()
    as_stderr.seek(0)
    as_stderr.truncate()
    as_saved_stderr = sys.stderr
    sys.stderr = as_stderr
    socket.socket.close = as_close_slowly
    socket.socketpair = as_socketpair_slowly
    if slow_pair:
        as_slow_pair.append(1)


def as_release_stderr():
    """Undoes as_capture_stderr; returns what was printed meanwhile."""
    socket.socket.close = as_real_close
    socket.socketpair = as_real_socketpair
    gc.collect()
    sys.stderr = as_saved_stderr
    return as_stderr.getvalue()


def as_loops_closed():
    return all(r() is None or r().is_closed() for r in as_loops)
