"""The `ml-intern` command: an interactive chat, or one headless task with exit codes scripts can use."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.events import Event
    from agent.loop import Agent
    from agent.session import Session
    from agent.ui import ConsoleRenderer, JsonRenderer

logger = logging.getLogger(__name__)

OK, FAILED, USAGE, LIMIT, INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = {"done": OK, "max_iterations": LIMIT, "budget": LIMIT, "interrupted": INTERRUPTED}
"""Exit code of a headless run by the turn's stop_reason; any other reason is a failure (1)."""

EPILOG = """\
exit codes (headless): 0 done, 1 failed, 2 usage or config error, 3 stopped by a limit
(--max-iterations, --budget), 130 interrupted.

examples:
  ml-intern                                   chat in the current folder
  ml-intern "fine-tune distilbert on imdb"    run one task to completion
  ml-intern --json "summarise train.py" | jq  events as JSON lines
  ml-intern -c llm.timeout=60 --model anthropic/claude-sonnet-4-5
"""


class _Version(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit", **kw)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("ml-intern")
        except PackageNotFoundError:
            found = "unknown (not installed)"
        sys.stdout.write(f"ml-intern {found}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ml-intern",
        description="An ML engineer in your terminal. Without a prompt, starts a chat.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prompt", nargs="?", help="run this task headless and exit (no prompt: interactive chat)")
    p.add_argument("-m", "--model", help="litellm model id, e.g. anthropic/claude-sonnet-4-5 or ollama/qwen3")
    p.add_argument("--base-url", metavar="URL", help="an OpenAI-compatible endpoint (vLLM, llama.cpp, ...)")
    p.add_argument("--max-iterations", type=int, metavar="N", help="model calls per turn before stopping")
    p.add_argument("--budget", type=float, metavar="USD", help="stop once the run has spent this much")
    p.add_argument("--yolo", action="store_true", help="approve every tool call without asking")
    p.add_argument("--no-stream", action="store_true", help="print answers whole instead of streaming them")
    p.add_argument("--workdir", type=Path, default=Path.cwd(), metavar="DIR", help="folder to work in (default: .)")
    p.add_argument("--config", type=Path, metavar="FILE", help="config file merged over the defaults")
    p.add_argument(
        "-c",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one config key, e.g. -c context.compact_at=0.7 (repeatable)",
    )
    p.add_argument("--resume", metavar="ID", help="continue a saved session (id or unique prefix)")
    p.add_argument("--json", action="store_true", help="headless: events as JSON lines on stdout, nothing else")
    p.add_argument("--list-sessions", action="store_true", help="list saved sessions and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="show full tool output, logs and debug messages")
    p.add_argument("--version", action=_Version)
    return p


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The `-c key=value` overrides, then the dedicated flags on top."""
    from agent.config import deep_merge, parse_override

    merged: dict[str, Any] = {}
    for text in args.overrides:
        merged = deep_merge(merged, parse_override(text))
    flags = {
        "model": args.model,
        "base_url": args.base_url,
        "max_iterations": args.max_iterations,
        "budget_usd": args.budget,
        "yolo": args.yolo or None,
        "stream": False if args.no_stream else None,
    }
    return deep_merge(merged, {k: v for k, v in flags.items() if v is not None})


def exit_code(stop_reason: str | None) -> int:
    """How a headless run ends for the shell."""
    return EXIT_CODES.get(stop_reason or "", FAILED)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ml-intern` console script."""
    args = build_parser().parse_args(argv)
    if args.json and args.prompt is None:
        return _usage_error('--json needs a prompt: ml-intern --json "your task"')
    _setup_logging(args.verbose)
    from agent.config import load_config
    from agent.errors import AgentError, AuthError, ConfigError, SessionError

    try:
        if args.list_sessions:
            return _list_sessions()
        config = load_config(args.config, config_overrides(args))
        if not args.workdir.is_dir():
            raise ConfigError(f"--workdir {args.workdir} is not a folder")
        if args.prompt is None:
            return asyncio.run(_interactive(args, config))
        return asyncio.run(_headless(args, config))
    except (ConfigError, SessionError) as e:
        return _usage_error(str(e))
    except AgentError as e:  # e.g. a missing API key found while opening the session
        return _fatal(e, USAGE if isinstance(e, AuthError) else FAILED)
    except KeyboardInterrupt:
        return INTERRUPTED


def entry() -> None:
    """The console script: `main()`, then leave at once. By then the answer is written, the session closed (trace
    flushed, lock released, MCP servers stopped); tearing down the interpreter's hundreds of modules would only
    add a few hundred milliseconds after the last answer."""
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said
            stream.flush()
    os._exit(code)


def _usage_error(message: str) -> int:
    sys.stderr.write(f"ml-intern: error: {message}\n")
    return USAGE


def _fatal(error: Exception, code: int) -> int:
    """Say on stderr why the run could not start, with the fix (which variable to set) on its own line."""
    from rich.console import Console
    from rich.text import Text

    message, hint = (error.args[0] if error.args else str(error)), str(getattr(error, "hint", "") or "")
    out = Text("ml-intern: error: ", style="bold red").append(str(message))
    if hint:
        out.append("\n  → ").append(hint, style="bold yellow")
    Console(stderr=True, soft_wrap=True, highlight=False).print(out)
    return code


def _setup_logging(verbose: bool) -> None:
    """Warnings (everything with -v) to stderr, unless the program embedding us configured logging already."""
    if logging.getLogger().handlers:
        return
    from rich.console import Console
    from rich.logging import RichHandler

    from agent.redact import RedactingFilter, Redactor

    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=verbose)
    handler.addFilter(RedactingFilter(Redactor.from_env(os.environ)))  # tracebacks and library logs included
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])
    logging.getLogger("agent").setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose:  # model retries and failures already arrive as retry and error events
        logging.getLogger("agent.llm").setLevel(logging.ERROR)


