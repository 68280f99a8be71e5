import base64
import itertools
import json
import random
import string
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from agent.config import TraceUploadConfig
from agent.errors import ConfigError
from agent.events import Event, EventType
from agent.messages import Message, ToolCall
from agent.redact import REDACTED
from agent.trace import TraceWriter, read_trace
from agent.trace_upload import to_viewer_jsonl, upload_trace

HUB = "https://hub.test"
SESSION = "20261121-113005-a1b2c3"
DATASET = "alice/ml-intern-traces"


@pytest.fixture
def hf_token(monkeypatch: pytest.MonkeyPatch) -> str:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
    token = "hf_" + "".join(random.choices(string.ascii_letters, k=34))
    monkeypatch.setenv("HF_TOKEN", token)
    return token


def _write_session(path: Path, secret: str) -> None:
    call = ToolCall("call_1", "bash", json.dumps({"command": f"curl -H 'Authorization: Bearer {secret}' x"}))
    bad = ToolCall("call_2", "edit", "{not json")
    with TraceWriter(path) as w:
        w.meta(id=SESSION, model="hf/kimi", workdir="/projects/w", version="0.1.0", created="2026-11-21T11:30:05+00:00")
        w.message(Message.system("You are ML Intern."))
        w.message(Message.user(f"fine-tune distilbert; my token is {secret}"))
        w.message(Message("assistant", "Checking access.", tool_calls=[call, bad]))
        w.message(Message.tool(call, "HTTP 200", error=False))
        w.message(Message.tool(bad, "arguments are not JSON", error=True))
        w.event(Event(EventType.TOOL_OUTPUT, {"call_id": "call_1", "output": "HTTP 200"}, seq=1))
        w.message(Message.user("Summary of earlier work", kind="summary"))
        w.message(Message("assistant", "Done."))


def test_viewer_entries_follow_the_claude_code_shape(tmp_path: Path, hf_token: str) -> None:
    path = tmp_path / SESSION / "trace.jsonl"
    _write_session(path, hf_token)
    state = read_trace(path)
    entries = to_viewer_jsonl(state, SESSION)

    assert [(e["type"], e["message"]["role"]) for e in entries] == [
        ("user", "user"), ("assistant", "assistant"), ("user", "user"), ("user", "user"), ("user", "user"),
        ("assistant", "assistant"),
    ]  # fmt: skip
    assert entries[0]["parentUuid"] is None
    for prev, entry in itertools.pairwise(entries):
        assert entry["parentUuid"] == prev["uuid"]
    for entry in entries:
        assert uuid.UUID(entry["uuid"]).version == 5
        assert entry["sessionId"] == SESSION and entry["cwd"] == "/projects/w" and entry["version"] == "0.1.0"
        assert entry["timestamp"].startswith("20") and entry["timestamp"][10] == "T" and entry["timestamp"][-1] == "Z"
        assert entry["isSidechain"] is False

    assistant = entries[1]["message"]
    assert assistant["model"] == "hf/kimi" and assistant["stop_reason"] == "tool_use"
    text, use_ok, use_bad = assistant["content"]
    assert text == {"type": "text", "text": "Checking access."}
    assert use_ok["type"] == "tool_use" and use_ok["id"] == "call_1" and use_ok["name"] == "bash"
    assert use_ok["input"]["command"].startswith("curl -H 'Authorization: Bearer ")
    assert use_bad["input"] == {"arguments": "{not json"}
    assert entries[2]["message"]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "HTTP 200", "is_error": False}
    ]
    assert entries[3]["message"]["content"][0]["is_error"] is True
    assert entries[4]["isCompactSummary"] is True
    assert entries[5]["message"]["content"] == [{"type": "text", "text": "Done."}]
    assert entries[5]["message"]["stop_reason"] == "end_turn"

    dumped = json.dumps(entries)
    assert hf_token not in dumped and "You are ML Intern." not in dumped
    assert "fine-tune distilbert; my token is" in dumped
    assert to_viewer_jsonl(read_trace(path), SESSION) == entries


def _hub_routes(hub: respx.MockRouter, *, create_status: int = 200) -> dict[str, respx.Route]:
    create_body: dict[str, Any] = (
        {"url": f"{HUB}/datasets/{DATASET}", "name": DATASET, "id": "67cae57522fde9195aaf95c5"}
        if create_status == 200
        else {"error": "You already created this dataset repo", "url": f"{HUB}/datasets/{DATASET}"}
    )
    return {
        "whoami": hub.get("/api/whoami-v2").respond(200, json={
            "type": "user", "id": "5f3a1b", "name": "alice", "fullname": "Alice", "isPro": False, "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "laptop", "role": "write"}},
        }),
        "create": hub.post("/api/repos/create").respond(create_status, json=create_body),
        "preupload": hub.post(f"/api/datasets/{DATASET}/preupload/main").respond(200, json={
            "files": [{"path": f"sessions/{SESSION}.jsonl", "uploadMode": "regular", "shouldIgnore": False}],
            "commitOid": "d052d85daa4e615c3554cecaa7dbdc2e4d179929",
        }),
        "commit": hub.post(f"/api/datasets/{DATASET}/commit/main").respond(200, json={
            "success": True, "commitOid": "c52ce5e45984b9378ef6247fe7a45ed72b096b24", "hookOutput": "",
            "commitUrl": f"{HUB}/datasets/{DATASET}/commit/c52ce5e45984b9378ef6247fe7a45ed72b096b24",
        }),
    }  # fmt: skip


