# erlang_async.py: the Python half of the `erlang` module: erlang.async_call,
# the coroutines of py:async_gather (_gather), the shared state
# (erlang.state_*), what erlang.Channel does for asyncio, and the guard on
# extension modules in a context of its own (_guard_extensions).
#
# This file runs once, inside the namespace of the built-in `erlang` module,
# when the interpreter starts (c_src/async.c loads it); call, _async_submit,
# _async_cancel, _async_fd, _async_take and ErlangError are that module's C
# functions and class.
#
# Each thread has one channel: the futures of its calls in flight, keyed by
# call id, and the event loops watching the thread's worker fd, which Erlang
# makes readable when answers are queued. A loop watches the fd only while
# it has calls in flight (or while _run_coroutine runs it), so a loop that
# is closed or abandoned is never left holding the fd.

import os as _os
import threading as _threading

_local = _threading.local()
_asyncio = None  # imported on first use; most programs never need it
_inspect = None  # imported by asyncio
_Future = None


def _load_asyncio():
    global _asyncio, _inspect, _Future
    import asyncio
    import inspect

    class ErlangFuture(asyncio.Future):
        """A future whose cancellation is passed on to Erlang."""

        def cancel(self, msg=None):
            if not super().cancel(msg):
                return False
            self._channel.cancel(self._call_id)
            return True

    _asyncio, _inspect, _Future = asyncio, inspect, ErlangFuture


class _Channel:
    def __init__(self, fd):
        self.fd = fd
        self.pending = {}  # call id -> future
        self.watching = []  # loops with a reader on fd
        self.pinned = 0  # _run_coroutine runs that keep the reader

    def watch(self, loop):
        if loop not in self.watching:
            self.forget_closed_loops()
            loop.add_reader(self.fd, self.drain)
            self.watching.append(loop)

    def forget_closed_loops(self):
        # A loop closed with calls in flight (never awaited, or torn down
        # by an interruption in the middle of drain) left them in pending:
        # their futures can never complete, and their answers are dropped
        # when they come.
        self.watching = [old for old in self.watching if not old.is_closed()]
        self.pending = {i: f for i, f in self.pending.items() if not f.get_loop().is_closed()}

    def unwatch_if_idle(self):
        if self.pending or self.pinned:
            return
        for loop in self.watching:
            if not loop.is_closed():
                loop.remove_reader(self.fd)
        self.watching.clear()

    def cancel(self, call_id):
        if self.pending.pop(call_id, None) is not None:
            _async_cancel(call_id)
            self.unwatch_if_idle()

    def drain(self):
        answers, lost_upto = _async_take()
        pending = self.pending
        for call_id, ok, value in answers:
            future = pending.pop(call_id, None)
            if future is None or future.done() or future.get_loop().is_closed():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if lost_upto:
            for call_id in [i for i in pending if i <= lost_upto]:
                future = pending.pop(call_id)
                if not future.done() and not future.get_loop().is_closed():
                    future.set_exception(
                        ErlangError("the Erlang process running the call died before it answered")
                    )
        self.unwatch_if_idle()


    def abandon(self):
        """The thread's worker was replaced: its fd is closed, and the
        answers of the calls still pending can never come."""
        for loop in self.watching:
            if not loop.is_closed():
                loop.remove_reader(self.fd)
        self.watching.clear()
        for future in self.pending.values():
            if not future.done() and not future.get_loop().is_closed():
                future.set_exception(ErlangError("the thread's worker was replaced "
                                                 "(py_nif loaded again) before Erlang answered"))
        self.pending.clear()


def _channel():
    """The thread's channel, made anew when the thread's worker (and so its
    fd) is no longer the one the channel was made for: a load of a new
    py_nif replaces the workers of every thread (c_src/worker.c), and a
    channel kept with the old, closed fd made every later coroutine run on
    that thread fail with EBADF."""
    fd = _async_fd()
    channel = getattr(_local, "channel", None)
    if channel is None or channel.fd != fd:
        if channel is not None:
            channel.abandon()
        channel = _local.channel = _Channel(fd)
    return channel


