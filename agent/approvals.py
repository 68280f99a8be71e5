"""Which tool calls need a human: an effect-based policy, session-wide grants, and the run's budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agent.config import AgentConfig
from agent.tools.base import Effect, Tool


class Decision(StrEnum):
    AUTO = "auto"
    ASK = "ask"
    DENY = "deny"


@dataclass
class Verdict:
    decision: Decision
    reason: str = ""
    cost_usd: float | None = None


@dataclass
class Budget:
    """The run's spending cap; model spend and estimated tool spend both count."""

    limit_usd: float | None
    model_usd: float = 0.0
    tools_usd: float = 0.0

    @property
    def spent(self) -> float:
        return self.model_usd + self.tools_usd

    @property
    def exhausted(self) -> bool:
        return self.limit_usd is not None and self.spent >= self.limit_usd

    def fits(self, cost: float) -> bool:
        return self.limit_usd is None or self.spent + cost <= self.limit_usd


@dataclass
class ApprovalPolicy:
    """Decides per call from its effects; a human's "always" grants last for the session.

    An "always" grant never covers the `protected` effect: each write to a path that makes code run later is
    asked for, so the person approving sees which path it is.
    """

    ask: frozenset[Effect]
    deny: frozenset[Effect]
    headless_auto: frozenset[Effect]
    headless: bool = False
    yolo: bool = False
    always: set[str] = field(default_factory=set)
    unsandboxed: bool = False
    """Commands run without the sandbox and the config does not allow that headless: `execute` is not auto."""

    @classmethod
    def from_config(cls, cfg: AgentConfig, *, headless: bool, sandboxed: bool = True) -> ApprovalPolicy:
        a = cfg.approvals
        unsandboxed = headless and not sandboxed and not cfg.sandbox.allow_unsandboxed
        auto = frozenset(a.headless_auto) - ({Effect.EXECUTE} if unsandboxed else set())
        return cls(frozenset(a.ask), frozenset(a.deny), auto, headless, cfg.yolo, unsandboxed=unsandboxed)

    def decide(
        self,
        tool: Tool,
        args: dict[str, Any],
        budget: Budget,
        effects: frozenset[Effect] | None = None,
        why: Sequence[str] = (),
    ) -> Verdict:
        """The verdict on one call; `effects` and `why` are the call's own (`Tool.effects_of`), default the tool's."""
        effects = tool.effects if effects is None else effects
        cost = tool.estimate_cost(args) if tool.estimate_cost else None
        if cost is not None and not budget.fits(cost):
            remaining = (budget.limit_usd or 0.0) - budget.spent
            return Verdict(
                Decision.DENY,
                f"estimated cost ${cost:.2f} exceeds the remaining budget "
                f"${max(remaining, 0):.2f} (raise --budget to allow it)",
                cost,
            )
        denied = effects & self.deny
        if denied:
            reason = _with(why, f"effects {_names(denied)} are denied by config approvals.deny")
            return Verdict(Decision.DENY, reason, cost)
        needs = effects & self.ask
        granted = tool.name in self.always and Effect.PROTECTED not in needs
        if self.yolo or not needs or granted:
            return Verdict(Decision.AUTO, "", cost)
        if self.headless:
            if needs <= self.headless_auto:
                return Verdict(Decision.AUTO, "", cost)
            if self.unsandboxed and Effect.EXECUTE in needs:
                return Verdict(Decision.DENY, UNSANDBOXED.format(tool=tool.name), cost)
            return Verdict(
                Decision.DENY,
                _with(
                    why,
                    f"{tool.name} has effects {_names(needs)} that need a human, and this "
                    "run is headless (rerun with --yolo, or add them to approvals.headless_auto)",
                ),
                cost,
            )
        return Verdict(Decision.ASK, _with(why, f"effects {_names(needs)} need approval"), cost)


def _with(why: Sequence[str], reason: str) -> str:
    """The plain reasons a call's arguments gave (`writes .git/config: ...`), then the policy's."""
    return "; ".join([*why, reason])


UNSANDBOXED = (
    "{tool} was not run: this headless run has no sandbox, so a command could read the credentials of the user "
    "running it. To run commands: install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) so they run "
    "sandboxed, or rerun with --yolo, or set sandbox.allow_unsandboxed: true in the config"
)


def _names(effects: frozenset[Effect]) -> str:
    return ", ".join(sorted(str(e) for e in effects))
