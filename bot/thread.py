"""The thread runner: a sandboxed checkout, the thread's agent session driven by `run_task`, and shipping.

It needs only the App's credentials and a data folder (no server, no store), so the GitHub Action can reuse it.
It runs on the worker's run loop and therefore uses a GitHub client of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agent.config import AgentConfig
from agent.errors import AgentError, SessionError
from agent.events import Event, EventType, Interrupt, StopReason
from agent.llm import Model
from agent.redact import Redactor
from agent.run import Outcome as AgentOutcome
from agent.sandbox import Sandbox
from agent.session import Session, open_session
from bot import context, overrides
from bot.auth import AppJWT
from bot.confine import session_env, thread_policy, thread_sandbox
from bot.github import GitHub, GitHubError
from bot.models import Run
from bot.render import FinalReport
from bot.ship import ShipError, Thread, ship
from bot.spend import Ledger
from bot.worker import Outcome
from bot.workspace import ThreadState, Workspace, WorkspaceError, slug

if TYPE_CHECKING:
    from agent.loop import Agent

logger = logging.getLogger(__name__)

THREAD_TOOLS = ["workspace"]
"""The families a thread run offers: files, shell (in the sandbox) and plan."""
RETRY = "reply `/retry` to run the request again, or mention me in this thread with what to do next."
INTERRUPT_GRACE = 30.0
"""Seconds an interrupted agent has to end its turn before it is cancelled."""


class Feedback(Protocol):
    """What the thread sees of a run while it executes (the server's live comment and approvals)."""

    def on_event(self, event: Event) -> None: ...

    async def watch(self, agent: Agent) -> None:
        """Runs beside the agent (answers approvals) until cancelled."""
        ...

    async def close(self, report: FinalReport) -> None:
        """Write the final state."""
        ...

    async def stop(self) -> None:
        """Stop without a final state (the run was cancelled)."""
        ...


FeedbackFactory = Callable[[Run, Callable[[str], str]], Awaitable[Feedback]]
"""Builds a run's feedback, given the redaction every text shown must go through."""


class ThreadExecutor:
    """Executes a run in its thread's workspace (implements `bot.worker.RunExecutor`)."""

    def __init__(
        self,
        config: AgentConfig,
        home: Path,
        *,
        api_url: str,
        jwt: AppJWT,
        model_factory: Callable[[], Model] | None = None,
        hidden: Sequence[Path] = (),
        timeout: float = 4 * 3600.0,
        daily_cap_usd: float | None = None,
        feedback: FeedbackFactory | None = None,
    ) -> None:
        self.config = config.model_copy(update={"tools": THREAD_TOOLS, "mcpServers": {}})
        self.home = home
        self.api_url = api_url
        self.jwt = jwt
        self.model_factory = model_factory
        self.hidden = [home, *hidden]
        self.timeout = timeout
        self.daily_cap_usd = daily_cap_usd
        self.ledger = Ledger(home / "spend")
        self.feedback = feedback

    async def execute(self, run: Run) -> Outcome:
        gh = GitHub(self.api_url, self.jwt, max_attempts=5)
        live = await self.feedback(run, Redactor.from_env(session_env()).redact) if self.feedback else None
        try:
            outcome, report = await self._execute(gh, run, live)
        except (WorkspaceError, ShipError, GitHubError, AgentError) as e:
            logger.warning("run %s failed: %s", run.id, e, extra={"run_id": run.id})
            outcome, report = Outcome(False, str(e), run.session_id), FinalReport(failure=str(e), next_steps=RETRY)
        except BaseException:  # cancelled (/stop, shutdown) or a crash: the worker writes the comment
            if live is not None:
                await live.stop()
            raise
        finally:
            await gh.aclose()
        if live is None:
            return outcome

        async def finish(write: bool) -> None:
            await (live.close(report) if write else live.stop())

        return replace(outcome, finish=finish)

    async def _execute(self, gh: GitHub, run: Run, live: Feedback | None) -> tuple[Outcome, FinalReport]:
        inst = run.installation_id
        allowance = self._allowance(inst)
        ws = Workspace(self.home / "threads", run.repo, run.number)
        state = ws.load_state()
        me = await gh.app()
        slug_name = str(me["slug"])
        thread = await self._thread(gh, run, state)
        await ws.prepare(
            thread.clone_url,
            await gh.tokens.get(inst),
            base=thread.default_branch,
            branch=thread.branch,
            start=f"refs/pull/{run.number}/head" if run.is_pr and not thread.pr_url else None,
        )
        settings, problem = overrides.parse(await _read_base(ws, overrides.PATH))
        config = settings.apply(self.config)
        notes = [f"⚠️ {problem}; this run used the server's defaults."] if problem else []
        sandbox = thread_sandbox(config, ws.work, self.hidden, notes)
        config = thread_policy(config, sandbox.isolated)
        issue = (await gh.request("GET", f"/repos/{run.repo}/issues/{run.number}", installation=inst)).json()
        comments = await gh.comments(inst, run.repo, run.number)
        prompt = context.task(run.request, run.requester, context.thread_context(issue, comments, f"{slug_name}[bot]"))
        session = await self._session(config, ws, state, sandbox, run, thread)
        state.session_id, state.branch = session.id, thread.branch
        ws.save_state(state)
        before = session.budget.spent
        limit = min(x for x in (config.budget_usd, allowance, float("inf")) if x is not None)
        session.budget.limit_usd = None if limit == float("inf") else before + limit
        resuming = bool(session.pending_approvals) and run.attempts > 1  # this run, stopped while it waited
        task = None if resuming else prompt
        try:
            outcome, errors = await self._drive(session, task, run, live)
        finally:
            await session.close()
            self.ledger.add(inst, session.budget.spent - before)
        if outcome.stop_reason is not StopReason.DONE:
            why = errors[-1] if errors else f"the agent stopped ({outcome.stop_reason})"
            if outcome.stop_reason is StopReason.BUDGET:
                why = self._budget_note(inst, config, session.budget.spent - before)
            kept = "The work so far is kept for `/retry` or a follow-up; nothing was shipped."
            text = f"{why}\n\n{outcome.final}".strip()
            report = FinalReport(outcome, failure=why, notes=(kept, *notes), next_steps=RETRY)
            return Outcome(False, f"{text}\n\n{kept}", session.id), report
        author = (f"{slug_name}[bot]", f"{me['id']}+{slug_name}[bot]@users.noreply.github.com")
        try:
            result = await ship(
                ws, gh, inst, thread, request=run.request, requester=run.requester, author=author, report=outcome.final
            )
        except ShipError as e:
            report = FinalReport(outcome, failure=str(e), notes=tuple(notes), next_steps=RETRY)
            return Outcome(False, str(e), session.id), report
        if result.pr_url:
            state.pr_url = result.pr_url
            ws.save_state(state)
        notes.insert(0, result.note())
        report = FinalReport(outcome, pr_url=result.pr_url, left_out=tuple(result.left_out), notes=tuple(notes))
        return Outcome(True, "\n\n".join([outcome.final, "---", result.summary(), *notes]), session.id), report

    def _allowance(self, installation: int) -> float | None:
        """What the installation may still spend today; raises when the daily cap is used up."""
        if self.daily_cap_usd is None:
            return None
        spent = self.ledger.spent(installation)
        if spent >= self.daily_cap_usd:
            raise ShipError(
                f"this installation's daily cap of ${self.daily_cap_usd:.2f} is used up (${spent:.2f} spent today, "
                "model and tools); runs start again after midnight UTC, or the operator can raise "
                "ML_INTERN_DAILY_BUDGET_USD"
            )
        return self.daily_cap_usd - spent

    def _budget_note(self, installation: int, config: AgentConfig, spent: float) -> str:
        run_cap = f"${config.budget_usd:.2f} per run" if config.budget_usd is not None else "no per-run budget"
        daily = f"${self.daily_cap_usd:.2f} a day" if self.daily_cap_usd is not None else "no daily cap"
        today = self.ledger.spent(installation)
        return f"the run hit its budget after spending ${spent:.2f} ({run_cap}; {daily}, ${today:.2f} spent today)"

    async def _thread(self, gh: GitHub, run: Run, state: ThreadState) -> Thread:
        inst = run.installation_id
        repo = (await gh.request("GET", f"/repos/{run.repo}", installation=inst)).json()
        default, clone_url = str(repo["default_branch"]), str(repo["clone_url"])
        thread = Thread(run.repo, run.number, run.is_pr, default, clone_url, state.branch, state.pr_url)
        if run.is_pr:
            pull = (await gh.request("GET", f"/repos/{run.repo}/pulls/{run.number}", installation=inst)).json()
            head_repo = str(((pull.get("head") or {}).get("repo") or {}).get("full_name") or "")
            thread.pr_base = str((pull.get("base") or {}).get("ref") or default)
            if head_repo == run.repo and pull["head"]["ref"] != default:
                thread.branch, thread.pr_url = str(pull["head"]["ref"]), str(pull["html_url"])
        if not thread.branch:
            thread.branch = f"ml-intern/{run.number}-{slug(run.request)}"
        return thread

    async def _session(
        self, config: AgentConfig, ws: Workspace, state: ThreadState, sandbox: Sandbox, run: Run, thread: Thread
    ) -> Session:
        prompt_vars = {
            "repository": run.repo,
            "thread": f"{'pull request' if run.is_pr else 'issue'} #{run.number}",
            "requester": run.requester,
            "default_branch": thread.pr_base or thread.default_branch,
            "branch": thread.branch,
        }
        kwargs: dict[str, Any] = {
            "workdir": ws.work,
            "headless": False,  # gated calls are asked in the thread, not refused
            "home": self.home,
            "prompt_vars": prompt_vars,
            "env": session_env(),
            "sandbox": sandbox,
        }
        if state.session_id:
            try:
                return await open_session(config, resume=state.session_id, model=self._model(), **kwargs)
            except SessionError as e:
                logger.warning("run %s: the thread's session cannot continue (%s); starting a new one", run.id, e)
        return await open_session(config, model=self._model(), **kwargs)

    def _model(self) -> Model | None:
        return self.model_factory() if self.model_factory else None

    async def _drive(
        self, session: Session, prompt: str | None, run: Run, live: Feedback | None
    ) -> tuple[AgentOutcome, list[str]]:
        from agent.loop import Agent
        from agent.run import run_task

        errors: list[str] = []
        waiting: set[str] = set()

        def on_event(event: Event) -> None:
            if event.type is EventType.ERROR:
                errors.append(str(event.data.get("message") or ""))
            elif event.type is EventType.APPROVAL_REQUIRED:
                waiting.add(str(event.data.get("call_id")))
            elif event.type is EventType.TOOL_STATE_CHANGE and event.data.get("state") in ("approved", "denied"):
                waiting.discard(str(event.data.get("call_id")))
            if live is not None:
                live.on_event(event)

        agent = Agent(session)
        runner = asyncio.ensure_future(run_task(agent, prompt, on_event))
        watcher = asyncio.ensure_future(live.watch(agent)) if live is not None else None
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(runner), errors
        except TimeoutError:
            await _interrupt(agent, runner)
            raise ShipError(f"the run took longer than {self.timeout:.0f} s; nothing was shipped") from None
        except asyncio.CancelledError:
            if waiting:  # the turn is cut with its pending calls kept, so a later claim resumes it
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)
            else:  # /stop or shutdown mid-step: the agent ends its turn (tools and all) and says so
                await _interrupt(agent, runner)
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)


async def _interrupt(agent: Any, runner: asyncio.Future[Any]) -> None:
    """Interrupt the agent's turn (running tools are killed) and let `run_task` finish; cancel it if it hangs."""
    agent.submit(Interrupt())
    _, pending = await asyncio.wait({runner}, timeout=INTERRUPT_GRACE)
    for task in pending:
        task.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def _read_base(ws: Workspace, path: str) -> str | None:
    """A file of the default branch as fetched, or None when it is missing."""
    try:
        return await ws.git("show", f"refs/ml-intern/base:{path}", work=False)
    except WorkspaceError:
        return None


__all__ = ["THREAD_TOOLS", "Feedback", "FeedbackFactory", "ThreadExecutor"]
