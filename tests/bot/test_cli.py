"""`ml-intern serve`: the flags, the missing-extra message, and start-up errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import build_parser, main
from tests.bot.proc import server_env


def test_flags() -> None:
    args = build_parser().parse_args(["--port", "9000", "--model", "m", "--base-url", "u", "-c", "llm.timeout=5"])
    assert (args.host, args.port, args.model, args.base_url, args.overrides) == (
        "127.0.0.1",
        9000,
        "m",
        "u",
        ["llm.timeout=5"],
    )


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "ml-intern[bot]" in err and "missing: uvicorn" in err


def run_serve(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "serve", "--port", "0", *args],
        env=server_env(tmp_path, env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_no_secret_no_key_and_a_bad_key_refuse_to_start(tmp_path: Path) -> None:
    result = run_serve(tmp_path, {"GITHUB_APP_ID": "1"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ml-intern serve: error: GITHUB_WEBHOOK_SECRET is not set; set it to the webhook secret of your GitHub App"
    )
    result = run_serve(tmp_path, {"GITHUB_APP_ID": "1", "GITHUB_WEBHOOK_SECRET": "a-real-secret"})
    assert result.returncode == 2 and "GITHUB_APP_PRIVATE_KEY (PEM text)" in result.stderr
    (tmp_path / ".env").write_text(
        "GITHUB_APP_ID=1\nGITHUB_WEBHOOK_SECRET=a-real-secret\nGITHUB_APP_PRIVATE_KEY=garbage\n"
    )
    result = run_serve(tmp_path, {})
    assert result.returncode == 2 and "not a readable PEM key" in result.stderr
    assert "garbage" not in result.stderr and "Traceback" not in result.stderr


def test_serve_is_listed_in_the_main_help() -> None:
    from agent.cli import build_parser as main_parser

    assert "ml-intern serve" in main_parser().format_help()
