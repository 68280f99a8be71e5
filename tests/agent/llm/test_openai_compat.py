"""The direct client's own parts: the SSE decoder, large streamed arguments, odd answers, redirects, size limits."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path

import pytest

from agent.config import AgentConfig
from agent.errors import ContextOverflowError, LLMError
from agent.llm import openai_compat
from agent.llm.openai_compat import OpenAICompatModel
from agent.llm.routing import resolve_route
from agent.llm.scripted import Turn, say
from agent.llm.server import ScriptedServer
from agent.llm.stream import Assembly, SSEDecoder
from agent.messages import Message, ToolCall
from tests.agent.llm.conftest import Build, Recorder, config

HISTORY = [Message.user("go")]


def test_sse_events_come_out_whole_however_the_bytes_are_cut() -> None:
    body = (
        b": keep-alive\r\n\r\n"
        b'event: message\ndata: {"a": 1}\n\n'
        b"data: first line\ndata: second line\r\n\r\n"
        b"id: 7\ndata:no-space\n\n"
        b"data: [DONE]"
    )
    expected = ['{"a": 1}', "first line\nsecond line", "no-space", "[DONE]"]
    for size in (1, 2, 3, 7, len(body)):
        decoder, events = SSEDecoder(), []
        for i in range(0, len(body), size):
            events += decoder.feed(body[i : i + size])
        events += decoder.close()
        assert events == expected, size


def test_a_megabyte_line_fed_in_tiny_pieces_is_one_event() -> None:
    decoder, payload = SSEDecoder(), b"x" * 1_000_000
    events = [e for i in range(0, len(payload), 7) for e in decoder.feed(b"data: " * (i == 0) + payload[i : i + 7])]
    assert events == [] and decoder.feed(b"\n\n") == [payload.decode()]


@pytest.mark.parametrize("size", [200_000, 1_000_000])
async def test_a_large_tool_argument_streamed_in_small_chunks_arrives_whole(size: int) -> None:
    arguments = json.dumps({"path": "big.txt", "content": secrets.token_hex(size // 2)})
    turn = Turn(tool_calls=[ToolCall("call_big", "write", arguments)])
    with ScriptedServer([turn], chunk_chars=64) as srv:
        model = _model(srv)
        try:
            reply = await model.complete(HISTORY, [], stream=True)
        finally:
            await model.aclose()
    (got,) = reply.message.tool_calls
    assert (got.id, got.name, got.arguments) == ("call_big", "write", arguments)


async def test_a_large_tool_argument_arrives_whole_through_either_client(build: Build) -> None:
    """Larger deltas than above: litellm spends ~1 ms a chunk (timings are bench/model_path.py's)."""
    arguments = json.dumps({"content": secrets.token_hex(100_000)})
    with ScriptedServer([Turn(tool_calls=[ToolCall("call_big", "write", arguments)])], chunk_chars=1024) as srv:
        reply = await build(srv, Recorder()).complete(HISTORY, [], stream=True)
    assert reply.message.tool_calls[0].arguments == arguments


async def test_an_error_object_in_a_200_answer_is_classified(build: Build) -> None:
    overflow = {"error": {"message": "This model's maximum context length is 8192 tokens", "code": 400}}
    with (
        ScriptedServer([{"fault": "http", "status": 200, "body": overflow}]) as srv,
        pytest.raises(ContextOverflowError),
    ):
        await build(srv, Recorder()).complete(HISTORY, [], stream=False)


async def test_a_server_that_ignores_stream_true_still_answers() -> None:
    with ScriptedServer([say("whole")]) as srv:
        model = _model(srv)
        request = model._request(HISTORY, [], stream=False)
        request["stream"] = True  # asks for a stream; the server answers JSON
        try:
            async with asyncio.timeout(30) as deadline:
                reply = await model._stream(request, None, Assembly(), deadline)
        finally:
            await model.aclose()
    assert reply.message.content == "whole"


async def test_redirects_are_not_followed_and_say_where_to_point() -> None:
    with ScriptedServer([say("never")]) as elsewhere:
        redirect = {"fault": "http", "status": 307, "headers": {"Location": elsewhere.base_url + "/chat/completions"}}
        with ScriptedServer([redirect]) as srv:
            model = _model(srv)
            with pytest.raises(LLMError) as info:
                await model.complete(HISTORY, [])
            await model.aclose()
    assert info.value.kind == "bad_request" and "redirect" in str(info.value) and "base_url" in info.value.hint
    assert elsewhere.requests == []


async def test_an_html_error_page_is_an_overload_with_a_bounded_message() -> None:
    page = "<html>" + "bad gateway " * 1000 + "</html>"
    with ScriptedServer([{"fault": "http", "status": 502, "body": page}] * 3) as srv:
        model = _model(srv)
        with pytest.raises(LLMError) as info:
            await model.complete(HISTORY, [])
        await model.aclose()
    assert info.value.kind == "overloaded" and "gave up after" in str(info.value)
    assert len(str(info.value)) < 1000


async def test_an_answer_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_compat, "MAX_RESPONSE_BYTES", 4096)
    for stream in (False, True):
        with ScriptedServer([say("x" * 10_000)]) as srv:
            model = _model(srv)
            with pytest.raises(LLMError, match="larger than"):
                await model.complete(HISTORY, [], stream=stream)
            await model.aclose()


