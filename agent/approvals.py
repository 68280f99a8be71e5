"""Which tool calls need a human: an effect-based policy, session-wide grants, and the run's budget."""

from __future__ import annotations

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
    """Decides per call from the tool's effects; a human's "always" grants last for the session."""

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

    def decide(self, tool: Tool, args: dict[str, Any], budget: Budget) -> Verdict:
        cost = tool.estimate_cost(args) if tool.estimate_cost else None
        if cost is not None and not budget.fits(cost):
            remaining = (budget.limit_usd or 0.0) - budget.spent
            return Verdict(
                Decision.DENY,
                f"estimated cost ${cost:.2f} exceeds the remaining budget "
                f"${max(remaining, 0):.2f} (raise --budget to allow it)",
                cost,
            )
        denied = tool.effects & self.deny
        if denied:
            return Verdict(Decision.DENY, f"effects {_names(denied)} are denied by config approvals.deny", cost)
        needs = tool.effects & self.ask
        if self.yolo or not needs or tool.name in self.always:
            return Verdict(Decision.AUTO, "", cost)
        if self.headless:
            if needs <= self.headless_auto:
                return Verdict(Decision.AUTO, "", cost)
            if self.unsandboxed and Effect.EXECUTE in needs:
                return Verdict(Decision.DENY, UNSANDBOXED.format(tool=tool.name), cost)
            return Verdict(
                Decision.DENY,
                f"{tool.name} has effects {_names(needs)} that need a human, and this "
                "run is headless (rerun with --yolo, or add them to "
                "approvals.headless_auto)",
                cost,
            )
        return Verdict(Decision.ASK, f"effects {_names(needs)} need approval", cost)


UNSANDBOXED = (
    "{tool} was not run: this headless run has no sandbox, so a command could read the credentials of the user "
    "running it. To run commands: install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) so they run "
    "sandboxed, or rerun with --yolo, or set sandbox.allow_unsandboxed: true in the config"
)


def _names(effects: frozenset[Effect]) -> str:
    return ", ".join(sorted(str(e) for e in effects))
