"""Every model client (the direct OpenAI-compatible one and litellm) over real HTTP against the scripted server.

The `build` fixture (conftest) runs each test once per client: same requests, replies, retries and errors.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from agent.errors import AuthError, ContextOverflowError, LLMError
from agent.llm.base import RetryingModel
from agent.llm.litellm_model import LiteLLMModel
from agent.llm.routing import HF_ROUTER, NO_KEY, resolve_route
from agent.llm.scripted import Turn, call, calls, say
from agent.llm.server import ScriptedServer
from agent.messages import Message, ToolCall, Usage
from tests.agent.llm.conftest import Build, Recorder, config

HISTORY = [Message.system("You are terse."), Message.user("list the files")]
TOOLS = [
    {"type": "function", "function": {"name": n, "description": n, "parameters": {"type": "object"}}}
    for n in ("read", "bash")
]


async def ask(model: RetryingModel, rec: Recorder, stream: bool, tools: list[dict[str, Any]] | None = None) -> Any:
    return await model.complete(
        HISTORY, TOOLS if tools is None else tools, stream=stream, on_text=rec.on_text, on_retry=rec.on_retry
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_plain_text_answer_and_the_request_sent(build: Build, stream: bool) -> None:
    rec = Recorder()
    with ScriptedServer([say("Two files.")]) as srv:
        reply = await ask(build(srv, rec), rec, stream)
    assert reply.message.role == "assistant" and reply.message.content == "Two files."
    assert reply.message.tool_calls == [] and reply.finish_reason == "stop"
    assert reply.model == "gpt-4o-mini"
    (request,) = srv.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {NO_KEY}"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["messages"] == [m.to_llm() for m in HISTORY]
    assert [t["function"]["name"] for t in request.body["tools"]] == ["read", "bash"]
    assert request.body.get("stream", False) is stream
    if stream:
        assert request.body["stream_options"] == {"include_usage": True}


async def test_streamed_text_goes_to_on_text_piece_by_piece(build: Build) -> None:
    rec = Recorder()
    text = "Here are the files you asked for, one per line."
    with ScriptedServer([say(text)], chunk_chars=5) as srv:
        reply = await ask(build(srv, rec), rec, stream=True)
    assert "".join(rec.text) == text == reply.message.content
    assert len(rec.text) >= len(text) // 5


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_are_assembled_from_split_fragments(build: Build, stream: bool) -> None:
    rec = Recorder()
    turn = calls(
        ("write", {"path": "src/model.py", "content": "import torch\n" * 5}),
        ("bash", {"command": "python -m pytest -q"}),
        ("read", {"path": "README.md"}),
        text="Writing it now.",
        ids=["call_1", "call_2", "call_3"],
    )
    with ScriptedServer([turn], chunk_chars=4) as srv:
        reply = await ask(build(srv, rec), rec, stream)
    assert reply.message.tool_calls == turn.tool_calls
    assert json.loads(reply.message.tool_calls[0].arguments)["path"] == "src/model.py"
    assert reply.message.content == "Writing it now."
    assert reply.finish_reason == "tool_calls"


async def test_a_call_without_id_or_arguments_still_gets_both(build: Build) -> None:
    rec = Recorder()
    with ScriptedServer([Turn(tool_calls=[ToolCall("", "plan", "")])]) as srv:
        reply = await ask(build(srv, rec), rec, stream=True)
    (tc,) = reply.message.tool_calls
    assert tc.name == "plan" and tc.id.startswith("call_") and tc.arguments == "{}"


@pytest.mark.parametrize("stream", [False, True])
async def test_usage_comes_from_the_servers_usage_and_is_priced(build: Build, stream: bool) -> None:
    import litellm

    rec = Recorder()
    turn = Turn("ok", usage=Usage(1200, 80, 1024))
    with ScriptedServer([turn]) as srv:
        reply = await ask(build(srv, rec), rec, stream)
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.cached_tokens) == (1200, 80, 1024)
    price = litellm.model_cost["gpt-4o-mini"]
    uncached = (1200 - 1024) * price["input_cost_per_token"] + 1024 * price["cache_read_input_token_cost"]
    assert reply.usage.cost_usd == pytest.approx(uncached + 80 * price["output_cost_per_token"])


async def test_a_model_without_a_known_price_costs_nothing(build: Build) -> None:
    rec = Recorder()
    with ScriptedServer([Turn("ok", usage=Usage(500, 20, 0))]) as srv:
        reply = await ask(build(srv, rec, model="my-local-finetune"), rec, stream=True)
    assert reply.usage.cost_usd == 0.0 and reply.usage.prompt_tokens == 500
    assert srv.requests[0].body["model"] == "my-local-finetune"


@pytest.mark.parametrize("stream", [False, True])
async def test_configured_prices_cost_a_model_litellm_does_not_price(build: Build, stream: bool) -> None:
    rec = Recorder()
    prices = {"input": 0.6, "output": 2.5}
    with ScriptedServer([Turn("ok", usage=Usage(2_000_000, 400_000, 0))]) as srv:
        reply = await ask(build(srv, rec, model="my-local-finetune", usd_per_million=prices), rec, stream=stream)
    assert reply.usage.cost_usd == pytest.approx(2 * 0.6 + 0.4 * 2.5)


async def test_rate_limit_is_retried_after_the_servers_retry_after(build: Build) -> None:
    rec = Recorder()
    script = [{"fault": "http", "status": 429, "headers": {"Retry-After": "2"}}, say("done")]
    with ScriptedServer(script) as srv:
        reply = await ask(build(srv, rec), rec, stream=True)
    assert reply.message.content == "done"
    assert rec.sleeps == [2.0]
    (retry,) = rec.retries
    assert retry["kind"] == "rate_limit" and retry["attempt"] == 1 and retry["delay"] == 2.0
    assert retry["streamed"] is False and "Rate limit" in retry["message"]
    assert len(srv.requests) == 2


async def test_retry_after_is_capped(build: Build) -> None:
    rec = Recorder()
    script = [{"fault": "http", "status": 429, "headers": {"Retry-After": "86400"}}, say("done")]
    with ScriptedServer(script) as srv:
        await ask(build(srv, rec), rec, stream=False)
    assert rec.sleeps == [300.0]


async def test_server_error_then_success(build: Build) -> None:
    rec = Recorder()
    with ScriptedServer([{"fault": "http", "status": 500}, {"fault": "http", "status": 503}, say("ok")]) as srv:
        reply = await ask(build(srv, rec), rec, stream=False)
    assert reply.message.content == "ok"
    assert [r["kind"] for r in rec.retries] == ["overloaded", "overloaded"]
    assert [r["attempt"] for r in rec.retries] == [1, 2]
    assert all(0 <= d <= 0.05 for d in rec.sleeps) and len(rec.sleeps) == 2


async def test_backoff_grows_exponentially_with_full_jitter_up_to_the_cap(build: Build) -> None:
    rec = Recorder()
    with ScriptedServer([]) as srv:
        model = build(srv, rec, backoff_base=1.0, backoff_max=5.0)
    delays = {attempt: [model.backoff(attempt) for _ in range(300)] for attempt in (1, 2, 3, 6)}
    assert all(0 <= d <= 1 for d in delays[1]) and max(delays[1]) > 0.5
    assert all(0 <= d <= 2 for d in delays[2]) and max(delays[2]) > 1
    assert all(0 <= d <= 4 for d in delays[3]) and max(delays[3]) > 2
    assert all(0 <= d <= 5 for d in delays[6]) and max(delays[6]) > 4
    assert model.backoff(1, retry_after=3.0) == 3.0


async def test_hang_times_out_is_retried_then_fails_when_retries_run_out(build: Build) -> None:
    rec = Recorder()
    script = [say("warm-up"), {"fault": "hang", "seconds": 30}, {"fault": "hang", "seconds": 30}]
    with ScriptedServer(script) as srv:
        model = build(srv, rec, timeout=0.5, max_retries=1)
        await ask(
            build(srv, rec), rec, stream=True
        )  # litellm's lazy imports on a first call can take longer than 0.5 s
        with pytest.raises(LLMError) as info:
            await ask(model, rec, stream=True)
    assert info.value.kind == "timeout" and info.value.retryable
    assert "gave up after 1 retry" in str(info.value)
    assert [r["kind"] for r in rec.retries] == ["timeout"]
    assert len(srv.requests) == 3


async def test_the_timeout_bounds_the_wait_for_each_chunk_not_a_whole_stream(build: Build) -> None:
    rec = Recorder()
    text = "a long answer that keeps flowing, slowly"
    script = [say("warm-up"), {"fault": "slow_stream", "turn": {"text": text}, "chunk_delay": 0.15}]
    with ScriptedServer(script, chunk_chars=3) as srv:  # ~15 chunks: over 2 s in all, 0.15 s apart
        await ask(build(srv, rec), rec, stream=True)
        reply = await ask(build(srv, rec, timeout=1.0, max_retries=0), rec, stream=True)
    assert reply.message.content == text
    assert rec.retries == []


async def test_a_stream_that_stalls_between_chunks_times_out(build: Build) -> None:
    rec = Recorder()
    script = [say("warm-up"), {"fault": "slow_stream", "turn": {"text": "one two three"}, "chunk_delay": 2.0}]
    with ScriptedServer(script, chunk_chars=4) as srv:
        await ask(build(srv, rec), rec, stream=True)
        with pytest.raises(LLMError) as info:
            await ask(build(srv, rec, timeout=0.5, max_retries=0), rec, stream=True)
    assert info.value.kind in ("timeout", "stream")


async def test_a_broken_stream_is_retried_from_scratch(build: Build) -> None:
    rec = Recorder()
    text = "The first attempt breaks off part way."
    script = [{"fault": "break_stream", "turn": {"text": text}, "after_chunks": 3}, say(text)]
    with ScriptedServer(script, chunk_chars=4) as srv:
        reply = await ask(build(srv, rec), rec, stream=True)
    assert reply.message.content == text
    (retry,) = rec.retries
    assert retry["kind"] == "stream" and retry["streamed"] is True
    assert "".join(rec.text).endswith(text) and len("".join(rec.text)) > len(text)


async def test_a_broken_non_streaming_answer_is_retried(build: Build) -> None:
    rec = Recorder()
    with ScriptedServer([{"fault": "break_stream", "turn": {"text": "x"}}, say("whole")]) as srv:
        reply = await ask(build(srv, rec), rec, stream=False)
    assert reply.message.content == "whole" and len(rec.retries) == 1
    assert rec.retries[0]["streamed"] is False


@pytest.mark.parametrize("stream", [False, True])
async def test_context_overflow_is_raised_without_retrying(build: Build, stream: bool) -> None:
    rec = Recorder()
    with (
        ScriptedServer([{"fault": "context_overflow"}, say("never")]) as srv,
        pytest.raises(ContextOverflowError) as info,
    ):
        await ask(build(srv, rec), rec, stream)
    assert info.value.kind == "context_overflow" and not info.value.retryable
    assert "maximum context length" in str(info.value)
    assert rec.retries == [] and len(srv.requests) == 1


async def test_rejected_key_is_an_auth_error_naming_the_variable(build: Build, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_LLM_KEY", f"sk-{secrets.token_hex(12)}")
    rec = Recorder()
    with ScriptedServer([{"fault": "http", "status": 401}, say("never")]) as srv, pytest.raises(AuthError) as info:
        await ask(build(srv, rec, api_key_env="MY_LLM_KEY"), rec, stream=True)
    assert "MY_LLM_KEY" in str(info.value) and info.value.status == 401
    assert rec.retries == [] and len(srv.requests) == 1


async def test_rejected_hf_token_names_hf_token(build: Build, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", f"hf_{secrets.token_hex(12)}")
    rec = Recorder()
    with ScriptedServer([{"fault": "http", "status": 403}]) as srv, pytest.raises(AuthError) as info:
        await ask(build(srv, rec, model="huggingface/moonshotai/Kimi-K2.6"), rec, stream=False)
    assert "HF_TOKEN" in str(info.value)


async def test_wrong_model_id_is_not_found_with_a_hint(build: Build) -> None:
    rec = Recorder()
    with ScriptedServer([{"fault": "http", "status": 404}]) as srv, pytest.raises(LLMError) as info:
        await ask(build(srv, rec), rec, stream=False)
    assert info.value.kind == "not_found" and "model id" in info.value.hint
    assert rec.retries == []


async def test_exhausted_retries_keep_the_last_error(build: Build) -> None:
    rec = Recorder()
    with ScriptedServer([]) as srv, pytest.raises(LLMError) as info:
        await ask(build(srv, rec, max_retries=2), rec, stream=False)
    assert "script is exhausted" in str(info.value) and "gave up after 2 retries" in str(info.value)
    assert len(srv.requests) == 3 and len(rec.sleeps) == 2


async def test_an_error_in_on_text_is_not_a_model_error(build: Build) -> None:
    async def boom(text: str) -> None:
        raise RuntimeError("the terminal went away")

    rec = Recorder()
    with ScriptedServer([say("hello there"), say("again")]) as srv:
        model = build(srv, rec)
        with pytest.raises(RuntimeError, match="terminal went away"):
            await model.complete(HISTORY, [], stream=True, on_text=boom, on_retry=rec.on_retry)
    assert rec.retries == [] and len(srv.requests) == 1


@pytest.mark.parametrize(
    ("model_id", "sent"),
    [
        ("huggingface/moonshotai/Kimi-K2.6", "moonshotai/Kimi-K2.6"),
        ("huggingface/Qwen/Qwen3-Coder-480B-A35B-Instruct:novita", "Qwen/Qwen3-Coder-480B-A35B-Instruct:novita"),
        ("huggingface/together/deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-V3:together"),
    ],
)
async def test_hugging_face_ids_go_to_the_router_with_the_hf_token(
    build: Build, model_id: str, sent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = f"hf_{secrets.token_hex(12)}"
    monkeypatch.setenv("HF_TOKEN", token)
    assert resolve_route(config(model=model_id)).api_base == HF_ROUTER
    rec = Recorder()
    with ScriptedServer([call("read", path="a.py")]) as srv:
        reply = await ask(build(srv, rec, model=model_id), rec, stream=True)
    assert reply.message.tool_calls[0].name == "read"
    (request,) = srv.requests
    assert request.body["model"] == sent
    assert request.headers["authorization"] == f"Bearer {token}"


async def test_openai_key_is_used_for_an_openai_compatible_server(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"sk-{secrets.token_hex(12)}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    rec = Recorder()
    with ScriptedServer([say("ok")]) as srv:
        await ask(build(srv, rec, model="Qwen/Qwen3-8B"), rec, stream=False)
    assert srv.requests[0].headers["authorization"] == f"Bearer {key}"
    assert srv.requests[0].body["model"] == "Qwen/Qwen3-8B"


@pytest.mark.parametrize("stream", [False, True])
async def test_consecutive_calls_reuse_one_connection(build: Build, stream: bool) -> None:
    rec = Recorder()
    with ScriptedServer([say("one"), call("read", path="a.py"), say("three")]) as srv:
        model = build(srv, rec)
        if isinstance(model, LiteLLMModel):
            pytest.skip("litellm pools connections its own way (a loaded machine may see two)")
        for _ in range(3):
            await ask(model, rec, stream)
    assert len({r.peer for r in srv.requests}) == 1, [r.peer for r in srv.requests]
