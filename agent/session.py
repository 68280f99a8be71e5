"""One conversation: config, model, tools, history, budget and its append-only trace."""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import shutil
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import IO, Any

from agent.approvals import ApprovalPolicy, Budget
from agent.config import AgentConfig
from agent.env import EnvSnapshot
from agent.errors import AgentError, ConfigError, SessionError
from agent.events import Event
from agent.llm import Model
from agent.messages import Message, ToolCall, Usage
from agent.redact import Redactor, redact_in_logs
from agent.sandbox import LocalSandbox, Sandbox, open_sandbox
from agent.tools.base import Emit, Toolbox, ToolContext
from agent.tools.deps import Deps
from agent.tools.families import Family, select
from agent.trace import (
    TRACE_FILE,
    TraceState,
    TraceWriter,
    adopt_trace,
    check_session_id,
    data_home,
    find_session,
    new_session_id,
    read_trace,
)

logger = logging.getLogger(__name__)


@dataclass
class Session:
    """Everything one conversation owns. Build it with `open_session`."""

    id: str
    config: AgentConfig
    model: Model
    toolbox: Toolbox
    workdir: Path
    dir: Path
    headless: bool
    trace: TraceWriter
    redactor: Redactor
    policy: ApprovalPolicy
    env: dict[str, str]
    """The scrubbed environment that subprocesses get."""
    snapshot: EnvSnapshot = field(default_factory=EnvSnapshot)
    """The process environment as read once at start; credentials reach tools only through `deps`."""
    deps: Deps = field(default_factory=Deps)
    sandbox: Sandbox = field(default_factory=LocalSandbox)
    """Where `bash` runs commands."""
    messages: list[Message] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    budget: Budget = field(default_factory=lambda: Budget(None))
    tool_state: dict[str, Any] = field(default_factory=dict)
    pending_approvals: list[dict[str, Any]] = field(default_factory=list)
    """Approval requests restored from the trace, still waiting for a decision."""
    unanswered_calls: list[ToolCall] = field(default_factory=list)
    """Tool calls of the last assistant message with no result (a restart mid-turn)."""
    cut_calls: dict[str, list[str]] = field(default_factory=dict)
    """Of those, the calls that were running when the process stopped, with their last output lines."""
    mcp_failures: dict[str, str] = field(default_factory=dict)
    resumed: bool = False
    trace_url: str | None = None
    """Where the trace was uploaded, when `traces.enabled`."""
    seq: int = 0
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    _retired: list[Model] = field(default_factory=list)
    """Models replaced by `set_model`, closed with the session (their connection pools)."""
    _lock: IO[str] | None = None

    @property
    def plan(self) -> list[dict[str, Any]]:
        return list(self.tool_state.get("plan", []))

    @property
    def spill_dir(self) -> Path:
        return self.dir / "spills"

    def tool_context(self, call_id: str, emit: Emit) -> ToolContext:
        return ToolContext(self.workdir, self.dir, self.env, emit, self.tool_state, call_id, self.deps, self.sandbox)

    def add(self, message: Message) -> Message:
        """Append a redacted copy of `message` to the history and the trace, and return the copy.

        `message` itself is left as it was: tool calls run with the arguments the model wrote (a token-shaped
        test fixture must reach the file as written); only what is kept, shown or sent again is redacted,
        the model's reasoning (in `meta`) included.
        """
        kept = replace(
            message,
            content=self.redactor.redact(message.content),
            tool_calls=[replace(c, arguments=self.redactor.redact(c.arguments)) for c in message.tool_calls],
            meta=self.redactor.redact_obj(message.meta),
        )
        self.messages.append(kept)
        self.trace.message(kept)
        return kept

    def replace_history(self, messages: list[Message]) -> None:
        self.messages = messages
        self.trace.history(messages)

    def record(self, event: Event) -> Event:
        """Number, redact and trace an event."""
        self.seq += 1
        event.seq = self.seq
        event.data = self.redactor.redact_obj(event.data)
        self.trace.event(event)
        return event

    def set_model(self, model_id: str) -> None:
        """Switch the model for the next calls."""
        config = self.config.model_copy(update={"model": model_id})
        model = build_model(config, self.snapshot, self.redactor)
        self._retired.append(self.model)
        self.model = model
        self.config = config
        _guard_model_key(self)
        self.trace.meta(model=model_id)

    async def close(self) -> None:
        """Stop MCP servers, close the trace and, when `traces.enabled`, upload it (failures only logged)."""
        await self._stack.aclose()
        await self.deps.aclose()
        for model in (*self._retired, self.model):
            if (close_model := getattr(model, "aclose", None)) is not None:
                await close_model()  # the model's connection pool
        self.trace.close()
        if self._lock is not None:
            self._lock.close()  # releases the session for another process
            self._lock = None
        if self.config.traces.enabled:
            self.trace_url = await asyncio.to_thread(_upload, self)


def _upload(session: Session) -> str | None:
    from agent.trace_upload import upload_trace

    try:
        url = upload_trace(
            session.dir / "trace.jsonl",
            session.config.traces,
            token=session.snapshot.first("HF_TOKEN"),
            endpoint=session.snapshot.get("HF_ENDPOINT"),
            redactor=session.redactor,
        )
    except AgentError as e:
        logger.warning("the session trace was not uploaded: %s", e)
        return None
    logger.info("session trace uploaded to %s", url)
    return url


def build_model(config: AgentConfig, env: EnvSnapshot, redactor: Redactor) -> Model:
    from agent.llm import model_from_config

    return model_from_config(config, env=env, redactor=redactor)


