"""Append-only session traces: one JSON record per line, replayed to resume a session anywhere.

A session lives in `data_home()/sessions/<id>/` with `trace.jsonl`. Every line is one record,
its kind in `"t"`:

    {"t": "meta", "ts": ..., ...fields}        session facts; a later meta record updates fields
    {"t": "msg", "ts": ..., "m": {...}}        a message appended to the history (Message.to_dict())
    {"t": "history", "ts": ..., "messages": [...]}  the whole history replaced (compaction, undo)
    {"t": "event", "ts": ..., "e": {...}}      an emitted event (Event.to_dict()), chunks excluded

Event payloads read back on replay: `plan_updated` {"plan": [...]}, `usage` {"call": Usage.to_dict()},
`approval_required` {"call_id", ...} and `tool_state_change` {"call_id", "state"}.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from agent.errors import SessionError
from agent.events import Event, EventType, ToolState
from agent.messages import Message, ToolCall, Usage

logger = logging.getLogger(__name__)

TRACE_FILE = "trace.jsonl"
LIST_HINT = "run `ml-intern --list-sessions` to list them"
"""How a user lists sessions; quoted in errors."""
SETTLED_STATES = frozenset({ToolState.APPROVED, ToolState.DENIED, ToolState.DONE, ToolState.FAILED})
"""`tool_state_change` states that answer an `approval_required` event."""
_EVENT_TYPES = frozenset(str(t) for t in EventType)
RUNNING_LOG_LINES = 20
"""Lines of live output kept per call that was running when its process stopped."""


def data_home(env: Mapping[str, str] | None = None) -> Path:
    """Where ML Intern keeps its data: $ML_INTERN_HOME (from `env`, default the process environment), else the
    platform's user data folder."""
    home = (os.environ if env is None else env).get("ML_INTERN_HOME")
    if home:
        return Path(home).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("ml-intern"))


def sessions_dir(home: Path | None = None) -> Path:
    return (home if home is not None else data_home()) / "sessions"


def session_dir(session_id: str, home: Path | None = None) -> Path:
    return sessions_dir(home) / session_id


SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""What a session id may be: it names a folder under `sessions/`, so no separators and no `..`."""


def check_session_id(session_id: str, source: Path | str) -> str:
    """`session_id`, if it can name a session folder; a SessionError naming `source` (a trace, an option) if not."""
    if SESSION_ID.fullmatch(session_id) and ".." not in session_id:
        return session_id
    raise SessionError(
        f"{source}: {session_id!r} is not a session id (ids are letters, digits, `.`, `_` and `-`); {LIST_HINT}"
    )


def adopt_trace(source: Path, dest: Path, session_id: str) -> None:
    """Bring a trace resumed from elsewhere (a copy, another machine) to its session folder, whole, so that the
    resumed session keeps its system prompt and history there."""
    if not dest.exists():
        shutil.copyfile(source, dest)
    elif not dest.samefile(source):
        raise SessionError(
            f"session {session_id} is already in {dest.parent}; resume that one (ml-intern --resume {session_id}), "
            f"or move it away to resume the copy {source}"
        )


def new_session_id() -> str:
    """A new id that sorts by creation time: `20261121-113005-a1b2c3` (UTC)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def iso_time(ts: float) -> str:
    """A Unix time as ISO 8601 UTC with milliseconds: `2026-11-21T11:30:05.123Z`."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TraceWriter:
    """Appends records to one session's trace; every record is flushed as soon as it is written.

    Nothing here redacts: callers write what they want kept (the loop redacts before writing).
    One writer per session; a lock keeps concurrent records from interleaving. Values JSON cannot
    hold are written as their `str()`. Opening a trace drops a record a crash left half-written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        _drop_partial_tail(path)
        self._file = path.open("a", encoding="utf-8", newline="\n")
        self._lock = threading.Lock()

    def meta(self, **fields: Any) -> None:
        """Record session facts (id, created, model, workdir, config, version, status...)."""
        self._write({"t": "meta", "ts": _now(), **fields}, sync=True)

    def message(self, m: Message) -> None:
        self._write({"t": "msg", "ts": _now(), "m": m.to_dict()})

    def history(self, messages: Iterable[Message]) -> None:
        """Record that the whole history was replaced by `messages`."""
        self._write({"t": "history", "ts": _now(), "messages": [m.to_dict() for m in messages]})

    def event(self, e: Event) -> None:
        """Record an event; `assistant_chunk` events are dropped (the message holds the text)."""
        if e.type is EventType.ASSISTANT_CHUNK:
            return
        self._write({"t": "event", "ts": _now(), "e": e.to_dict()})

    def close(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _write(self, record: dict[str, Any], *, sync: bool = False) -> None:
        line = json_line(record)
        with self._lock:
            if self._file.closed:
                raise SessionError(f"trace {self.path} is closed; open a new TraceWriter to continue the session")
            self._file.write(line)
            self._file.flush()
            if sync:
                os.fsync(self._file.fileno())


def _now() -> float:
    return round(time.time(), 3)


def json_line(record: Any) -> str:
    """`record` as one line of JSON that can be written as UTF-8, whatever text it holds.

    Text is kept readable (not \\u-escaped), except in a record holding a lone surrogate (malformed model output
    such as `\\udcff`), which UTF-8 cannot encode: that record is written with escapes, so it is kept whole and
    reads back the same.
    """
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
    if _has_surrogate(line):
        line = json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str)
    return line + "\n"


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _drop_partial_tail(path: Path) -> None:
    """Cut a record left half-written by a crash, so appending does not glue onto it."""
    if not path.exists():
        return
    with path.open("rb+") as f:
        end = pos = f.seek(0, os.SEEK_END)
        if end == 0:
            return
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return
        while pos > 0:
            start = max(0, pos - 65536)
            f.seek(start)
            cut = f.read(pos - start).rfind(b"\n")
            pos = start + cut + 1 if cut >= 0 else start
            if cut >= 0:
                break
        logger.warning("trace %s ends with a partial record (%d bytes); dropping it", path, end - pos)
        f.truncate(pos)


