"""The live progress comment, rendered from agent events: golden files for each state, limits, and injection."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.events import Event, EventType, StopReason
from agent.messages import Usage
from agent.run import Outcome
from bot import render
from bot.github import MAX_BODY_CHARS
from bot.render import FinalReport
from bot.view import RunView

GOLDEN = Path(__file__).parent / "golden"
T0 = 1_700_000_000.0
PAGE = "https://bot.example.com/runs/12?token=abc"


def golden(name: str, body: str) -> None:
    """Compare with tests/bot/golden/<name>.md; UPDATE_GOLDEN=1 rewrites the file."""
    path = GOLDEN / f"{name}.md"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(body)
    assert body == path.read_text(), f"{name}: rendered body differs from {path.name} (UPDATE_GOLDEN=1 to accept)"


def ev(kind: EventType, at: float, **data: Any) -> Event:
    return Event(kind, data, 0, T0 + at)


def feed(view: RunView, *events: Event) -> RunView:
    for e in events:
        view.apply(e)
    return view


def ready(at: float = 0.0) -> Event:
    return ev(
        EventType.READY,
        at,
        session_id="s1",
        model="anthropic/claude-sonnet-4",
        tools=[],
        resumed=False,
        workdir="w",
        mcp_failures={},
    )


def usage(at: float, prompt: int, completion: int, cost: float) -> Event:
    total = {"prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": 0, "cost_usd": cost}
    return ev(EventType.USAGE, at, call=total, total=total, context_tokens=0, context_window=0)


def tool(at: float, call_id: str, name: str, summary: str, output: str, error: bool = False) -> list[Event]:
    return [
        ev(EventType.TOOL_CALL, at, call_id=call_id, name=name, arguments={}, summary=summary),
        ev(EventType.TOOL_STATE_CHANGE, at, call_id=call_id, name=name, state="approved", by="policy"),
        ev(EventType.TOOL_STATE_CHANGE, at, call_id=call_id, name=name, state="running"),
        ev(
            EventType.TOOL_OUTPUT,
            at + 1.5,
            call_id=call_id,
            name=name,
            output=output,
            is_error=error,
            truncated=False,
            spill_path=None,
            duration_s=1.5,
            data={},
        ),
    ]


PLAN = [
    {"content": "Read the classifier and its data loader", "status": "completed"},
    {"content": "Write eval.py with accuracy and F1", "status": "in_progress"},
    {"content": "Run it on the validation split", "status": "pending"},
]


def running_view() -> RunView:
    return feed(
        RunView(12, "alice"),
        ready(),
        ev(EventType.PROCESSING, 0.1),
        ev(EventType.PLAN_UPDATED, 1, plan=PLAN),
        *tool(2, "c1", "read", "src/model.py", "class Classifier(nn.Module):\n    ..."),
        *tool(5, "c2", "bash", "python -m pytest -q", "1 failed, 3 passed\nFAILED test_eval.py::test_f1", True),
        usage(8, 12_345, 1_234, 0.0421),
        ev(EventType.TOOL_CALL, 9, call_id="c3", name="write", arguments={}, summary="eval.py (41 lines)"),
    )


def test_queued() -> None:
    golden("queued", render.progress(RunView(12, "alice"), T0, page_url=PAGE))


def test_running_with_plan_and_log() -> None:
    golden("running", render.progress(running_view(), T0 + 75, page_url=PAGE))


def test_waiting_for_approval() -> None:
    view = running_view()
    feed(
        view,
        ev(EventType.TOOL_CALL, 10, call_id="c4", name="hf_job", arguments={}, summary="train on a10g-small, 2 h"),
        ev(EventType.TOOL_STATE_CHANGE, 10, call_id="c4", name="hf_job", state="waiting"),
        ev(
            EventType.APPROVAL_REQUIRED,
            10,
            call_id="c4",
            name="hf_job",
            summary="train on a10g-small, 2 h",
            reason="effects spend need approval",
            effects=["network", "spend"],
            arguments={},
            cost_usd=2.0,
        ),
        ev(EventType.TOOL_CALL, 10, call_id="c5", name="hub_push", arguments={}, summary="alice/distilbert-imdb"),
        ev(
            EventType.APPROVAL_REQUIRED,
            10,
            call_id="c5",
            name="hub_push",
            summary="alice/distilbert-imdb",
            reason="effects publish need approval",
            effects=["publish"],
            arguments={},
            cost_usd=None,
        ),
    )
    assert view.status == "waiting_approval" and view.card is not None and view.card.call_id == "c4"
    body = render.progress(view, T0 + 80, page_url=PAGE)
    golden("waiting_approval", body)
    feed(view, ev(EventType.TOOL_STATE_CHANGE, 11, call_id="c4", name="hf_job", state="approved", by="bob"))
    assert view.card is not None and view.card.call_id == "c5"  # the next card becomes the current one
    body = render.progress(view, T0 + 81)
    assert "`hf_job` train on a10g-small, 2 h · approved by bob" in body and "`hub_push` alice/" in body


def outcome(reason: StopReason, final: str) -> Outcome:
    return Outcome("s1", reason, final, 7, Usage(40_000, 3_000, 10_000, 0.1234))


def test_done_with_a_pull_request() -> None:
    view = feed(running_view(), ev(EventType.TURN_COMPLETE, 200, stop_reason="done", final="", iterations=7, usage={}))
    report = FinalReport(
        outcome(StopReason.DONE, "Added `eval.py`:\n\n- accuracy 0.91\n- F1 0.89\n\n```bash\npython eval.py\n```"),
        pr_url="https://github.com/o/r/pull/13",
        hub_urls=("https://huggingface.co/alice/distilbert-imdb",),
        left_out=((".github/workflows/ci.yml", "workflow files are never shipped by the bot"),),
        notes=("The requester is co-author of the commit.",),
    )
    golden("done", render.progress(view, T0 + 252, report=report, mention="@ml-intern", page_url=PAGE))


def test_failed() -> None:
    report = FinalReport(failure="cloning the repository failed: 403 Resource not accessible by integration")
    golden("failed", render.progress(running_view(), T0 + 30, report=report))


def test_limit_reached() -> None:
    view = feed(running_view(), ev(EventType.LIMIT_REACHED, 60, limit="budget", value=0.1))
    final = "Stopped: the run's budget ($0.10) is spent. Raise the budget and mention me again to go on."
    golden("limit", render.progress(view, T0 + 61, report=FinalReport(outcome(StopReason.BUDGET, final))))


def test_a_long_run_stays_under_the_limit_dropping_the_oldest_steps() -> None:
    view = feed(RunView(12, "alice"), ready())
    for i in range(380):
        feed(view, *tool(i, f"c{i}", "bash", f"step {i} " + "x" * 300, f"output {i} " + "y" * 300))
    body = render.progress(view, T0 + 400, page_url=PAGE)
    assert len(body) <= render.BODY_LIMIT < MAX_BODY_CHARS
    assert "output 379" in body and "step 0 " not in body  # the newest kept, the oldest dropped
    assert "Steps (last " in body and "of 380)" in body
    assert body.endswith("<!-- ml-intern:run:12 -->")
    golden("long_log", body)


def test_text_too_long_even_without_a_log_is_cut_with_a_note() -> None:
    view = feed(RunView(12, "alice"), ready(), ev(EventType.PLAN_UPDATED, 1, plan=PLAN))
    body = render.progress(view, T0, report=FinalReport(outcome(StopReason.DONE, "z" * 50_000)), limit=8_000)
    assert len(body) <= 8_000 and "cut to fit" in body and body.endswith("<!-- ml-intern:run:12 -->")


FAKE_TOKEN = "hf_" + "abcdefghijklmnopqrstuvwxyz" + "0123456789"  # token-shaped, assembled at run time
HOSTILE = (
    "done </details> <!-- ml-intern:run:99 --> cc @octocat ![pixel](https://evil.example/p.png) "
    f"<img src=x onerror=alert(1)> token {FAKE_TOKEN}"
)


@pytest.mark.parametrize("where", ["summary", "output", "plan", "answer", "card"])
def test_untrusted_text_cannot_break_out_ping_or_leak(where: str) -> None:
    view = feed(RunView(12, "alice"), ready())
    text = {w: "ok" for w in ("summary", "output", "plan", "answer", "card")}
    text[where] = HOSTILE
    feed(
        view,
        ev(EventType.PLAN_UPDATED, 1, plan=[{"content": text["plan"], "status": "pending"}]),
        *tool(2, "c1", "bash", text["summary"], text["output"]),
        ev(
            EventType.APPROVAL_REQUIRED,
            3,
            call_id="c2",
            name="push",
            summary=text["card"],
            reason=text["card"],
            effects=["publish"],
            arguments={},
            cost_usd=None,
        ),
    )
    for report in (None, FinalReport(outcome(StopReason.DONE, text["answer"]))):
        body = render.progress(view, T0 + 5, report=report)
        assert body.count("<!--") == 1 and body.endswith("<!-- ml-intern:run:12 -->")
        assert body.count("</details>") == body.count("<details>") <= 1
        assert "@octocat" not in body and "![pixel]" not in body and "<img" not in body
        assert FAKE_TOKEN not in body


def test_the_sessions_redaction_applies_to_everything_shown() -> None:
    view = feed(RunView(12, "alice"), ready(), *tool(1, "c1", "bash", "echo s3cr3t-value", "s3cr3t-value"))
    body = render.progress(view, T0, redact=lambda s: s.replace("s3cr3t-value", "[REDACTED]"))
    assert "s3cr3t" not in body and "REDACTED" in body
