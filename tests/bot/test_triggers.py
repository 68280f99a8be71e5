"""Mentions as words outside code and quotes, slash commands, bot filtering, and what each event asks."""

from __future__ import annotations

import pytest

from bot.models import Identity
from bot.triggers import classify, command, from_bot, mentions, request_text
from tests.bot.conftest import comment_event, event

ME = Identity(4242, "ml-intern")


@pytest.mark.parametrize(
    "body",
    [
        "@ml-intern train a model",
        "hey @ML-Intern, can you look?",
        "(@ml-intern) please",
        "done?\n@ml-intern: go",
        "> old quote\n@ml-intern now",
    ],
)
def test_a_mention_as_a_word_triggers(body: str) -> None:
    assert mentions(body, "ml-intern")


@pytest.mark.parametrize(
    "body",
    [
        "",
        "ml-intern without the at",
        "@ml-interns is someone else",
        "@ml-intern-bot is someone else",
        "mail me at me@ml-intern.dev",
        "use `@ml-intern` in a comment",
        "```\n@ml-intern inside a fence\n```",
        "~~~python\nx = '@ml-intern'\n~~~",
        "> @ml-intern quoted from someone else",
        "  > > @ml-intern nested quote",
        "see github.com/@ml-intern",
    ],
)
def test_no_trigger_outside_plain_text(body: str) -> None:
    assert not mentions(body, "ml-intern")


def test_an_unclosed_fence_hides_the_rest() -> None:
    assert not mentions("text\n```\n@ml-intern never closed", "ml-intern")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/approve", ("approve", "")),
        ("/deny too expensive", ("deny", "too expensive")),
        ("thanks!\n/stop", ("stop", "")),
        ("@ml-intern /status", ("status", "")),
        ("/retry\n/help", ("retry", "")),
        ("/help me", ("help", "me")),
    ],
)
def test_slash_commands(body: str, expected: tuple[str, str]) -> None:
    assert command(body, "ml-intern") == expected


@pytest.mark.parametrize("body", ["please /approve", "/approved", "/deploy", "`/stop`", "> /stop", "/stop-it"])
def test_not_commands(body: str) -> None:
    assert command(body, "ml-intern") is None


def test_request_text_drops_the_mention_and_is_bounded() -> None:
    assert request_text("@ml-intern  fine-tune bert", "ml-intern") == "fine-tune bert"
    assert len(request_text("@ml-intern " + "x" * 50_000, "ml-intern")) == 20_000


def test_comment_triggers_and_commands() -> None:
    trigger = classify("issue_comment", comment_event("@ml-intern go", comment_id=9, number=3), ME)
    assert trigger is not None and trigger.kind == "trigger" and trigger.text == "go"
    assert (trigger.repo, trigger.number, trigger.is_pr, trigger.installation_id) == (
        "Codertocat/Hello-World",
        3,
        False,
        1,
    )
    assert (trigger.target.kind, trigger.target.id, trigger.requester) == ("issue_comment", 9, "Codertocat")
    cmd = classify("issue_comment", comment_event("/deny not now"), ME)
    assert cmd is not None and (cmd.kind, cmd.command, cmd.text) == ("command", "deny", "not now")
    assert classify("issue_comment", comment_event("nothing for me"), ME) is None


def test_a_comment_on_a_pull_request_is_a_pr_thread() -> None:
    payload = comment_event("@ml-intern review")
    payload["issue"]["pull_request"] = {
        "url": "u",
        "html_url": "h",
        "diff_url": "d",
        "patch_url": "p",
        "merged_at": None,
    }
    found = classify("issue_comment", payload, ME)
    assert found is not None and found.is_pr


def test_edits_trigger_only_on_a_new_mention_and_never_run_commands() -> None:
    edited = event("issue_comment.edited")
    edited["comment"]["body"] = "@ml-intern go"
    edited["changes"] = {"body": {"from": "go"}}
    assert classify("issue_comment", edited, ME) is not None
    edited["changes"] = {"body": {"from": "@ml-intern go?"}}
    assert classify("issue_comment", edited, ME) is None
    edited["comment"]["body"] = "/stop"
    edited["changes"] = {"body": {"from": ""}}
    assert classify("issue_comment", edited, ME) is None


def test_deleted_comments_events_without_installation_and_other_events_ask_nothing() -> None:
    deleted = comment_event("@ml-intern go", action="deleted")
    assert classify("issue_comment", deleted, ME) is None
    assert classify("issue_comment", comment_event("@ml-intern go", installation=None), ME) is None
    assert classify("pull_request", event("issues.opened"), ME) is None


def test_new_issue_and_review_comment() -> None:
    issue = event("issues.opened")
    issue["issue"]["body"] = "@ml-intern the spelling, please"
    found = classify("issues", issue, ME)
    assert found is not None and found.target.kind == "issue" and found.target.id == issue["issue"]["number"]
    assert found.text.startswith(issue["issue"]["title"])
    review = event("pull_request_review_comment.created")
    review["comment"]["body"] = "@ml-intern why?"
    found = classify("pull_request_review_comment", review, ME)
    assert found is not None and found.is_pr and found.target.kind == "review_comment"


def test_bot_and_self_filtering() -> None:
    human = comment_event("hi")
    assert not from_bot(human, ME, frozenset())
    bot = comment_event("hi", login="dependabot[bot]")
    bot["sender"]["type"] = "Bot"
    assert from_bot(bot, ME, frozenset())
    assert not from_bot(bot, ME, frozenset({"dependabot[bot]"}))
    mine = comment_event("hi", login="ml-intern[bot]")
    mine["sender"]["type"] = "Bot"
    assert from_bot(mine, ME, frozenset({"ml-intern[bot]"}))  # never ourselves, even allow-listed
    via = comment_event("hi")
    via["comment"]["performed_via_github_app"] = {"id": 4242}
    assert from_bot(via, ME, frozenset())
