# erlang_async.py: the Python half of erlang.async_call.
#
# This file runs once, inside the namespace of the built-in `erlang` module,
# when the interpreter starts (c_src/async.c loads it); _async_submit,
# _async_cancel, _async_fd, _async_take and ErlangError are that module's C
# functions and class.
#
# Each thread has one channel: the futures of its calls in flight, keyed by
# call id, and the event loops watching the thread's worker fd, which Erlang
# makes readable when answers are queued. A loop watches the fd only while
# it has calls in flight (or while _run_coroutine runs it), so a loop that
# is closed or abandoned is never left holding the fd.

import threading as _threading

_local = _threading.local()
_asyncio = None  # imported on first use; most programs never need it
_Future = None


def _load_asyncio():
    global _asyncio, _Future
    import asyncio

    class ErlangFuture(asyncio.Future):
        """A future whose cancellation is passed on to Erlang."""

        def cancel(self, msg=None):
            if not super().cancel(msg):
                return False
            self._channel.cancel(self._call_id)
            return True

    _asyncio, _Future = asyncio, ErlangFuture


class _Channel:
    def __init__(self):
        self.fd = _async_fd()
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


def _channel():
    try:
        return _local.channel
    except AttributeError:
        channel = _local.channel = _Channel()
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
    channel = _channel()
    _async_fd()  # an interruption of this call now wakes the loop
    channel.pinned += 1
    channel.watch(_asyncio.get_running_loop())
    try:
        return await coroutine
    finally:
        channel.pinned -= 1
        channel.unwatch_if_idle()


def _run_coroutine(coroutine):
    """Runs the coroutine a py:call or py:eval returned, in a new event loop
    that a timeout of the call wakes."""
    if _asyncio is None:
        _load_asyncio()
    return _asyncio.run(_watched(coroutine))