def _committed_file(request: httpx.Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    header, *ops = [json.loads(line) for line in request.content.decode().splitlines()]
    assert header["key"] == "header"
    (op,) = ops
    assert op["key"] == "file" and op["value"]["encoding"] == "base64"
    text = base64.b64decode(op["value"]["content"]).decode()
    return op["value"], [json.loads(line) for line in text.splitlines()]


def test_upload_creates_a_private_dataset_and_commits_the_redacted_session(tmp_path: Path, hf_token: str) -> None:
    path = tmp_path / SESSION / "trace.jsonl"
    _write_session(path, hf_token)
    with respx.mock(base_url=HUB, assert_all_called=True, assert_all_mocked=True) as hub:
        routes = _hub_routes(hub)
        url = upload_trace(path, TraceUploadConfig(enabled=True), token=hf_token, endpoint=HUB)

    assert url == f"{HUB}/datasets/{DATASET}/blob/main/sessions/{SESSION}.jsonl"
    create = routes["create"].calls.last.request
    assert json.loads(create.content) == {
        "name": "ml-intern-traces", "organization": "alice", "visibility": "private", "type": "dataset",
    }  # fmt: skip
    for route in routes.values():
        assert route.calls.last.request.headers["authorization"] == f"Bearer {hf_token}"
    value, lines = _committed_file(routes["commit"].calls.last.request)
    assert value["path"] == f"sessions/{SESSION}.jsonl"
    assert lines == json.loads(json.dumps(to_viewer_jsonl(read_trace(path), SESSION)))
    assert hf_token not in json.dumps(lines)
    assert lines[0]["message"]["content"] == f"fine-tune distilbert; my token is {REDACTED}"


def test_a_lone_surrogate_in_the_session_is_uploaded_escaped(tmp_path: Path, hf_token: str) -> None:
    path = tmp_path / SESSION / "trace.jsonl"
    _write_session(path, hf_token)
    with TraceWriter(path) as w:
        w.message(Message("assistant", "bad \udcff text"))
    with respx.mock(base_url=HUB, assert_all_called=False, assert_all_mocked=True) as hub:
        routes = _hub_routes(hub)
        upload_trace(path, TraceUploadConfig(enabled=True, repo=DATASET), token=hf_token, endpoint=HUB)
    _, lines = _committed_file(routes["commit"].calls.last.request)  # valid UTF-8, one JSON object a line
    assert lines[-1]["message"]["content"][0]["text"] == "bad \udcff text"


def test_upload_to_a_configured_repo_skips_whoami_and_tolerates_existing(tmp_path: Path, hf_token: str) -> None:
    path = tmp_path / SESSION / "trace.jsonl"
    _write_session(path, hf_token)
    cfg = TraceUploadConfig(enabled=True, repo=DATASET, private=False)
    with respx.mock(base_url=HUB, assert_all_called=False, assert_all_mocked=True) as hub:
        routes = _hub_routes(hub, create_status=409)
        url = upload_trace(path, cfg, token=hf_token, endpoint=HUB)
    assert url.endswith(f"/datasets/{DATASET}/blob/main/sessions/{SESSION}.jsonl")
    assert not routes["whoami"].called
    assert json.loads(routes["create"].calls.last.request.content)["visibility"] == "public"
    assert routes["commit"].call_count == 1


def test_missing_token_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    path = tmp_path / SESSION / "trace.jsonl"
    with TraceWriter(path) as w:
        w.message(Message.user("hi"))
    with pytest.raises(ConfigError, match=r"set HF_TOKEN.*traces.enabled=false"):
        upload_trace(path, TraceUploadConfig(enabled=True), endpoint=HUB)


def test_rejected_token_is_a_config_error(tmp_path: Path, hf_token: str) -> None:
    path = tmp_path / SESSION / "trace.jsonl"
    _write_session(path, hf_token)
    with respx.mock(base_url=HUB, assert_all_mocked=True) as hub:
        hub.get("/api/whoami-v2").respond(401, json={"error": "Invalid credentials in Authorization header"})
        with pytest.raises(ConfigError, match=r"HTTP 401.*write access"):
            upload_trace(path, TraceUploadConfig(enabled=True), token=hf_token, endpoint=HUB)