# ---- reading --------------------------------------------------------------------------------


@dataclass
class TraceState:
    """A session rebuilt from its trace."""

    meta: dict[str, Any] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    message_times: list[float] = field(default_factory=list)
    """When each message entered the history (parallel to `messages`)."""
    events: list[Event] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)
    """From the last `plan_updated` event."""
    usage: Usage = field(default_factory=Usage)
    """Sum of the `usage` events' `call` field."""
    last_seq: int = 0
    pending_approvals: list[dict[str, Any]] = field(default_factory=list)
    """`approval_required` payloads not yet settled by a `tool_state_change`."""
    unanswered_calls: list[ToolCall] = field(default_factory=list)
    """Tool calls of the last assistant message that have no result message."""
    running: dict[str, list[str]] = field(default_factory=dict)
    """Calls whose last recorded state is `running` (the process stopped under them), with their last log lines."""
    always: set[str] = field(default_factory=set)
    """Tools a person approved "always" for the session."""
    tools_usd: float = 0.0
    """Estimated cost of the approved tool calls (counts against the budget)."""
    warnings: list[str] = field(default_factory=list)


def read_trace(path: Path) -> TraceState:
    """Replay a trace (the file, or its session folder) into a TraceState."""
    path = path / TRACE_FILE if path.is_dir() else path
    if not path.is_file():
        raise SessionError(f"session {path.parent.name} not found (no {path}); {LIST_HINT}")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    state = TraceState()
    pending: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            _apply(state, pending, json.loads(line))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            if number < len(lines):
                raise SessionError(
                    f"trace {path} is corrupt at line {number} ({e}); the records after it cannot be trusted"
                ) from None
            state.warnings.append(f"line {number} of {path} is incomplete (the writer stopped mid-record); skipped")
    state.pending_approvals = list(pending.values())
    state.unanswered_calls = _unanswered(state.messages)
    return state


def _apply(state: TraceState, pending: dict[str, dict[str, Any]], rec: dict[str, Any]) -> None:
    kind = rec["t"]
    ts = float(rec.get("ts", 0.0))
    if kind == "meta":
        state.meta.update({k: v for k, v in rec.items() if k not in ("t", "ts")})
    elif kind == "msg":
        state.messages.append(Message.from_dict(rec["m"]))
        state.message_times.append(ts)
    elif kind == "history":
        new = [Message.from_dict(d) for d in rec["messages"]]
        state.message_times = _keep_times(state.messages, state.message_times, new, ts)
        state.messages = new
    elif kind == "event":
        if rec["e"]["type"] in _EVENT_TYPES:
            _apply_event(state, pending, Event.from_dict(rec["e"]))
        else:
            state.warnings.append(f"unknown event {rec['e']['type']!r} ignored (written by a newer ML Intern?)")
    else:
        state.warnings.append(f"unknown trace record {kind!r} ignored (written by a newer ML Intern?)")


def _keep_times(old: list[Message], times: list[float], new: list[Message], ts: float) -> list[float]:
    """Messages kept at the same place keep their time; the rest take the replacement's time."""
    return [times[i] if i < len(old) and old[i] == m else ts for i, m in enumerate(new)]