async def test_an_answer_that_is_not_a_completion_says_so() -> None:
    with ScriptedServer([{"fault": "http", "status": 200, "body": {"object": "list", "data": []}}]) as srv:
        model = _model(srv)
        with pytest.raises(LLMError, match="no choices") as info:
            await model.complete(HISTORY, [])
        await model.aclose()
    assert "base_url" in info.value.hint


def _model(srv: ScriptedServer) -> OpenAICompatModel:

    cfg = config(srv, "my-model", max_retries=2)
    rec = Recorder()
    return OpenAICompatModel(resolve_route(cfg), cfg.llm, sleep=rec.sleep)


def test_the_request_reuses_the_encoding_of_messages_that_did_not_change() -> None:
    cfg = AgentConfig(model="my-model", base_url="http://127.0.0.1:9/v1")
    model = OpenAICompatModel(resolve_route(cfg), cfg.llm)
    call_ = ToolCall("c1", "read", '{"path": "a"}')
    history = [Message.system("sys"), Message.user("task"), Message("assistant", "", tool_calls=[call_])]
    history.append(Message.tool(call_, "contents"))

    def sent(messages: list[Message]) -> list[dict[str, object]]:
        return json.loads(model._request(messages, [], stream=False)["content"])["messages"]

    assert sent(history) == [m.to_llm() for m in history]
    history[1].content = "task, edited in place"  # e.g. redaction or compaction rewriting a message
    history[2].tool_calls[0].arguments = '{"path": "b"}'
    history.append(Message.user("ünïcode \udcff"))
    assert sent(history) == [m.to_llm() for m in history]
    assert sent(history[2:]) == [m.to_llm() for m in history[2:]]


async def test_the_session_closes_the_connection_pools_of_its_models(tmp_path: Path) -> None:
    from agent.session import open_session

    with ScriptedServer([say("one"), say("two")]) as srv:
        cfg = AgentConfig(model="first", base_url=srv.base_url)
        session = await open_session(cfg, workdir=tmp_path, headless=True, home=tmp_path / "home")
        first = session.model
        assert isinstance(first, OpenAICompatModel)
        await first.complete(HISTORY, [])
        session.set_model("second")
        await session.model.complete(HISTORY, [])
        second = session.model
        assert isinstance(second, OpenAICompatModel) and second is not first
        assert first._client is not None and second._client is not None
        await session.close()
    assert first._client is None and second._client is None
    assert [r.body["model"] for r in srv.requests] == ["first", "second"]


@pytest.mark.parametrize(
    "body",
    [
        {"choices": ["not an object"]},
        {"choices": [{"message": {"tool_calls": ["not an object"]}}]},
        {"choices": [{"message": "not an object"}]},
    ],
)
async def test_an_answer_of_the_wrong_shape_is_an_error_that_says_so(body: dict[str, object]) -> None:
    with ScriptedServer([{"fault": "http", "status": 200, "body": body}]) as srv:
        model = _model(srv)
        with pytest.raises(LLMError, match="not a chat completion") as info:
            await model.complete(HISTORY, [])
        await model.aclose()
    assert "base_url" in info.value.hint


def test_a_chunk_of_the_wrong_shape_is_a_broken_stream() -> None:
    from agent.llm.stream import StreamError

    got = Assembly()
    got.add({"choices": [{"delta": {"content": "ok"}}], "usage": {"prompt_tokens": "many"}})
    with pytest.raises(TypeError):
        got.add({"choices": ["not an object"]})
    cfg = AgentConfig(model="my-model", base_url="http://127.0.0.1:9/v1")
    model = OpenAICompatModel(resolve_route(cfg), cfg.llm)
    with pytest.raises(StreamError, match="unexpected shape"):
        asyncio.run(model._take(Assembly(), {"choices": [{"delta": {"tool_calls": [7]}}]}, None))


def test_content_parts_and_odd_usage_are_read_as_far_as_they_make_sense() -> None:
    cfg = AgentConfig(model="my-model", base_url="http://127.0.0.1:9/v1")
    model = OpenAICompatModel(resolve_route(cfg), cfg.llm)
    parts = [{"type": "text", "text": "two "}, {"type": "text", "text": "parts"}, "junk"]
    answer = {"choices": [{"message": {"content": parts}}], "usage": {"prompt_tokens": "x", "completion_tokens": 3}}
    reply = model._parsed(json.dumps(answer).encode())
    assert reply.message.content == "two parts"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (0, 3)
