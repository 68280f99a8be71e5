"""What a thread run shows in its thread on the server: the live progress comment and approvals from the thread."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config import AgentConfig
from agent.events import Event
from agent.llm import Model
from agent.sandbox.bubblewrap import INSTALL_HINT
from bot.approvals import ThreadApprovals
from bot.progress import RunProgress
from bot.render import FinalReport
from bot.settings import Settings
from bot.thread import ThreadExecutor

if TYPE_CHECKING:
    from agent.loop import Agent
    from bot.models import Run
    from bot.services import Services

logger = logging.getLogger(__name__)


class LiveThread:
    """`RunProgress` and `ThreadApprovals` of one run, fed the same events (implements `thread.Feedback`)."""

    def __init__(self, progress: RunProgress, approvals: ThreadApprovals) -> None:
        self.progress = progress
        self.approvals = approvals

    @classmethod
    async def open(cls, s: Services, run: Run, redact: Callable[[str], str]) -> LiveThread:
        return cls(await RunProgress.open(s, run, redact=redact), ThreadApprovals(s, run))

    def on_event(self, event: Event) -> None:
        self.progress.on_event(event)
        self.approvals.on_event(event)

    async def watch(self, agent: Agent) -> None:
        """Answer approval cards from the thread until cancelled."""
        await self.approvals.run(agent)

    async def close(self, report: FinalReport) -> None:
        await self.progress.close(report)

    async def stop(self) -> None:
        await self.progress.stop()


def server_executor(
    settings: Settings,
    config: AgentConfig,
    s: Services,
    model_factory: Callable[[], Model] | None = None,
) -> ThreadExecutor:
    """The executor `ml-intern serve` uses: the App's credentials, the key file hidden, the live comment."""
    from bot.server import preflight

    key_path = settings.github_app_private_key_path
    hidden = [Path(key_path).expanduser()] if key_path else []
    if config.sandbox.mode != "none" and shutil.which("bwrap") is None:
        logger.warning("bubblewrap is not installed: thread runs will be refused until it is (%s)", INSTALL_HINT)

    async def feedback(run: Run, redact: Callable[[str], str]) -> LiveThread:
        return await LiveThread.open(s, run, redact)

    assert s.data_dir is not None
    return ThreadExecutor(
        config,
        s.data_dir,
        api_url=settings.api_url(),
        jwt=preflight(settings),
        model_factory=model_factory,
        hidden=hidden,
        daily_cap_usd=settings.ml_intern_daily_budget_usd,
        feedback=feedback,
    )


__all__ = ["LiveThread", "server_executor"]
