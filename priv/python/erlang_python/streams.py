"""The Python side of py:stream_start and py:stream (src/py_stream.erl).

A Source hands out the items of any iterable, sync or async: src/
py_stream.erl holds it by reference and asks it, from a short-lived puller
process, for as many items as the stream's window has room for. The items
go to the stream's process as they are produced, a few at a time, none
held back for long (erlang._stream_pump and _stream_send, c_src/stream.c),
and between takes nothing holds a thread.

An async iterable gets an event loop of its own, kept with the Source and
closed with it; each take runs the loop until it is complete.
"""

import threading

import erlang

MORE, DONE, FAILED = erlang.Atom('more'), erlang.Atom('done'), erlang.Atom('failed')

# How long close waits for a take still running (one whose puller was
# killed, its Python work being interrupted).
CLOSE_WAIT_S = 5


class Source:
    def __init__(self, iterable):
        if hasattr(iterable, '__aiter__'):
            import asyncio

            self._iterator = iterable.__aiter__()
            self._loop = asyncio.new_event_loop()
        else:
            self._iterator = iter(iterable)
            self._loop = None
        self._done = False
        self._failure = None
        self._async_sent = 0  # items the running async take has sent
        self._busy = threading.Lock()  # held by take, so that close waits for it

    def take(self, limit, to, ref, first):
        """Sends up to limit items to the stream process to, as they come,
        numbered from first. Returns how many it sent, and MORE, DONE (the
        iterable has ended) or FAILED: the iterable raised (or gave an item
        with no Erlang form) after those, and failure() raises what it
        raised."""
        with self._busy:
            if self._done:
                return 0, DONE
            try:
                if self._loop is None:
                    sent, status = erlang._stream_pump(self._iterator, limit, to, ref, first)
                else:
                    sent, status = self._run_async(limit, to, ref, first)
            except BaseException:
                self._done = True
                raise
            if isinstance(status, BaseException):
                self._done, self._failure = True, status
                return sent, FAILED
            self._done = status
            return sent, DONE if status else MORE

    def failure(self):
        """Raises what the iterable raised (see take)."""
        failure, self._failure = self._failure, None
        raise failure

    def _run_async(self, limit, to, ref, first):
        self._async_sent = 0
        task = self._loop.create_task(self._take_async(limit, to, ref, first))
        try:
            return self._loop.run_until_complete(task)
        except Exception as failure:
            # The loop itself failed (stopped under the take, say).
            return self._async_sent, failure
        finally:
            if not task.done():
                # The loop stopped under the take (the iterable stopped
                # it, or the call was interrupted): the iterator is left
                # inside __anext__, so cancel it there and let it end, its
                # finally blocks run, rather than leave it half-run.
                task.cancel()
                try:
                    self._loop.run_until_complete(task)
                except BaseException:
                    pass

    async def _take_async(self, limit, to, ref, first):
        send = erlang._stream_send
        try:
            while self._async_sent < limit:
                send(to, ref, first + self._async_sent, await self._iterator.__anext__())
                self._async_sent += 1
        except StopAsyncIteration:
            return self._async_sent, True
        except Exception as failure:
            return self._async_sent, failure
        return self._async_sent, False

    def close(self):
        """Ends the iterable early: a generator's finally blocks run. Waits
        for a take still running to end first, within CLOSE_WAIT_S."""
        if not self._busy.acquire(timeout=CLOSE_WAIT_S):
            raise TimeoutError('the stream is still running Python code that cannot be interrupted')
        try:
            self._close()
        finally:
            self._busy.release()

    def _close(self):
        self._done = True
        if self._loop is None:
            close = getattr(self._iterator, 'close', None)
            if close is not None:
                close()
        elif not self._loop.is_closed():
            try:
                aclose = getattr(self._iterator, 'aclose', None)
                if aclose is not None:
                    self._loop.run_until_complete(aclose())
            finally:
                self._loop.close()


def collect(iterable):
    """Every item of an iterable, sync or async, as a list."""
    if not hasattr(iterable, '__aiter__'):
        return list(iterable)

    import asyncio

    async def gather():
        return [item async for item in iterable]

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(gather())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
