"""Driving an agent from a front end: run one task to its outcome, drain events, stop the loop, catch signals.

The CLI's headless mode, the tests, the benchmarks and the GitHub runners all run a task the same way:

```python
agent = Agent(session)
outcome = await run_task(agent, "fine-tune distilbert on imdb", on_event=renderer.render)
sys.exit(outcome.exit_code)
```
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.events import Event, EventType, Shutdown, StopReason, UserInput
from agent.messages import Usage

if TYPE_CHECKING:
    from agent.loop import Agent

OK, FAILED, USAGE, LIMIT, INTERRUPTED, TERMINATED = 0, 1, 2, 3, 130, 143
EXIT_CODES: dict[StopReason, int] = {
    StopReason.DONE: OK,
    StopReason.MAX_ITERATIONS: LIMIT,
    StopReason.BUDGET: LIMIT,
    StopReason.INTERRUPTED: INTERRUPTED,
    StopReason.SUSPENDED: INTERRUPTED,
}
"""Exit code of a headless run by its stop reason; any other reason is a failure (1)."""


@dataclass(frozen=True)
class Outcome:
    """How a task ended."""

    session_id: str
    stop_reason: StopReason
    final: str
    """The answer, or what stopped the turn and how to continue."""
    iterations: int
    """Model calls in the task's turn."""
    usage: Usage
    """Tokens and cost of the whole session so far."""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.stop_reason, FAILED)


async def run_task(agent: Agent, task: str | None, on_event: Callable[[Event], None] | None = None) -> Outcome:
    """Run `task` to the end of its turn, then shut the loop down. A resumed session first finishes the turn it
    was in (answering restored approvals goes through `agent.submit` as usual); with `task` None, that is all it
    does (a server resuming a run that waited for approval). Every event goes to `on_event`.

    Raises what the loop raised if it died; if the loop was shut down first (a second Ctrl+C, SIGTERM), the
    outcome is `suspended` or `interrupted`, as the closing event said.
    """
    runner = asyncio.create_task(agent.run())
    if task is not None:
        agent.submit(UserInput(task))
    pending, last = (0 if task is None else 1), None
    try:
        async for event in drain(agent, runner):
            if on_event is not None:
                on_event(event)
            if event.type is EventType.READY and agent.busy:
                pending += 1  # a resumed session first finishes the turn it was in
            elif event.type is EventType.READY and pending == 0:
                agent.submit(Shutdown())  # nothing to resume and no task: done at once
            elif event.type is EventType.TURN_COMPLETE:
                last, pending = event, pending - 1
                if pending == 0:
                    agent.submit(Shutdown())
        await runner
    finally:
        await stop(runner)
    if last is None:
        return Outcome(agent.session_id, StopReason.INTERRUPTED, "Stopped before the task started.", 0, agent.usage)
    return Outcome(
        session_id=agent.session_id,
        stop_reason=StopReason(last.data["stop_reason"]),
        final=str(last.data.get("final") or ""),
        iterations=int(last.data.get("iterations") or 0),
        usage=agent.usage,
    )


async def drain(agent: Agent, runner: asyncio.Task[None]) -> AsyncIterator[Event]:
    """The agent's events until shutdown; raises what the loop raised if it dies without one."""
    events = aiter(agent.events())
    while True:
        nxt = asyncio.ensure_future(anext(events))
        done, _ = await asyncio.wait({nxt, runner}, return_when=asyncio.FIRST_COMPLETED)
        if nxt not in done and not runner.cancelled() and runner.exception() is not None:
            nxt.cancel()
            raise runner.exception()  # type: ignore[misc]
        try:
            yield await nxt
        except StopAsyncIteration:
            return


async def stop(runner: asyncio.Task[None]) -> None:
    """Cancel a task (the agent loop) if it still runs and wait for it, so nothing writes to a closed session."""
    if not runner.done():
        runner.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await runner


@contextlib.contextmanager
def on_signal(callback: Callable[[], None], *signals: signal.Signals) -> Iterator[None]:
    """Call `callback` in the running event loop on these signals (default SIGINT) for the duration of the block,
    where the platform allows it; elsewhere Ctrl+C stays a KeyboardInterrupt."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in signals or (signal.SIGINT,):
        try:
            loop.add_signal_handler(sig, callback)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


__all__ = ["EXIT_CODES", "Outcome", "drain", "on_signal", "run_task", "stop"]