def async_call(name, *args):
    """async_call(name, *args) -> awaitable

    Calls the Erlang function registered as name, like call(), without
    blocking the running event loop: the request is sent at once and the
    returned future completes with the result, or raises ErlangError or
    UnknownFunctionError, when Erlang answers. Many may be in flight at once.
    Cancelling the future kills the Erlang process running the function.
    Must be called with an asyncio event loop running in this thread."""
    if _asyncio is None:
        _load_asyncio()
    loop = _asyncio.get_running_loop()
    channel = _channel()
    call_id = _async_submit(name, *args)
    future = _Future(loop=loop)
    future._channel = channel
    future._call_id = call_id
    channel.pending[call_id] = future
    channel.watch(loop)
    return future


async def _watched(coroutine):
    channel = _channel()  # its _async_fd(): an interruption of this call now wakes the loop
    channel.pinned += 1
    try:
        # add_reader releases the GIL (epoll_ctl), where an interruption is
        # likely to land: inside the try, so that pinned is undone.
        channel.watch(_asyncio.get_running_loop())
        return await coroutine
    finally:
        channel.pinned -= 1
        channel.unwatch_if_idle()


def _run_coroutine(coroutine):
    """Runs the coroutine a py:call or py:eval returned, in a new event loop
    that a timeout of the call wakes, as asyncio.run would; an interruption
    of the call (erlang.CallInterrupted) ends it as _shut_down says."""
    if _asyncio is None:
        _load_asyncio()
    loop = watched = None
    try:
        loop = _new_loop()
        _asyncio.set_event_loop(loop)
        watched = _watched(coroutine)
        return loop.run_until_complete(watched)
    finally:
        _shut_down(loop, (coroutine, watched))


def _new_loop():
    """asyncio.new_event_loop(). If an interruption cuts the loop's __init__
    short, nothing refers to the loop but the interruption's traceback, and
    once that goes the loop's __del__ closes it and fails on what __init__
    never made (AttributeError: ... no attribute '_signal_handlers'): the
    half-made loop is found in the traceback and closed first."""
    try:
        return _asyncio.new_event_loop()
    except CallInterrupted as e:
        tb = e.__traceback__
        while tb is not None:
            made = tb.tb_frame.f_locals.get("self")
            if isinstance(made, _asyncio.BaseEventLoop):
                _close_half_made(made)
                break
            tb = tb.tb_next
        raise


def _close_half_made(loop):
    """Closes what a selector loop's __init__ opens (the selector and the
    self-pipe), as far as it got, and marks the loop closed, so that its
    __del__ does nothing."""
    for name in ("_csock", "_ssock", "_selector"):
        opened = getattr(loop, name, None)
        if opened is not None:
            opened.close()
    loop._closed = True


# asyncio.run's shutdown, in the order it makes them: the tasks still
# pending are cancelled and run to the end of their cleanup, asynchronous
# generators closed, the default executor's threads waited for. Each runs
# the call's own code.
def _finish_tasks(loop):
    _asyncio.runners._cancel_all_tasks(loop)  # asyncio.run's own, 3.10 to 3.13


def _finish_asyncgens(loop):
    _complete(loop, loop.shutdown_asyncgens())


def _finish_executor(loop):
    _complete(loop, loop.shutdown_default_executor())


