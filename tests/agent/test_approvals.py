"""The effect-based approval policy and the budget."""

from __future__ import annotations

import pytest

from agent.approvals import ApprovalPolicy, Budget, Decision
from agent.config import load_config
from agent.tools.base import Effect, ToolContext, tool


def make(effects, cost=None):  # type: ignore[no-untyped-def]
    @tool(effects=effects, estimate_cost=(lambda args: cost) if cost is not None else None)
    async def job(ctx: ToolContext, flavor: str = "cpu-basic") -> str:
        """Run a job."""
        return flavor

    return job


def policy(headless=False, **config):  # type: ignore[no-untyped-def]
    return ApprovalPolicy.from_config(load_config(overrides=config, use_user_file=False), headless=headless)


@pytest.mark.parametrize(
    ("effects", "headless", "expected"),
    [
        ([Effect.READ], False, Decision.AUTO),
        ([Effect.WRITE], False, Decision.AUTO),
        ([Effect.EXECUTE], False, Decision.ASK),
        ([Effect.EXECUTE], True, Decision.AUTO),
        ([Effect.SPEND], False, Decision.ASK),
        ([Effect.SPEND], True, Decision.DENY),
        ([Effect.PUBLISH, Effect.NETWORK], True, Decision.DENY),
        ([Effect.READ, Effect.NETWORK], True, Decision.AUTO),
    ],
)
def test_default_policy(effects, headless, expected):
    assert policy(headless).decide(make(effects), {}, Budget(None)).decision is expected


def test_yolo_approves_everything_but_the_budget_still_holds():
    p = policy(True, yolo=True)
    assert p.decide(make([Effect.SPEND, Effect.DESTRUCTIVE]), {}, Budget(None)).decision is Decision.AUTO
    verdict = p.decide(make([Effect.SPEND], cost=3.0), {}, Budget(5.0, model_usd=2.5))
    assert verdict.decision is Decision.DENY and "remaining budget $2.50" in verdict.reason


def test_deny_list_wins_over_always_and_yolo():
    p = policy(False, yolo=True, approvals={"deny": ["destructive"]})
    p.always.add("job")
    verdict = p.decide(make([Effect.DESTRUCTIVE]), {}, Budget(None))
    assert verdict.decision is Decision.DENY and "approvals.deny" in verdict.reason


def test_always_grant_is_per_tool():
    p = policy(False)
    p.always.add("job")
    assert p.decide(make([Effect.SPEND]), {}, Budget(None)).decision is Decision.AUTO


WHY = ["writes .git/config: git runs commands named there"]
PROTECTED_WRITE = frozenset({Effect.WRITE, Effect.PROTECTED})


def test_a_protected_write_asks_in_the_chat_and_is_denied_headless_saying_why():
    asked = policy(False).decide(make([Effect.WRITE]), {}, Budget(None), PROTECTED_WRITE, WHY)
    assert asked.decision is Decision.ASK
    assert asked.reason.startswith("writes .git/config: git runs commands named there; ")
    denied = policy(True).decide(make([Effect.WRITE]), {}, Budget(None), PROTECTED_WRITE, WHY)
    assert denied.decision is Decision.DENY
    assert "writes .git/config" in denied.reason and "headless" in denied.reason
    assert policy(False).decide(make([Effect.WRITE]), {}, Budget(None)).decision is Decision.AUTO


def test_always_never_covers_a_protected_write_but_yolo_does():
    p = policy(False)
    p.always.add("job")
    assert p.decide(make([Effect.WRITE]), {}, Budget(None), PROTECTED_WRITE, WHY).decision is Decision.ASK
    assert policy(False, yolo=True).decide(make([Effect.WRITE]), {}, Budget(None), PROTECTED_WRITE).decision is (
        Decision.AUTO
    )


def test_cost_estimate_is_reported_when_asking():
    verdict = policy(False).decide(make([Effect.SPEND], cost=1.25), {}, Budget(10.0))
    assert verdict.decision is Decision.ASK and verdict.cost_usd == 1.25


def test_budget_accounting():
    b = Budget(1.0)
    assert not b.exhausted and b.fits(1.0)
    b.model_usd, b.tools_usd = 0.6, 0.4
    assert b.exhausted and not b.fits(0.01)
    assert Budget(None).fits(1e9)


def test_headless_runs_without_a_sandbox_do_not_run_commands_and_say_how_to() -> None:
    cfg = load_config(use_user_file=False)
    unsandboxed = ApprovalPolicy.from_config(cfg, headless=True, sandboxed=False)

    verdict = unsandboxed.decide(make([Effect.EXECUTE]), {}, Budget(None))

    assert verdict.decision is Decision.DENY
    for fix in ("apt-get install bubblewrap", "--yolo", "sandbox.allow_unsandboxed: true"):
        assert fix in verdict.reason
    assert unsandboxed.decide(make([Effect.READ, Effect.NETWORK]), {}, Budget(None)).decision is Decision.AUTO


@pytest.mark.parametrize(
    ("headless", "sandboxed", "config", "expected"),
    [
        (True, True, {}, Decision.AUTO),
        (True, False, {"yolo": True}, Decision.AUTO),
        (True, False, {"sandbox": {"allow_unsandboxed": True}}, Decision.AUTO),
        (False, False, {}, Decision.ASK),  # the chat asks a human, as before
    ],
)
def test_commands_run_headless_when_sandboxed_or_explicitly_allowed(headless, sandboxed, config, expected):  # type: ignore[no-untyped-def]
    cfg = load_config(overrides=config, use_user_file=False)
    p = ApprovalPolicy.from_config(cfg, headless=headless, sandboxed=sandboxed)
    assert p.decide(make([Effect.EXECUTE]), {}, Budget(None)).decision is expected
