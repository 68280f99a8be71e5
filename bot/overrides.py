"""Per-repository settings from `.github/ml-intern.yml` on the default branch, validated; a bad file is reported."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.config import AgentConfig
from agent.errors import ConfigError
from agent.safe_yaml import load_yaml

PATH = ".github/ml-intern.yml"
MAX_BYTES = 64 * 1024


class RepoOverrides(BaseModel):
    """What a repository may set for its runs (a maintainer may lower limits or turn the network off)."""

    model_config = ConfigDict(extra="forbid")

    max_iterations: int | None = Field(default=None, ge=1)
    """Model calls in one run (never above the server's own limit)."""
    budget_usd: float | None = Field(default=None, ge=0)
    """Spend of one run (never above the server's own budget)."""
    network: bool | None = None
    """Whether commands in the sandbox may use the network (only turning it off takes effect when the server
    has it off)."""

    def apply(self, config: AgentConfig) -> AgentConfig:
        """`config` with these overrides, each bounded by the server's own setting."""
        update: dict[str, object] = {}
        if self.max_iterations is not None:
            update["max_iterations"] = min(self.max_iterations, config.max_iterations)
        if self.budget_usd is not None:
            limit = config.budget_usd
            update["budget_usd"] = self.budget_usd if limit is None else min(self.budget_usd, limit)
        if self.network is not None:
            sandbox = config.sandbox.model_copy(update={"network": self.network and config.sandbox.network})
            update["sandbox"] = sandbox
        return config.model_copy(update=update)


def parse(text: str | None) -> tuple[RepoOverrides, str]:
    """The overrides in `text` (None: no file), and a problem to report (empty when fine)."""
    if text is None:
        return RepoOverrides(), ""
    if len(text) > MAX_BYTES:
        return RepoOverrides(), f"{PATH} is larger than {MAX_BYTES} bytes"
    try:
        data = load_yaml(text, PATH)
        return RepoOverrides.model_validate(data or {}), ""
    except ConfigError as e:
        return RepoOverrides(), str(e)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'file'}: {err['msg']}" for err in e.errors())
        return RepoOverrides(), f"{PATH} is not valid: {problems}"


__all__ = ["PATH", "RepoOverrides", "parse"]