def _shut_down(loop, coroutines):
    """What asyncio.run does once its coroutine has ended, carried through
    interruptions. An interruption is asynchronous (the watchdog raises it
    at whatever line runs) and comes again every second while the call goes
    on, after a timeout or its caller's death. asyncio expects neither, as
    the tracebacks it printed showed: an interruption inside loop.close()
    left its self-pipe half closed, and the loop's __del__ then failed to
    close it again (ValueError: Invalid file descriptor: -1); one in the
    coroutine's cleanup left its task to be reported "destroyed but
    pending", or a shutdown coroutine "never awaited".

    So, much as asyncio.Runner treats a second Ctrl-C: after the
    interruption that ended the coroutine, the call's code runs its cleanup
    as asyncio.run would let it; an interruption during that cleanup stops
    it, and what it leaves unfinished is let go without a word. The loop is
    then closed whatever comes, and the interruption raised."""
    interruption = None
    cut_short = False
    if loop is not None:
        for step in (_finish_tasks, _finish_asyncgens, _finish_executor):
            try:
                step(loop)
            except CallInterrupted as e:
                interruption = e
                cut_short = True
                break
    # Each step is tried until it has run to its end: these run no code of    # the call's, and an interruption caught here comes again only a second
    # later, far longer than any of them takes.
    closing = []
    for step in (lambda: _let_go(loop, coroutines, cut_short),
                 lambda: _asyncio.set_event_loop(None),
                 lambda: _close(loop, closing)):
        while True:
            try:
                step()
                break
            except CallInterrupted as e:
                interruption = e
    if interruption is not None:
        raise interruption


def _complete(loop, coroutine):
    """loop.run_until_complete(coroutine); a coroutine that an interruption
    kept from starting is closed, or Python would warn that it was never
    awaited."""
    try:
        loop.run_until_complete(coroutine)
    finally:
        _close_if_unstarted(coroutine)


def _close_if_unstarted(coroutine):
    if (_inspect.iscoroutine(coroutine)
            and _inspect.getcoroutinestate(coroutine) == _inspect.CORO_CREATED):
        coroutine.close()


def _let_go(loop, coroutines, cut_short):
    """Coroutines that never started are closed (see _complete). When an
    interruption cut the shutdown short, the tasks and futures it left
    unfinished are dropped with the loop, as in any program stopped in the
    middle, but asyncio's reports of that, made through the loop's
    exception handler as each is collected, are not printed: a task
    "destroyed but it is pending", a future whose exception (a cancellation,
    an answer that came meanwhile) "was never retrieved"."""
    tasks = _asyncio.all_tasks(loop) if cut_short else ()
    for coroutine in [*coroutines, *(task.get_coro() for task in tasks)]:
        _close_if_unstarted(coroutine)
    if cut_short:
        loop.set_exception_handler(_dropping_reports(loop.get_exception_handler()))


def _dropping_reports(handler):
    """An exception handler that drops asyncio's reports of a task or a
    future dropped unfinished, and passes the rest on to handler (None: the
    loop's default)."""

    def drop_reports(loop, context):
        message = context.get("message", "")
        if message == "Task was destroyed but it is pending!":
            return
        if message.endswith("exception was never retrieved"):
            return
        if handler is None:
            loop.default_exception_handler(context)
        else:
            handler(loop, context)

    return drop_reports


def _close(loop, closing):
    """loop.close(). A close that an interruption cut short may have left
    the self-pipe half closed, which a second close() cannot get past: the
    base class's close then does the rest (the selector's fd is closed
    when the loop is collected)."""
    if loop is None:
        return
    if not closing:
        closing.append(True)
        loop.close()
        return
    try:
        loop.close()
    except (ValueError, AttributeError):
        _asyncio.BaseEventLoop.close(loop)


# ---- py:async_gather ------------------------------------------------------

async def _gather(calls):
    """The coroutine of py:async_gather/2, which py:call runs in a new event
    loop (_run_coroutine): every [module, function, args, kwargs] of calls
    is called, and what they return awaited together (asyncio.gather); the
    results in the order of calls. A function that returns no awaitable
    gives its value. The first exception is raised; _shut_down then
    cancels the coroutines still running."""
    import importlib

    awaitables = []
    try:
        for module, function, args, kwargs in calls:
            target = importlib.import_module(module)
            for name in function.split("."):
                target = getattr(target, name)
            result = target(*args, **kwargs)
            awaitables.append(result if _inspect.isawaitable(result) else _value(result))
    except BaseException:
        # Those made before the failure never run: closed, or Python would
        # warn that they were never awaited.
        for awaitable in awaitables:
            _close_if_unstarted(awaitable)
        raise
    return list(await _asyncio.gather(*awaitables))


