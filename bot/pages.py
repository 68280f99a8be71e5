"""Run pages: each run's trace as HTML at `/runs/{id}?token=…`; the token is unguessable and stored only hashed."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from agent import format as fmt
from agent.errors import SessionError
from agent.events import Event, EventType
from agent.printable import printable
from agent.redact import Redactor
from agent.trace import TRACE_FILE, check_session_id, iso_time, session_dir

if TYPE_CHECKING:
    import jinja2

    from bot.models import Run
    from bot.services import Services

MAX_EVENTS = 5_000
"""Events shown at most (the newest); a trace longer than that says how many were left out."""
OUTPUT_CHARS = 30_000
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}
"""No script, image or frame runs on the page; the token never leaves it in a Referer; nothing is cached."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def page_link(s: Services, run_id: int) -> str:
    """A new page token for the run (replacing any earlier one) and the page's URL; "" without a public URL."""
    if not s.public_url:
        return ""
    token = secrets.token_urlsafe(24)
    await s.store.set_page_token(run_id, _hash(token))
    return f"{s.public_url.rstrip('/')}/runs/{run_id}?token={token}"


async def token_ok(s: Services, run_id: int, token: str | None) -> bool:
    """Whether `token` opens the run's page (compared in constant time)."""
    stored = await s.store.page_token_hash(run_id)
    return bool(stored and token) and hmac.compare_digest(stored or "", _hash(token or ""))


@dataclass
class Step:
    """One entry of the page: an assistant message, a tool call with its output, or a note (errors, ends)."""

    kind: str
    text: str = ""
    name: str = ""
    summary: str = ""
    arguments: str = ""
    output: str = ""
    state: str = ""
    duration: str = ""
    decision: str = ""


def read_events(path: Path) -> list[Event]:
    """The events of a trace file (other records and unreadable lines skipped)."""
    events: list[Event] = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
                if record.get("t") == "event":
                    events.append(Event.from_dict(record["e"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    return events


def steps_of(events: list[Event]) -> list[Step]:
    """The page's entries, in order, from a session's events."""
    steps: list[Step] = []
    tools: dict[str, Step] = {}
    for e in events:
        d = e.data
        if e.type is EventType.ASSISTANT_MESSAGE and str(d.get("text") or "").strip():
            steps.append(Step("message", text=str(d["text"])))
        elif e.type is EventType.TOOL_CALL:
            args = json.dumps(d.get("arguments"), indent=2, ensure_ascii=False)
            step = Step("tool", name=str(d.get("name")), summary=str(d.get("summary") or ""), arguments=args)
            step.state = "called"
            tools[str(d.get("call_id"))] = step
            steps.append(step)
        elif e.type is EventType.TOOL_STATE_CHANGE and (known := tools.get(str(d.get("call_id")))) is not None:
            known.state = str(d.get("state"))
            if d.get("by") and d.get("by") != "policy":
                known.decision = f"{d['state']} by {d['by']}"
        elif e.type is EventType.TOOL_OUTPUT and (known := tools.get(str(d.get("call_id")))) is not None:
            output = str(d.get("output") or "")
            known.output = output if len(output) <= OUTPUT_CHARS else output[:OUTPUT_CHARS] + "\n… (cut)"
            known.state = "failed" if d.get("is_error") else "done"
            known.duration = fmt.seconds(float(d.get("duration_s") or 0.0))
        elif e.type in (EventType.ERROR, EventType.LIMIT_REACHED, EventType.DOOM_LOOP, EventType.TURN_COMPLETE):
            steps.append(Step("note", text=_note(e)))
    return steps


def _note(e: Event) -> str:
    d = e.data
    if e.type is EventType.ERROR:
        return f"error: {d.get('message')}"
    if e.type is EventType.LIMIT_REACHED:
        return f"limit reached: {d.get('limit')}"
    if e.type is EventType.DOOM_LOOP:
        return f"repetition: {d.get('description')}"
    return f"turn ended: {d.get('stop_reason')} after {d.get('iterations')} model calls"


def render_page(run: Run, events: list[Event]) -> str:
    """The page's HTML: every text escaped by the template, secrets redacted, controls made visible."""
    clean = Redactor().redact
    dropped = max(0, len(events) - MAX_EVENTS)
    shown = events[dropped:]
    usage = next((e.data.get("total") for e in reversed(events) if e.type is EventType.USAGE), None)
    model = next((str(e.data.get("model")) for e in events if e.type is EventType.READY), "")
    steps = steps_of(shown)
    for step in steps:
        for name in ("text", "summary", "arguments", "output", "decision", "name"):
            setattr(step, name, printable(clean(getattr(step, name))))
    return _template().render(
        run=run,
        request=printable(clean(run.request)),
        started=iso_time(run.started_at) if run.started_at else "",
        finished=iso_time(run.finished_at) if run.finished_at else "",
        model=printable(model),
        usage=fmt.usage_line(usage) if isinstance(usage, dict) else "no model calls yet",
        steps=steps,
        dropped=dropped,
    )


def trace_path(home: Path, run: Run) -> Path | None:
    """Where the run's session trace is, if it has one."""
    if not run.session_id:
        return None
    try:
        sid = check_session_id(run.session_id, "the run's session")
    except SessionError:
        return None
    path = session_dir(sid, home) / TRACE_FILE
    return path if path.is_file() else None


def page(home: Path | None, run: Run) -> str:
    """The run page (blocking: reads the trace)."""
    path = trace_path(home, run) if home is not None else None
    return render_page(run, read_events(path) if path is not None else [])


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("run.html.j2")


__all__ = ["HEADERS", "page", "page_link", "read_events", "render_page", "steps_of", "token_ok"]
