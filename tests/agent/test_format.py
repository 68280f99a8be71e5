"""Plain text for people, shared by the terminal and the GitHub comment renderers."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.events import StopReason
from agent.format import EXPLAINED, STOPPED, seconds, short_args, tokens, usage_line, usd


@pytest.mark.parametrize(("n", "text"), [(0, "0"), (999, "999"), (1234, "1.2k"), (1_234_567, "1.2M")])
def test_tokens(n: int, text: str) -> None:
    assert tokens(n) == text


@pytest.mark.parametrize(("x", "text"), [(0, "$0"), (0.0123, "$0.0123"), (0.52, "$0.52"), (12.3, "$12.30")])
def test_usd(x: float, text: str) -> None:
    assert usd(x) == text


def test_seconds_and_usage_line() -> None:
    assert (seconds(4.25), seconds(75)) == ("4.2s", "1m15s")
    usage = {"prompt_tokens": 12_300, "completion_tokens": 1200, "cached_tokens": 8000, "cost_usd": 0.0123}
    assert usage_line(usage, 23_000, 100_000) == "12.3k in · 1.2k out · 8.0k cached · $0.0123 · context 23%"


def test_short_args() -> None:
    assert short_args('{"path": "a.py", "n": 2}') == 'path="a.py" n=2'
    assert short_args("not json") == "not json"


def test_every_stop_reason_but_done_has_words_and_explained_ones_exist() -> None:
    assert set(STOPPED) == set(StopReason) - {StopReason.DONE}
    assert set(EXPLAINED) <= set(StopReason)


def test_importing_it_does_not_import_rich() -> None:
    code = "import sys, agent.format; print('rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