async def _value(value):
    return value


# ---- shared state ---------------------------------------------------------
#
# The table is Erlang's (py:state_*, src/py_state.erl); these call its
# functions, which the application keeps under reserved names.

class StateFullError(Exception):
    """A new key would take the shared state past its bound (the
    application environment max_state_entries)."""


def _state(name, *args):
    result = call("_erlang_python." + name, *args)
    if isinstance(result, tuple) and len(result) == 2 and result[0] == "error":
        reason = result[1]
        if isinstance(reason, tuple) and reason[0] == "state_full":
            raise StateFullError("the shared state holds its most keys, %d" % reason[1])
        if reason == "not_an_integer":
            raise TypeError("the value under %r is not an integer" % (args[0],))
        raise ErlangError("erlang.state_%s: %r" % (name, reason))
    return result


def state_get(key, default=None):
    """state_get(key, default=None) -> the value kept under key in the
    shared state (py:state_fetch/1), or default."""
    found = _state("state_get", key)
    return found[0] if found else default


def state_set(key, value):
    """state_set(key, value): keeps value under key in the shared state
    (py:state_store/2). A str key is a binary on the Erlang side. Raises
    StateFullError if key is new and the state holds its most keys."""
    _state("state_set", key, value)


def state_delete(key):
    """state_delete(key): removes key from the shared state, if there."""
    _state("state_delete", key)


def state_keys():
    """state_keys() -> list of the shared state's keys, in no order."""
    return _state("state_keys")


def state_incr(key, n=1):
    """state_incr(key, n=1) -> the integer under key plus n, kept
    atomically (a missing key counts from 0). Raises TypeError if the value
    is not an integer."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError("state_incr: n must be an int, not %s" % type(n).__name__)
    return _state("state_incr", key, n)


def state_decr(key, n=1):
    """state_decr(key, n=1) -> state_incr(key, -n)."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError("state_decr: n must be an int, not %s" % type(n).__name__)
    return _state("state_incr", key, -n)


# ---- channels ---------------------------------------------------------------
#
# erlang.Channel's async_receive and async iteration (c_src/channel_type.c
# has the rest). A coroutine with nothing to take becomes one of the
# channel's waiters (the _ChannelWait it is given holds its place until
# closed) and has its loop watch the channel's eventfd, which is readable
# while something can be taken. Each waiter watches a duplicate of the fd:
# a loop keeps one reader per fd, and several coroutines of one loop may
# wait on one channel. Meanwhile the loop also watches the thread's worker
# fd, as _watched does, so that a call from Erlang running the loop that
# times out or loses its caller stops the wait at once.

def _wake(future):
    if not future.done():
        future.set_result(None)


async def _channel_receive(channel):
    if _asyncio is None:
        _load_asyncio()
    loop = _asyncio.get_running_loop()
    while True:
        taken, value = channel._take_or_wait()
        if taken:
            return value
        wait, fd = value, -1
        worker = _channel()
        worker.pinned += 1
        try:
            worker.watch(loop)
            fd = _os.dup(wait.fileno())
            ready = loop.create_future()
            loop.add_reader(fd, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
        finally:
            if fd >= 0:
                _os.close(fd)
            wait.close()
            worker.pinned -= 1
            worker.unwatch_if_idle()


async def _channel_anext(channel):
    try:
        return await _channel_receive(channel)
    except ChannelClosed:
        raise StopAsyncIteration from None


def _guard_extensions():
    """In a context of its own (a subinterpreter) under Python 3.12: every
    extension module is first created in the main interpreter, so that
    CPython refuses one that cannot load here (single-phase init) without
    running its init function in this interpreter (c_src/extensions.c)."""
    import sys

    if sys.version_info[:2] != (3, 12):
        return
    from importlib.machinery import ExtensionFileLoader

    create = ExtensionFileLoader.create_module

    def create_module(self, spec):
        if spec.origin:
            _prime_extension(spec.name, spec.origin)
        return create(self, spec)

    ExtensionFileLoader.create_module = create_module
