# Fixtures of py_channel_SUITE, run in __main__ by init_per_suite (where
# `erlang' is imported already). Receivers note, under a name the case
# gives them, what they got and how they ended, so that cases can see it
# from Erlang; those that wait tell the case's process before they do.
import asyncio
import threading

Atom = erlang.Atom

state = {}      # name -> where receive_noting is: receiving, (got, msg), or what it raised
threads = {}    # name -> the threads a case started
got = {}        # name -> what each of those threads received, a list per thread
ended = {}      # name -> how each of those threads ended: closed, or what it raised
kept = {}       # name -> a channel that only Python holds


# What Python sees of a channel

def identity(x):
    return x


def is_channel(x):
    return isinstance(x, erlang.Channel)


def send_back(pid, x):
    erlang.send(pid, (Atom('sent'), x))


def describe(ch):
    return (ch.closed, len(ch))


def close(ch):
    ch.close()


# Taking messages, one way or another

def take(ch, timeout=None):
    '''One ch.receive(timeout=timeout): (got, message), or the name of the
    exception it raised.'''
    try:
        return (Atom('got'), ch.receive(timeout=timeout))
    except Exception as e:
        return Atom(type(e).__name__)


def try_take(ch):
    '''One ch.try_receive(): (got, message), (got, None) when empty, or the
    name of the exception it raised.'''
    try:
        return (Atom('got'), ch.try_receive())
    except Exception as e:
        return Atom(type(e).__name__)


def receive_one(ch):
    return ch.receive()


def drain(ch):
    '''Every message of a closed channel, then how receive ended. A channel
    still open fails the call after 10 s instead of waiting for ever.'''
    msgs = []
    try:
        while True:
            msgs.append(ch.receive(timeout=10))
    except erlang.ChannelClosed:
        return (msgs, Atom('closed'))


def iterate(ch):
    return list(ch)


async def async_iterate(ch):
    return [msg async for msg in ch]


def receive_noting(name, ch, pid, timeout=None):
    '''One ch.receive(), noted in state[name]; tells pid (receiving, name)
    just before it waits.'''
    state[name] = Atom('receiving')
    try:
        erlang.send(pid, (Atom('receiving'), name))
        msg = ch.receive(timeout=timeout)
    except BaseException as e:
        state[name] = Atom(type(e).__name__)
        raise
    state[name] = (Atom('got'), msg)
    return msg


def where(name):
    return state.get(name)


# Receivers in threads of their own, which no call from Erlang waits for

def start(name, new):
    threads[name] = new
    for t in new:
        t.start()


def start_receive_noting(name, ch, pid):
    '''receive_noting in a thread of its own.'''
    def run():
        try:
            receive_noting(name, ch, pid)
        except BaseException:
            pass    # noted in state[name]
    start(name, [threading.Thread(target=run)])


def start_receivers(name, ch, n, pid):
    '''n threads, each taking messages with `for msg in ch' until the
    channel is closed and drained; each tells pid (receiving, name) first.'''
    got[name] = [[] for _ in range(n)]
    ended[name] = []

    def receive_all(mine):
        try:
            erlang.send(pid, (Atom('receiving'), name))
            for msg in ch:
                mine.append(msg)
            ended[name].append(Atom('closed'))
        except BaseException as e:
            ended[name].append(Atom(type(e).__name__))
    start(name, [threading.Thread(target=receive_all, args=(mine,)) for mine in got[name]])


def finished(name):
    return not any(t.is_alive() for t in threads[name])


def received(name):
    return got[name]


def forget(name):
    """Drops what a case's threads received, once it has been checked: the
    objects would otherwise live until the VM exits, where valgrind takes
    some of the 20 000 for lost (it cannot see every pointer in memory that
    ERTS has used as a stack: test/valgrind.supp)."""
    got.pop(name, None)


def ends(name):
    return ended[name]


# The actor of docs/channels.md, in its simplest form

def actor(ch):
    for from_pid, n in ch:
        erlang.send(from_pid, n * 2)


def start_actor(name, ch):
    start(name, [threading.Thread(target=actor, args=(ch,))])


# asyncio

def async_receive_later(name, ch, pid):
    '''asyncio.run of a coroutine that awaits one message, telling pid
    first.'''
    async def main():
        erlang.send(pid, (Atom('receiving'), name))
        return await ch.async_receive()
    return asyncio.run(main())


async def async_receive_one(name, ch, pid):
    '''The same, as a coroutine that py:call runs itself.'''
    erlang.send(pid, (Atom('receiving'), name))
    return await ch.async_receive()


def coroutines_and_a_thread(name, ch, pid):
    '''Two coroutines on one loop (one awaiting async_receive, one with
    `async for') and a thread (`for') take from ch until it is closed;
    what each got, in the order it got it.'''
    in_thread = []

    def receive_in_thread():
        for msg in ch:
            in_thread.append(msg)
    thread = threading.Thread(target=receive_in_thread)
    thread.start()

    async def with_async_receive():
        mine = []
        while True:
            try:
                mine.append(await ch.async_receive())
            except erlang.ChannelClosed:
                return mine

    async def with_async_for():
        return [msg async for msg in ch]

    async def main():
        erlang.send(pid, (Atom('receiving'), name))
        return await asyncio.gather(with_async_receive(), with_async_for())
    first, second = asyncio.run(main())
    thread.join()
    return [first, second, in_thread]


def loops_in_threads(name, ch, pid, n):
    '''n threads, each running its own event loop that takes from ch with
    `async for' until it is closed; what each got.'''
    results = [None] * n

    async def receive_all():
        return [msg async for msg in ch]

    def run(i):
        results[i] = asyncio.run(receive_all())
    new = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in new:
        t.start()
    erlang.send(pid, (Atom('receiving'), name))
    for t in new:
        t.join()
    return results


# A channel that only Python holds

def keep(name, ch):
    kept[name] = ch


def take_kept(name):
    '''What the kept channel holds now (by try_receive), whether it is
    closed, and how many messages it still holds.'''
    ch = kept[name]
    msgs = []
    while (msg := ch.try_receive()) is not None:
        msgs.append(msg)
    return (msgs, ch.closed, len(ch))


def give_back(name):
    return kept.pop(name)


# Bad use, forks, reloads

def wait_closed_twice_then_take(ch, timeout):
    """A coroutine's wait (what async_receive uses) ended twice over, then
    one receive."""
    taken, wait = ch._take_or_wait()
    assert not taken
    wait.close()
    wait.close()
    del wait
    return take(ch, timeout)


def truth_of(ch):
    return (bool(ch), len(ch))


def in_forked_child(ch):
    """What ch.receive() and ch.try_receive() raise in a forked child."""
    import os
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        names = []
        for attempt in (lambda: ch.receive(timeout=1), ch.try_receive, ch.close):
            try:
                attempt()
                names.append('none')
            except Exception as e:
                names.append(type(e).__name__)
        os.write(write_end, ','.join(names).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, 'rb') as f:
        told = f.read().decode()
    os.waitpid(pid, 0)
    return [Atom(name) for name in told.split(',')]
