"""Model tests run with no real credentials and no saved Hugging Face login; `build` makes each client in turn."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentConfig, LLMConfig
from agent.llm.base import RetryingModel
from agent.llm.routing import context_window_for, resolve_route
from agent.llm.server import ScriptedServer

# Read by huggingface_hub when it is first imported; points at a file that does not exist.
os.environ.setdefault("HF_TOKEN_PATH", str(Path(tempfile.gettempdir()) / f"ml-intern-tests-{os.getpid()}" / "token"))

CREDENTIALS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENROUTER_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_API_KEY",
    "HF_OIDC_RESOURCE",
)


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)


@dataclass
class Recorder:
    """Collects what a model reports: sleeps, retries, streamed text."""

    sleeps: list[float] = field(default_factory=list)
    retries: list[dict[str, Any]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def on_retry(self, info: dict[str, Any]) -> None:
        self.retries.append(info)

    async def on_text(self, text: str) -> None:
        self.text.append(text)


def config(srv: ScriptedServer | None = None, model: str = "gpt-4o-mini", **llm: Any) -> AgentConfig:
    settings = {"timeout": 5, "max_retries": 2, "backoff_base": 0.01, "backoff_max": 0.05, **llm}
    return AgentConfig(model=model, base_url=srv.base_url if srv else None, llm=LLMConfig(**settings))


Build = Callable[..., RetryingModel]


@pytest.fixture(params=["openai", "litellm"])
async def build(request: pytest.FixtureRequest) -> AsyncIterator[Build]:
    """Builds the model of a config with each client in turn (the direct one, then litellm); closes them after."""
    from agent.llm.litellm_model import LiteLLMModel
    from agent.llm.openai_compat import OpenAICompatModel

    kind = OpenAICompatModel if request.param == "openai" else LiteLLMModel
    made: list[RetryingModel] = []

    def make(srv: ScriptedServer | None, rec: Recorder, model: str = "gpt-4o-mini", **llm: Any) -> RetryingModel:
        cfg = config(srv, model, **llm)
        route = resolve_route(cfg)
        window = context_window_for(route, cfg.context.context_window)
        made.append(kind(route, cfg.llm, name=cfg.model, context_window=window, sleep=rec.sleep))
        return made[-1]

    yield make
    for model in made:
        await model.aclose()
