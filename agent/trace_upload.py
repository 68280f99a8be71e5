"""Opt-in upload of a session trace to a private Hub dataset, in the format the Hub's trace viewer reads.

The Hub detects Claude Code session files and shows them in its agent trace viewer, so a trace is
converted to that shape: one JSON object per line, `user` / `assistant` entries chained by
`uuid` / `parentUuid`, tool calls as `tool_use` blocks and their results as `tool_result` blocks.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import TraceUploadConfig
from agent.errors import AgentError, ConfigError
from agent.messages import Message, MessageKind
from agent.trace import TraceState, check_session_id, iso_time, json_line, read_trace

if TYPE_CHECKING:
    from agent.redact import Redactor

logger = logging.getLogger(__name__)

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "ml-intern/trace")
DEFAULT_REPO_NAME = "ml-intern-traces"


def to_viewer_jsonl(state: TraceState, session_id: str, redactor: Redactor | None = None) -> list[dict[str, Any]]:
    """The session as Claude-Code-style entries; system messages are left out, secrets redacted.

    Deterministic: ids are uuid5 of the session id and the message's place in the history.
    `redactor` defaults to one built from the environment.
    """
    if redactor is None:
        from agent.redact import Redactor

        redactor = Redactor.from_env(os.environ)
    envelope = {
        "sessionId": session_id,
        "cwd": str(state.meta.get("workdir") or ""),
        "version": str(state.meta.get("version") or ""),
        "isSidechain": False,
        "userType": "external",
    }
    model = str(state.meta.get("model") or "")
    entries: list[dict[str, Any]] = []
    parent: str | None = None
    for index, (m, ts) in enumerate(zip(state.messages, _times(state), strict=True)):
        body = _entry(m, model, index, session_id)
        if body is None:
            continue
        entry_id = str(uuid.uuid5(_NAMESPACE, f"{session_id}:{index}"))
        entries.append({**body, "uuid": entry_id, "parentUuid": parent, "timestamp": iso_time(ts), **envelope})
        parent = entry_id
    return [redactor.redact_obj(e) for e in entries]


def _times(state: TraceState) -> list[float]:
    if len(state.message_times) == len(state.messages):
        return state.message_times
    return [0.0] * len(state.messages)


def _entry(m: Message, model: str, index: int, session_id: str) -> dict[str, Any] | None:
    if m.role == "system":
        return None
    if m.role == "tool":
        result = {
            "type": "tool_result",
            "tool_use_id": m.tool_call_id or "",
            "content": m.content,
            "is_error": bool(m.meta.get("error")),
        }
        return {"type": "user", "message": {"role": "user", "content": [result]}}
    if m.role == "user":
        entry: dict[str, Any] = {"type": "user", "message": {"role": "user", "content": m.content}}
        if m.meta.get("kind") == MessageKind.SUMMARY:
            entry["isCompactSummary"] = True
        return entry
    blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": _arguments(c.arguments)} for c in m.tool_calls]
    message = {
        "id": f"msg_{uuid.uuid5(_NAMESPACE, f'{session_id}:{index}:message').hex}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": "tool_use" if m.tool_calls else "end_turn",
    }
    return {"type": "assistant", "message": message}


def _arguments(raw: str) -> dict[str, Any]:
    """Tool input as an object, which is what the viewer expects; unparsable text is kept as is."""
    try:
        value = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return {"arguments": raw}
    return value if isinstance(value, dict) else {"arguments": value}


def upload_trace(
    trace_path: Path,
    cfg: TraceUploadConfig,
    *,
    token: str | None = None,
    api: Any = None,
    endpoint: str | None = None,
    redactor: Redactor | None = None,
) -> str:
    """Upload one session to `cfg.repo` (default `<hf user>/ml-intern-traces`) and return the file's URL.

    The dataset is created (private unless `cfg.private` is false) when missing; the session is
    written to `sessions/<session id>.jsonl` in one commit, replacing an earlier upload of it.
    `token` is the session's HF token; `redactor` the session's (by default one for the process environment).
    """
    if not token:
        raise ConfigError(
            "trace upload needs a Hugging Face token with write access: set HF_TOKEN, "
            "or turn uploads off with traces.enabled=false"
        )
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=endpoint, token=token)
    from huggingface_hub.errors import HfHubHTTPError

    state = read_trace(trace_path)
    session_id = check_session_id(str(state.meta.get("id") or trace_path.parent.name), trace_path)
    lines = to_viewer_jsonl(state, session_id, redactor)
    data = "".join(json_line(line) for line in lines).encode()  # a lone surrogate comes out escaped
    path_in_repo = f"sessions/{session_id}.jsonl"
    try:
        repo = cfg.repo or f"{api.whoami(token=token)['name']}/{DEFAULT_REPO_NAME}"
        api.create_repo(repo, repo_type="dataset", private=cfg.private, exist_ok=True, token=token)
        api.upload_file(
            path_or_fileobj=data,
            path_in_repo=path_in_repo,
            repo_id=repo,
            repo_type="dataset",
            token=token,
            commit_message=f"Add ML Intern session {session_id}",
        )
    except HfHubHTTPError as e:
        raise _upload_error(e, cfg.repo) from None
    url = f"{api.endpoint}/datasets/{repo}/blob/main/{path_in_repo}"
    logger.info("uploaded trace of session %s to %s", session_id, url)
    return url


def _upload_error(e: Any, repo: str | None) -> AgentError:
    status = e.response.status_code if e.response is not None else None
    where = repo or f"<your user>/{DEFAULT_REPO_NAME}"
    if status in (401, 403):
        return ConfigError(
            f"the Hub refused the trace upload to {where} (HTTP {status}): HF_TOKEN needs write "
            "access to it; fix the token, set traces.repo, or set traces.enabled=false"
        )
    return AgentError(f"trace upload to {where} failed: {e}")
