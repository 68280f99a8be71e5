"""What the bot writes: each state of the progress comment, with its marker, within GitHub's limits."""

from __future__ import annotations

from bot import render
from bot.github import MAX_BODY_CHARS, Target
from bot.models import Identity, Run

ME = Identity(1, "ml-intern")


def run(state: str = "queued", id: int = 12) -> Run:
    return Run(id, 1, "o/r", 3, False, "alice", Target("issue_comment", 9), "go", state)


def test_every_state_carries_the_marker_and_the_requester() -> None:
    r = run()
    for body in (
        render.queued(r, None, False),
        render.queued(r, 11, False),
        render.queued(r, None, True),
        render.working(r),
        render.done(r, "answer"),
        render.failed(r, "boom"),
        render.cancelled(r, "by @bob"),
        render.interrupted(r),
    ):
        assert body.endswith("<!-- ml-intern:run:12 -->") and "@alice" in body
    assert "Queued: run 11 in this thread goes first." in render.queued(r, 11, False)
    assert "every worker is busy" in render.queued(r, None, True)
    assert "/retry" in render.failed(r, "boom") and "/retry" in render.interrupted(r)


def test_no_tokenless_run_page_link() -> None:
    assert "runs/12" not in render.working(run()) and "runs/12" not in render.working(run(), "https://bot.example.com/")


def test_a_huge_answer_is_cut_and_the_marker_kept() -> None:
    body = render.done(run(), "x" * 200_000)
    assert len(body) <= MAX_BODY_CHARS and "(answer cut)" in body and body.endswith("<!-- ml-intern:run:12 -->")


def test_status_and_help() -> None:
    assert "No runs in this thread yet" in render.status([], ME)
    latest, older = run("running", 5), run("queued", 6)
    text = render.status([latest, older], ME)
    assert "Run 5: **running**" in text and "Also queued: run 6" in text
    assert "`/deny [reason]`" in render.help_text(ME) and "@ml-intern" in render.help_text(ME)
    assert "@carol" in render.outsider("carol")
