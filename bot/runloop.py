"""A thread with its own event loop where runs execute, so agent work never delays the answers to webhooks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class RunLoop:
    """Runs coroutines on a long-lived loop in a thread of its own; cancelling the caller cancels the run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="ml-intern-runs", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` executed on the run loop; if the caller is cancelled, the run is cancelled and awaited."""
        started, finished = threading.Event(), concurrent.futures.Future[None]()

        async def wrapper() -> T:
            started.set()
            try:
                return await coro
            finally:
                finished.set_result(None)

        future = asyncio.run_coroutine_threadsafe(wrapper(), self.loop)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            if started.is_set():  # let the run clean up (close its session) before the caller goes on
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(finished), 30)
            else:
                coro.close()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)


async def on_loop(loop: asyncio.AbstractEventLoop | None, coro: Coroutine[Any, Any, T]) -> T:
    """Await `coro` on `loop` (the loop that owns the clients it uses), from whichever loop the caller runs on.

    Runs execute on the run loop while the GitHub client and the store belong to the server's main loop: their
    calls hop over. Cancelling the caller cancels the hopped call.
    """
    if loop is None or loop is asyncio.get_running_loop():
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


__all__ = ["RunLoop", "on_loop"]
