"""The Python side of py:stream_start and py:stream (src/py_stream.erl).

A Source hands out the items of any iterable, sync or async, a batch at a
time: src/py_stream.erl holds it by reference and asks for as many items
as the stream's window allows, so the iterable never runs ahead of what
the owner has acknowledged, and between batches nothing holds a thread.

A batch is small while items come slowly, so that each reaches the owner
as soon as it is produced, and grows while they come fast: it starts at
one item, doubles while a batch fills within BUDGET_NS, and goes back to
one when a batch takes longer. (An item produced just before the
iterable blocks for long waits in its batch until the block ends; a C
path sending each item as it is produced would remove that.)

An async iterable gets an event loop of its own, kept with the Source and
closed with it; each batch runs the loop until the batch is complete.
"""

import threading
import time

BUDGET_NS = 2_000_000
MAX_BATCH = 1024
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
        self._failed = None  # what the iterable raised after a batch's first items
        self._batch = 1
        self._busy = threading.Lock()  # held by take, so that close waits for it

    def take(self, limit):
        with self._busy:
            return self._take(limit)

    def _take(self, limit):
        """Up to limit items (fewer while they come slowly: see the top),
        and whether the iterable has ended. If the iterable raises after
        some items of the batch, those are returned and the exception is
        raised by the next take, so that no item before an error is lost."""
        if self._failed is not None:
            failed, self._failed = self._failed, None
            self._done = True
            raise failed
        if self._done:
            return [], True
        n = min(limit, self._batch)
        deadline = time.monotonic_ns() + BUDGET_NS
        items = []
        try:
            if self._loop is None:
                self._done = self._take_sync(n, deadline, items)
            else:
                self._done = self._run_async(n, deadline, items)
        except Exception as failed:
            if not items:
                self._done = True
                raise
            self._failed = failed
        in_time = time.monotonic_ns() <= deadline
        self._batch = min(2 * self._batch, MAX_BATCH) if in_time and len(items) == n else 1
        return items, self._done

    def _take_sync(self, n, deadline, items):
        for item in self._iterator:
            items.append(item)
            if len(items) == n or time.monotonic_ns() > deadline:
                return False
        return True

    def _run_async(self, n, deadline, items):
        task = self._loop.create_task(self._take_async(n, deadline, items))
        try:
            return self._loop.run_until_complete(task)
        finally:
            if not task.done():
                # The loop stopped under the batch (the iterable stopped
                # it, or the call was interrupted): the iterator is left
                # inside __anext__, so cancel it there and let it end, its
                # finally blocks run, rather than leave it half-run.
                task.cancel()
                try:
                    self._loop.run_until_complete(task)
                except BaseException:
                    pass

    async def _take_async(self, n, deadline, items):
        try:
            while len(items) < n:
                items.append(await self._iterator.__anext__())
                if time.monotonic_ns() > deadline:
                    break
        except StopAsyncIteration:
            return True
        return False

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
