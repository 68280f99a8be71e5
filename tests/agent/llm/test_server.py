"""The scripted OpenAI-compatible server, spoken to over real HTTP (httpx) and as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.llm.scripted import Turn, calls, say
from agent.llm.server import CONTEXT_OVERFLOW_MESSAGE, ScriptedServer
from agent.messages import ToolCall, Usage

CHAT = [{"role": "user", "content": "hello"}]


def post(srv: ScriptedServer, body: dict[str, Any], timeout: float = 5) -> httpx.Response:
    return httpx.post(
        f"{srv.base_url}/chat/completions",
        json=body,
        timeout=timeout,
        headers={"Authorization": "Bearer sk-test-abcdefgh1234"},
    )


def sse(srv: ScriptedServer, body: dict[str, Any]) -> list[Any]:
    """The decoded `data:` payloads of a streamed answer."""
    with httpx.stream("POST", f"{srv.base_url}/chat/completions", json={**body, "stream": True}, timeout=5) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        lines = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    return [p if p == "[DONE]" else json.loads(p) for p in (line.removeprefix("data: ") for line in lines)]


def test_non_streaming_answer_has_the_chat_completion_shape() -> None:
    turn = Turn("the answer", [ToolCall("call_a", "read", '{"path": "x"}')], Usage(120, 9, 64))
    with ScriptedServer([turn]) as srv:
        r = post(srv, {"model": "my-model", "messages": CHAT})
    body = r.json()
    assert r.status_code == 200
    assert body["object"] == "chat.completion" and body["model"] == "my-model"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "the answer"
    assert choice["message"]["tool_calls"] == [
        {"id": "call_a", "type": "function", "function": {"name": "read", "arguments": '{"path": "x"}'}}
    ]
    assert body["usage"]["prompt_tokens"] == 120 and body["usage"]["completion_tokens"] == 9
    assert body["usage"]["total_tokens"] == 129
    assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 64


def test_usage_is_estimated_from_the_request_when_the_turn_has_none() -> None:
    with ScriptedServer(["short", "short"]) as srv:
        small = post(srv, {"model": "m", "messages": CHAT}).json()["usage"]["prompt_tokens"]
        big = post(srv, {"model": "m", "messages": [{"role": "user", "content": "x" * 4000}]}).json()
    assert big["usage"]["prompt_tokens"] > small + 900
    assert big["choices"][0]["finish_reason"] == "stop"


def test_requests_are_recorded_with_headers_and_body() -> None:
    with ScriptedServer([say("hi")]) as srv:
        post(srv, {"model": "m", "messages": CHAT, "temperature": 0.2})
        httpx.get(f"{srv.base_url}/models")
    first, second = srv.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    assert first.body == {"model": "m", "messages": CHAT, "temperature": 0.2}
    assert first.headers["authorization"] == "Bearer sk-test-abcdefgh1234"
    assert first.to_dict()["headers"]["authorization"] == "***1234"
    assert (second.method, second.path, second.body) == ("GET", "/v1/models", None)


def test_models_endpoint_lists_the_model() -> None:
    with ScriptedServer([], model="local-model") as srv:
        data = httpx.get(f"{srv.base_url}/models").json()
    assert [m["id"] for m in data["data"]] == ["local-model"]


def test_streamed_text_arrives_in_pieces_then_finish_then_usage_then_done() -> None:
    text = "a streamed answer of some length"
    with ScriptedServer([Turn(text, usage=Usage(50, 8, 0))]) as srv:
        events = sse(srv, {"model": "m", "messages": CHAT, "stream_options": {"include_usage": True}})
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert "".join(p for p in pieces if p) == text
    assert len([p for p in pieces if p]) > 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 50


def test_no_usage_chunk_unless_asked() -> None:
    with ScriptedServer(["hi"]) as srv:
        events = sse(srv, {"model": "m", "messages": CHAT})
    assert all(e == "[DONE]" or e["choices"] for e in events)
    assert all("usage" not in e for e in events if e != "[DONE]")


def test_streamed_tool_calls_are_split_the_way_openai_splits_them() -> None:
    turn = calls(
        ("write", {"path": "notes/a.txt", "content": "several words"}),
        ("bash", {"command": "ls"}),
        ids=["call_w", "call_b"],
    )
    with ScriptedServer([turn]) as srv:
        events = sse(srv, {"model": "m", "messages": CHAT})
    fragments = [tc for e in events[:-1] for c in e["choices"] for tc in c["delta"].get("tool_calls", [])]
    heads = [f for f in fragments if "id" in f]
    assert [(h["index"], h["id"], h["type"], h["function"]["name"]) for h in heads] == [
        (0, "call_w", "function", "write"),
        (1, "call_b", "function", "bash"),
    ]
    rest = [f for f in fragments if "id" not in f]
    assert all(set(f) == {"index", "function"} and set(f["function"]) == {"arguments"} for f in rest)
    assert len([f for f in rest if f["index"] == 0]) > 3
    for i, call in enumerate(turn.tool_calls):
        assert "".join(f["function"]["arguments"] for f in fragments if f["index"] == i) == call.arguments
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_http_fault_sends_status_headers_and_openai_error_body() -> None:
    fault = {"fault": "http", "status": 429, "headers": {"Retry-After": "3"}, "message": "slow down"}
    with ScriptedServer([fault]) as srv:
        r = post(srv, {"model": "m", "messages": CHAT})
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert r.json() == {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": None}}


def test_http_fault_can_carry_its_own_body() -> None:
    body = {"error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": None}}
    with ScriptedServer([{"fault": "http", "status": 529, "body": body}]) as srv:
        r = post(srv, {"model": "m", "messages": CHAT})
    assert (r.status_code, r.json()) == (529, body)


def test_context_overflow_is_a_400_with_openais_code() -> None:
    with ScriptedServer([{"fault": "context_overflow"}]) as srv:
        r = post(srv, {"model": "m", "messages": CHAT})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"
    assert r.json()["error"]["message"] == CONTEXT_OVERFLOW_MESSAGE


def test_broken_stream_drops_the_connection_mid_answer() -> None:
    fault = {"fault": "break_stream", "turn": {"text": "this answer never finishes"}, "after_chunks": 2}
    with ScriptedServer([fault]) as srv:
        received = []
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream(
                "POST",
                f"{srv.base_url}/chat/completions",
                timeout=5,
                json={"model": "m", "messages": CHAT, "stream": True},
            ) as r,
        ):
            received.extend(line for line in r.iter_lines() if line)
    assert len(received) == 2


def test_broken_non_streaming_answer_is_cut_short() -> None:
    fault = {"fault": "break_stream", "turn": {"text": "cut"}}
    with ScriptedServer([fault]) as srv, pytest.raises(httpx.RemoteProtocolError):
        post(srv, {"model": "m", "messages": CHAT})


def test_hang_outlasts_the_client_timeout() -> None:
    with ScriptedServer([{"fault": "hang", "seconds": 30}, "after"]) as srv:
        with pytest.raises(httpx.ReadTimeout):
            post(srv, {"model": "m", "messages": CHAT}, timeout=0.3)
        assert post(srv, {"model": "m", "messages": CHAT}).json()["choices"][0]["message"]["content"] == "after"


def test_exhausted_script_answers_500_saying_so() -> None:
    with ScriptedServer([say("only one")]) as srv:
        post(srv, {"model": "m", "messages": CHAT})
        r = post(srv, {"model": "m", "messages": CHAT})
        assert srv.remaining == 0
    assert r.status_code == 500
    assert "script is exhausted" in r.json()["error"]["message"]


def test_callable_script_answers_from_the_request() -> None:
    def reply(body: dict[str, Any]) -> Turn | str:
        return f"you said {body['messages'][-1]['content']}"

    with ScriptedServer(reply) as srv:
        answers = [post(srv, {"model": "m", "messages": [{"role": "user", "content": w}]}).json() for w in "ab"]
    assert [a["choices"][0]["message"]["content"] for a in answers] == ["you said a", "you said b"]


def test_a_failing_script_function_answers_500_with_the_error() -> None:
    def reply(body: dict[str, Any]) -> str:
        raise KeyError("no answer for this history")

    with ScriptedServer(reply) as srv:
        r = post(srv, {"model": "m", "messages": CHAT})
    assert r.status_code == 500
    assert "no answer for this history" in r.json()["error"]["message"]


def test_concurrent_requests_each_get_one_item() -> None:
    with ScriptedServer([say(str(i)) for i in range(8)]) as srv:
        out: list[str] = []

        def ask() -> None:
            out.append(post(srv, {"model": "m", "messages": CHAT}).json()["choices"][0]["message"]["content"])

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(out) == [str(i) for i in range(8)]
    assert len(srv.requests) == 8


def test_unknown_route_is_a_404() -> None:
    with ScriptedServer([]) as srv:
        r = httpx.post(f"http://127.0.0.1:{srv.port}/v1/embeddings", json={})
    assert r.status_code == 404


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "server exited"
        assert time.monotonic() < deadline, "the server never wrote its port file"
        time.sleep(0.02)
    return path.read_text()


def test_module_entry_point_serves_a_script_file(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"text": "from a file"}, {"fault": "context_overflow"}]))
    port_file, record = tmp_path / "port", tmp_path / "requests.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent.llm.server",
            "--script",
            str(script),
            "--port-file",
            str(port_file),
            "--record",
            str(record),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(_wait_for(port_file, proc))
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        headers = {"Authorization": "Bearer sk-test-abcdefgh5678"}
        first = httpx.post(url, json={"model": "m", "messages": CHAT}, headers=headers, timeout=5)
        second = httpx.post(url, json={"model": "m", "messages": CHAT}, headers=headers, timeout=5)
    finally:
        proc.terminate()
        stdout, _ = proc.communicate(timeout=10)
    assert first.json()["choices"][0]["message"]["content"] == "from a file"
    assert second.status_code == 400
    assert proc.returncode == 0
    assert stdout.strip() == str(port)
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [line["body"]["messages"] for line in lines] == [CHAT, CHAT]
    assert lines[0]["headers"]["authorization"] == "***5678"
    assert "sk-test" not in record.read_text()


def test_entry_point_rejects_a_script_that_is_not_a_list(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"text": "not a list"}))
    proc = subprocess.run(
        [sys.executable, "-m", "agent.llm.server", "--script", str(script)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode != 0
    assert "must be a JSON list" in proc.stderr


def test_timings_say_when_each_completion_was_received_and_answered(tmp_path: Path) -> None:
    timings = tmp_path / "timings.jsonl"
    before = time.monotonic()
    with ScriptedServer([say("one"), say("two")], timings=timings) as srv:
        for _ in range(2):
            httpx.post(f"{srv.base_url}/chat/completions", json={"model": "m", "messages": []}, timeout=10)
    rows = [json.loads(line) for line in timings.read_text().splitlines()]
    assert len(rows) == 2
    assert before <= rows[0]["received"] <= rows[0]["answered"] <= rows[1]["received"] <= rows[1]["answered"]