def _apply_event(state: TraceState, pending: dict[str, dict[str, Any]], e: Event) -> None:
    state.events.append(e)
    state.last_seq = max(state.last_seq, e.seq)
    if e.type is EventType.PLAN_UPDATED:
        state.plan = list(e.data.get("plan") or [])
    elif e.type is EventType.USAGE:
        state.usage += _usage(e.data.get("call") or {})
    elif e.type is EventType.COMPACTED and e.data.get("usage"):
        state.usage += _usage(e.data["usage"])
    elif e.type is EventType.APPROVAL_REQUIRED and e.data.get("call_id"):
        pending[str(e.data["call_id"])] = e.data
    elif e.type is EventType.TOOL_STATE_CHANGE and e.data.get("state") == ToolState.RUNNING:
        state.running[str(e.data.get("call_id"))] = []
    elif e.type is EventType.TOOL_LOG and str(e.data.get("call_id")) in state.running:
        lines = state.running[str(e.data.get("call_id"))]
        lines.extend(str(e.data.get("line") or "").splitlines())
        del lines[:-RUNNING_LOG_LINES]
    elif e.type is EventType.TOOL_OUTPUT:
        state.running.pop(str(e.data.get("call_id")), None)
    elif e.type is EventType.TOOL_STATE_CHANGE and e.data.get("state") in SETTLED_STATES:
        pending.pop(str(e.data.get("call_id")), None)
        if e.data.get("state") == ToolState.APPROVED:
            state.tools_usd += float(e.data.get("cost_usd") or 0.0)
            if e.data.get("always"):
                state.always.add(str(e.data.get("name")))


def _usage(d: dict[str, Any]) -> Usage:
    return Usage(**{k: d[k] for k in ("prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd") if k in d})


def _unanswered(messages: list[Message]) -> list[ToolCall]:
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "assistant"), None)
    if last is None:
        return []
    answered = {m.tool_call_id for m in messages[last + 1 :] if m.role == "tool"}
    return [c for c in messages[last].tool_calls if c.id not in answered]


# ---- listing --------------------------------------------------------------------------------


@dataclass
class SessionInfo:
    """One line of the session list."""

    id: str
    path: Path
    """The trace file."""
    created: str = ""
    model: str = ""
    workdir: str = ""
    preview: str = ""
    """The first user message, at most 80 characters."""
    messages: int = 0
    """Messages in the history, system prompt excluded."""
    status: str = ""


def list_sessions(home: Path | None = None) -> list[SessionInfo]:
    """Every session under `home` (default data_home()), newest first."""
    root = sessions_dir(home)
    if not root.is_dir():
        return []
    infos = [_summarize(d.name, d / TRACE_FILE) for d in root.iterdir() if (d / TRACE_FILE).is_file()]
    return sorted(infos, key=lambda i: (i.created, i.id), reverse=True)


def _summarize(session_id: str, path: Path) -> SessionInfo:
    """Read only what the list shows: meta and message records; events are not parsed."""
    info = SessionInfo(id=session_id, path=path)
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith('{"t":"event"'):
                continue
            try:
                _summarize_record(info, json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                logger.debug("skipping an unreadable line of %s", path)
    return info


def _summarize_record(info: SessionInfo, rec: Mapping[str, Any]) -> None:
    if rec["t"] == "meta":
        info.created = str(rec.get("created", info.created))
        info.model = str(rec.get("model", info.model))
        info.workdir = str(rec.get("workdir", info.workdir))
        info.status = str(rec.get("status", info.status))
    elif rec["t"] == "msg":
        m = rec["m"]
        if m["role"] != "system":
            info.messages += 1
        if not info.preview and m["role"] == "user":
            info.preview = _preview(str(m.get("content") or ""))
    elif rec["t"] == "history":
        info.messages = sum(1 for m in rec["messages"] if m["role"] != "system")


def _preview(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def find_session(id_or_prefix: str, home: Path | None = None) -> Path:
    """The trace file of the session with this id, unique id prefix, or path."""
    if not id_or_prefix.strip():
        raise SessionError(f"give a session id or the start of one; {LIST_HINT}")
    given = Path(id_or_prefix).expanduser()
    if given.is_file() or (given / TRACE_FILE).is_file():
        return given if given.is_file() else given / TRACE_FILE
    wanted = check_session_id(id_or_prefix.strip(), "--resume")
    sessions = list_sessions(home)
    exact = [s for s in sessions if s.id == wanted]
    matches = exact or [s for s in sessions if wanted and s.id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0].path
    if not matches:
        raise SessionError(f"no session matches {id_or_prefix!r} in {sessions_dir(home)}; {LIST_HINT}")
    shown = "\n".join(f"  {s.id}  {s.preview}" for s in matches[:10])
    more = f"\n  ... and {len(matches) - 10} more" if len(matches) > 10 else ""
    raise SessionError(f"{id_or_prefix!r} matches {len(matches)} sessions; give more of the id:\n{shown}{more}")