def _list_sessions() -> int:
    from rich.console import Console

    from agent.ui import ConsoleRenderer

    show_sessions(ConsoleRenderer(Console()))
    return OK


def show_sessions(ui: ConsoleRenderer, current: str = "") -> None:
    from agent.trace import list_sessions

    sessions = list_sessions()
    if not sessions:
        ui.info("no saved sessions yet")
        return
    rows = [
        (("* " if s.id == current else "  ") + s.id, s.created[:16].replace("T", " "), str(s.messages), s.preview)
        for s in sessions
    ]
    ui.table("sessions (resume with ml-intern --resume ID)", rows, ["id", "created", "msgs", "first message"])


# ---- running the agent ------------------------------------------------------------------------


async def start(args: argparse.Namespace, config: AgentConfig, *, headless: bool) -> tuple[Session, Agent]:
    from agent.loop import Agent
    from agent.session import open_session

    session = await open_session(config, workdir=args.workdir, headless=headless, resume=args.resume)
    return session, Agent(session)


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


@contextlib.contextmanager
def on_sigint(callback: Callable[[], None]) -> Iterator[None]:
    """Handle Ctrl+C inside the running event loop (where the platform allows it) for the duration of the block."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, callback)
    except (NotImplementedError, RuntimeError):  # Windows, or not the main thread: Ctrl+C stays KeyboardInterrupt
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _headless(args: argparse.Namespace, config: AgentConfig) -> int:
    from agent.events import EventType, Interrupt, Shutdown, UserInput
    from agent.ui import ConsoleRenderer

    out = _headless_output(args)
    with _starting(out):
        session, agent = await start(args, config, headless=True)
    pending, outcome, presses = 1, None, 0

    def interrupt() -> None:
        nonlocal presses
        presses += 1
        agent.submit(Interrupt() if presses == 1 else Shutdown())
        if presses == 1 and isinstance(out, ConsoleRenderer):
            out.warn_over_ctrl_c("interrupting… (Ctrl+C again to quit)")

    runner = asyncio.create_task(agent.run())
    agent.submit(UserInput(args.prompt))
    try:
        with on_sigint(interrupt):
            async for event in drain(agent, runner):
                out.render(event)
                if event.type is EventType.READY and agent.busy:
                    pending += 1  # a resumed session first finishes the turn it was in
                elif event.type is EventType.TURN_COMPLETE:
                    pending -= 1
                    if pending == 0:
                        outcome = event.data
                        agent.submit(Shutdown())
            await runner
    except BrokenPipeError:  # the reader of our output went away (`ml-intern --json ... | head`)
        _silence_stdout()
        return FAILED
    finally:
        await stop(runner)
        await session.close()
    return _finish_headless(out, outcome, interrupted=presses > 0)


async def stop(runner: asyncio.Task[None]) -> None:
    """Cancel a task (the agent loop) if it is still running and wait for it, so nothing writes to the session
    once it is closed."""
    if not runner.done():
        runner.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await runner


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise BrokenPipeError again."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _starting(out: ConsoleRenderer | JsonRenderer) -> contextlib.AbstractContextManager[Any]:
    """A spinner on a terminal while the session opens (loading the model library takes seconds)."""
    from agent.ui import ConsoleRenderer

    if isinstance(out, ConsoleRenderer):
        return out.console.status("starting…", spinner="dots")
    return contextlib.nullcontext()


def _headless_output(args: argparse.Namespace) -> ConsoleRenderer | JsonRenderer:
    from agent.ui import JsonRenderer

    if args.json:
        return JsonRenderer(sys.stdout)
    from rich.console import Console

    from agent.ui import ConsoleRenderer

    # Piped stdout gets only the final answer; progress goes to stderr.
    return ConsoleRenderer(Console(stderr=not sys.stdout.isatty()), verbose=args.verbose)


def _finish_headless(out: ConsoleRenderer | JsonRenderer, outcome: dict[str, Any] | None, *, interrupted: bool) -> int:
    from agent.ui import ConsoleRenderer

    if interrupted:
        return INTERRUPTED
    if outcome is None:
        sys.stderr.write("ml-intern: the agent stopped before finishing the turn\n")
        return FAILED
    code = exit_code(outcome.get("stop_reason"))
    if isinstance(out, ConsoleRenderer) and not sys.stdout.isatty() and code == OK and outcome.get("final"):
        try:  # stdout is the answer; errors and limits were said on stderr
            sys.stdout.write(str(outcome["final"]).rstrip("\n") + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
    return code


async def _interactive(args: argparse.Namespace, config: AgentConfig) -> int:
    from rich.console import Console

    from agent.chat import Chat
    from agent.reader import LineReader
    from agent.ui import ConsoleRenderer

    ui = ConsoleRenderer(Console(), verbose=args.verbose)
    with _starting(ui):
        session, agent = await start(args, config, headless=False)
    try:
        with _terminal_restored():
            return await Chat(session, agent, ui, LineReader()).run()
    finally:
        await session.close()


@contextlib.contextmanager
def _terminal_restored() -> Iterator[None]:
    """Put the terminal back as it was: quitting while readline waits for a line leaves it without echo."""
    try:
        import termios

        saved = termios.tcgetattr(sys.stdin.fileno()) if sys.stdin.isatty() else None
    except (ImportError, OSError, ValueError):
        saved = None
    try:
        yield
    finally:
        if saved is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
