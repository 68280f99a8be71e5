"""`ml-intern serve`: run the GitHub App server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

USAGE_ERROR = 2
EXTRA_HINT = (
    "ml-intern serve needs the `bot` extra: pip install 'ml-intern[bot]' "
    "(from a clone: uv run --locked --extra bot ml-intern serve)"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ml-intern serve",
        description="Run the GitHub App server: webhooks in, acknowledged runs out. "
        "Settings come from the environment or a .env file (see the README).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    p.add_argument("-m", "--model", help="litellm model id of the agent that answers")
    p.add_argument("--base-url", metavar="URL", help="an OpenAI-compatible endpoint for the model")
    p.add_argument("--config", type=Path, metavar="FILE", help="agent config file merged over the defaults")
    p.add_argument(
        "-c",
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one agent config key (repeatable)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


class _Formatter(logging.Formatter):
    """Plain lines, with the delivery or run id when a record carries one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tags = [f"{k}={getattr(record, k)}" for k in ("delivery_id", "run_id") if getattr(record, k, None) is not None]
        return f"{line} [{' '.join(tags)}]" if tags else line


def _setup_logging(verbose: bool) -> None:
    from agent.redact import Redactor

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    redactor = Redactor.from_env(os.environ)

    def scrub(record: logging.LogRecord) -> bool:
        record.msg, record.args = redactor.redact(record.getMessage()), None
        return True

    handler.addFilter(scrub)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore", "LiteLLM", "litellm", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _error(message: str) -> int:
    sys.stderr.write(f"ml-intern serve: error: {message}\n")
    return USAGE_ERROR


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ml-intern serve`."""
    args = build_parser().parse_args(argv)
    try:
        import fastapi  # noqa: F401
        import pydantic_settings  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        return _error(f"{EXTRA_HINT} (missing: {e.name})")
    from dotenv import load_dotenv
    from pydantic import ValidationError

    from agent.config import load_config
    from agent.errors import AgentError, ConfigError
    from agent.trace import data_home
    from bot.settings import Settings

    load_dotenv(Path.cwd() / ".env", override=False)  # the settings and the model's key; the environment wins
    _setup_logging(args.verbose)
    try:
        settings = Settings()
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in e.errors())
        return _error(f"bad setting: {problems}")
    try:
        from bot.server import preflight

        preflight(settings)  # secret, key, App id: before the model layer's slow import
        agent_config = load_config(args.config, agent_overrides(args))
        from agent.llm import model_from_config

        model_from_config(agent_config)  # a missing model key fails now, naming the variable, not at the first run
        asyncio.run(_serve(args, settings, agent_config, data_home() / "bot"))
    except ConfigError as e:
        return _error(str(e))
    except AgentError as e:
        hint = getattr(e, "hint", "")
        return _error(f"{e}" + (f"\n  → {hint}" if hint else ""))
    except KeyboardInterrupt:
        return 130
    return 0


def agent_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The agent config from `-c key=value`, then `--model` and `--base-url` on top (as the CLI does)."""
    from agent.config import deep_merge, parse_override

    merged: dict[str, Any] = {}
    for text in args.overrides:
        merged = deep_merge(merged, parse_override(text))
    flags = {"model": args.model, "base_url": args.base_url}
    return deep_merge(merged, {k: v for k, v in flags.items() if v is not None})


async def _serve(args: argparse.Namespace, settings: Any, agent_config: Any, data_dir: Path) -> None:
    from bot.live import server_executor
    from bot.server import serve

    await serve(settings, data_dir, lambda s: server_executor(settings, agent_config, s), args.host, args.port)


__all__ = ["agent_overrides", "build_parser", "main"]