def system_prompt(config: AgentConfig, workdir: Path, headless: bool, extra: Mapping[str, Any] | None = None) -> str:
    """Render the configured template; `extra` adds variables (the GitHub runner's repository, thread...)."""
    from agent.prompts import render

    return render(
        config.system_prompt,
        **{
            "workdir": str(workdir),
            "today": date.today().isoformat(),
            "headless": headless,
            "os": platform.system(),
            **(extra or {}),
        },
    )


async def open_session(
    config: AgentConfig,
    *,
    workdir: Path,
    headless: bool,
    resume: str | None = None,
    model: Model | None = None,
    home: Path | None = None,
    families: Sequence[Family] | None = None,
    deps: Iterable[object] = (),
    prompt_vars: Mapping[str, Any] | None = None,
    env: EnvSnapshot | None = None,
    sandbox: Sandbox | None = None,
) -> Session:
    """Start a new session in `workdir`, or continue `resume` (a session id or unique prefix).

    Args:
        families: The tool families to offer; by default those the config's `tools` selects.
        deps: Ready-made tool dependencies (clients) to use instead of building them from the environment.
        prompt_vars: Extra variables for the system prompt template.
        env: The environment snapshot; by default the process environment, read once here.
        sandbox: Where commands run; by default the one `config.sandbox` asks for (ConfigError when it cannot).
    """
    env = env if env is not None else EnvSnapshot.capture()
    toolsets = list(families) if families is not None else select(config.tools)
    workdir = workdir.resolve()
    if not workdir.is_dir():
        raise ConfigError(f"workdir {workdir} is not a folder; create it or pass --workdir")
    sandbox = sandbox or open_sandbox(config.sandbox, workdir=workdir, headless=headless, search_path=env.get("PATH"))
    home = home or data_home(env)
    state: TraceState | None = None
    if resume is not None:
        trace_path = find_session(resume, home)
        state = read_trace(trace_path)
        for warning in state.warnings:
            logger.warning("resuming %s: %s", resume, warning)
        session_id = check_session_id(str(state.meta.get("id") or trace_path.parent.name), trace_path)
        saved = state.meta.get("workdir")
        if saved and Path(saved) != workdir:
            logger.info("session %s was started in %s; continuing in %s", session_id, saved, workdir)
    else:
        session_id = new_session_id()
    redactor = Redactor.from_env(env)
    model = model or build_model(config, env, redactor)  # a missing key fails here, before anything is made
    toolbox = Toolbox(t for family in toolsets for t in family.tools)
    folder = home / "sessions" / session_id
    folder.mkdir(parents=True, exist_ok=True)
    if state is not None:
        adopt_trace(trace_path, folder / TRACE_FILE, session_id)  # a copied trace comes home whole
    lock = _lock_session(folder, session_id)
    session = Session(
        id=session_id,
        config=config,
        model=model,
        toolbox=toolbox,
        workdir=workdir,
        dir=folder,
        headless=headless,
        trace=TraceWriter(folder / TRACE_FILE),
        redactor=redactor,
        policy=ApprovalPolicy.from_config(config, headless=headless, sandboxed=sandbox.isolated),
        env=env.scrubbed(),
        snapshot=env,
        deps=Deps(env, deps),
        sandbox=sandbox,
        budget=Budget(config.budget_usd),
        tool_state={"bash_timeout": config.bash_timeout},
        _lock=lock,
    )
    _guard_model_key(session)
    try:
        await _connect_mcp(session)
        if state is not None:
            _restore(session, state)
        else:
            session.trace.meta(
                id=session_id,
                model=config.model,
                workdir=str(workdir),
                headless=headless,
                created=_now(),
                version=_version(),
            )
            session.add(Message.system(system_prompt(config, workdir, headless, prompt_vars)))
    except BaseException:
        await session.close()
        if state is None:  # a session that never started is not kept (nor listed)
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return session


async def _connect_mcp(session: Session) -> None:
    if not session.config.mcpServers:
        return
    from agent.tools.mcp import MCPTools

    mcp = await session._stack.enter_async_context(
        MCPTools(session.config.mcpServers, log_dir=session.dir / "mcp-logs")
    )
    session.mcp_failures = dict(mcp.failures)
    for tool in mcp.tools:
        session.toolbox.add(tool)


def _lock_session(folder: Path, session_id: str) -> IO[str] | None:
    """One process at a time writes a session; the OS drops the lock when its holder exits, even by a crash."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks
        return None
    handle = (folder / "lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise SessionError(
            f"session {session_id} is open in {holder}; finish or stop that run first (or start a new session)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()}")
    handle.flush()
    return handle


def _guard_model_key(session: Session) -> None:
    """The model's key, whatever variable or saved login it came from, is redacted and kept out of subprocesses."""
    from agent.llm.routing import NO_KEY

    key = getattr(getattr(session.model, "route", None), "api_key", None)
    if isinstance(key, str) and key and key != NO_KEY:
        session.redactor.add(key)
        redact_in_logs(key)
    if session.config.llm.api_key_env:
        session.env.pop(session.config.llm.api_key_env, None)


def _restore(session: Session, state: TraceState) -> None:
    if not state.messages:
        raise SessionError(f"session {session.id} has no history to resume; start a new session instead")
    session.messages = state.messages
    session.usage = state.usage
    session.budget.model_usd = state.usage.cost_usd
    session.budget.tools_usd = state.tools_usd
    session.policy.always.update(state.always)
    session.seq = state.last_seq
    if state.plan:
        session.tool_state["plan"] = state.plan
    session.pending_approvals = state.pending_approvals
    session.unanswered_calls = state.unanswered_calls
    session.cut_calls = state.running
    session.resumed = True
    session.trace.meta(resumed=_now())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ml-intern")
    except PackageNotFoundError:
        return "0+unknown"


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")
