"""The `ml-intern` command: an interactive chat, or one headless task with exit codes scripts can use."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.run import FAILED, INTERRUPTED, OK, TERMINATED, USAGE

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.loop import Agent
    from agent.run import Outcome
    from agent.session import Session
    from agent.ui import ConsoleRenderer, JsonRenderer

logger = logging.getLogger(__name__)

EPILOG = """\
exit codes (headless): 0 done, 1 failed, 2 usage or config error, 3 stopped by a limit
(--max-iterations, --budget), 130 interrupted (Ctrl+C), 143 terminated (SIGTERM).

examples:
  ml-intern                                   chat in the current folder
  ml-intern "fine-tune distilbert on imdb"    run one task to completion
  ml-intern --json "summarise train.py" | jq  events as JSON lines
  ml-intern -c llm.timeout=60 --model anthropic/claude-sonnet-4-5
  ml-intern serve --port 8000                 run the GitHub App server (see the README)
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
    box = p.add_mutually_exclusive_group()
    box.add_argument(
        "--sandbox",
        action="store_const",
        const="bubblewrap",
        dest="sandbox",
        help="run commands in bubblewrap, or fail if it cannot run (default: headless runs use it where it works)",
    )
    box.add_argument(
        "--no-sandbox", action="store_const", const="none", dest="sandbox", help="run commands as you, unsandboxed"
    )
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
        "sandbox": {"mode": args.sandbox} if args.sandbox else None,
    }
    return deep_merge(merged, {k: v for k, v in flags.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ml-intern` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # the GitHub App server lives in bot/
        from bot.cli import main as serve

        return serve(argv[1:])
    args = build_parser().parse_args(argv)
    if args.json and args.prompt is None:
        return _usage_error('--json needs a prompt: ml-intern --json "your task"')
    from agent.env import EnvSnapshot

    args.env = EnvSnapshot.capture()  # the one read of the environment: config, logs and the session use it
    _setup_logging(args.verbose, args.env)
    from agent.config import load_config
    from agent.errors import AgentError, AuthError, ConfigError, SessionError

    try:
        if args.list_sessions:
            return _list_sessions(args.env)
        config = load_config(args.config, config_overrides(args), env=args.env)
        if not args.workdir.is_dir():
            raise ConfigError(f"--workdir {args.workdir} is not a folder")
        from agent.sandbox import protect_process

        protect_process()  # commands run as children of this process, which holds the tokens
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
    from agent.printable import printable  # a message may quote a config or a trace

    sys.stderr.write(f"ml-intern: error: {printable(message)}\n")
    return USAGE


def _fatal(error: Exception, code: int) -> int:
    """Say on stderr why the run could not start, with the fix (which variable to set) on its own line."""
    from rich.console import Console
    from rich.text import Text

    message, hint = (error.args[0] if error.args else str(error)), str(getattr(error, "hint", "") or "")
    from agent.printable import printable

    out = Text("ml-intern: error: ", style="bold red").append(printable(str(message)))
    if hint:
        out.append("\n  → ").append(printable(hint), style="bold yellow")
    Console(stderr=True, soft_wrap=True, highlight=False).print(out)
    return code


def _setup_logging(verbose: bool, env: Mapping[str, str]) -> None:
    """Warnings (everything with -v) to stderr, unless the program embedding us configured logging already."""
    if logging.getLogger().handlers:
        return
    from rich.console import Console
    from rich.logging import RichHandler

    from agent.printable import PrintableFilter
    from agent.redact import RedactingFilter, Redactor

    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=verbose)
    handler.addFilter(RedactingFilter(Redactor.from_env(env)))  # tracebacks and library logs included
    handler.addFilter(PrintableFilter())  # then nothing in a message acts on the terminal
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])
    logging.getLogger("agent").setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose:  # model retries and failures already arrive as retry and error events
        logging.getLogger("agent.llm").setLevel(logging.ERROR)


def _list_sessions(env: Mapping[str, str]) -> int:
    from rich.console import Console

    from agent.chat import show_sessions
    from agent.trace import data_home
    from agent.ui import ConsoleRenderer

    show_sessions(ConsoleRenderer(Console()), home=data_home(env))
    return OK


# ---- running the agent ------------------------------------------------------------------------


async def start(args: argparse.Namespace, config: AgentConfig, *, headless: bool) -> tuple[Session, Agent]:
    from agent.loop import Agent
    from agent.session import open_session

    session = await open_session(
        config, workdir=args.workdir, headless=headless, resume=args.resume, env=getattr(args, "env", None)
    )
    return session, Agent(session)


async def _headless(args: argparse.Namespace, config: AgentConfig) -> int:
    from agent.events import Interrupt, Shutdown
    from agent.run import on_signal, run_task
    from agent.ui import ConsoleRenderer

    out = _headless_output(args)
    with _starting(out):
        session, agent = await start(args, config, headless=True)
    presses, terminated = 0, False

    def interrupt() -> None:
        nonlocal presses
        presses += 1
        agent.submit(Interrupt() if presses == 1 else Shutdown())
        if presses == 1 and isinstance(out, ConsoleRenderer):
            out.warn_over_ctrl_c("interrupting… (Ctrl+C again to quit)")

    def terminate() -> None:  # CI, systemd, docker and Actions cancel with SIGTERM: end the turn cleanly
        nonlocal terminated
        terminated = True
        agent.submit(Interrupt())

    try:
        with on_signal(interrupt), on_signal(terminate, signal.SIGTERM):
            outcome = await run_task(agent, args.prompt, out.render)
    except BrokenPipeError:  # the reader of our output went away (`ml-intern --json ... | head`)
        _silence_stdout()
        return FAILED
    finally:
        await session.close()
    if terminated:
        return TERMINATED
    return INTERRUPTED if presses else _finish_headless(out, outcome)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise BrokenPipeError again."""

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


def _finish_headless(out: ConsoleRenderer | JsonRenderer, outcome: Outcome) -> int:
    from agent.printable import printable
    from agent.ui import ConsoleRenderer

    code = outcome.exit_code
    if isinstance(out, ConsoleRenderer) and not sys.stdout.isatty() and code == OK and outcome.final:
        try:  # stdout is the answer; errors and limits were said on stderr
            sys.stdout.write(printable(outcome.final).rstrip("\n") + "\n")
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
            return await Chat(agent, ui, LineReader()).run()
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
