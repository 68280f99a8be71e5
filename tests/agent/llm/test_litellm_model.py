"""LiteLLMModel through litellm's real HTTP path against the scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest

from agent.config import AgentConfig, ContextConfig, LLMConfig
from agent.errors import AuthError, ConfigError, ContextOverflowError, LLMError
from agent.llm.caching import add_cache_breakpoints, is_anthropic
from agent.llm.litellm_model import LiteLLMModel, model_from_config
from agent.llm.routing import DEFAULT_CONTEXT_WINDOW, HF_ROUTER, NO_KEY, resolve_route
from agent.llm.scripted import Turn, call, calls, say
from agent.llm.server import ScriptedServer
from agent.messages import Message, ToolCall, Usage

HISTORY = [Message.system("You are terse."), Message.user("list the files")]
TOOLS = [
    {"type": "function", "function": {"name": n, "description": n, "parameters": {"type": "object"}}}
    for n in ("read", "bash")
]
EPHEMERAL = {"type": "ephemeral"}


@dataclass
class Recorder:
    """Collects what the model reports: sleeps, retries, streamed text."""

    sleeps: list[float] = field(default_factory=list)
    retries: list[dict[str, Any]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def on_retry(self, info: dict[str, Any]) -> None:
        self.retries.append(info)

    async def on_text(self, text: str) -> None:
        self.text.append(text)


def config(srv: ScriptedServer | None = None, model: str = "gpt-4o-mini", **llm: Any) -> AgentConfig:
    settings = {"timeout": 5, "max_retries": 2, "backoff_base": 0.01, "backoff_max": 0.05, **llm}
    return AgentConfig(model=model, base_url=srv.base_url if srv else None, llm=LLMConfig(**settings))


def build(srv: ScriptedServer, rec: Recorder, model: str = "gpt-4o-mini", **llm: Any) -> LiteLLMModel:
    return model_from_config(config(srv, model, **llm), sleep=rec.sleep)


async def ask(model: LiteLLMModel, rec: Recorder, stream: bool, tools: list[dict[str, Any]] | None = None) -> Any:
    return await model.complete(
        HISTORY, TOOLS if tools is None else tools, stream=stream, on_text=rec.on_text, on_retry=rec.on_retry
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_plain_text_answer_and_the_request_sent(stream: bool) -> None:
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


async def test_streamed_text_goes_to_on_text_piece_by_piece() -> None:
    rec = Recorder()
    text = "Here are the files you asked for, one per line."
    with ScriptedServer([say(text)], chunk_chars=5) as srv:
        reply = await ask(build(srv, rec), rec, stream=True)
    assert "".join(rec.text) == text == reply.message.content
    assert len(rec.text) >= len(text) // 5


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_are_assembled_from_split_fragments(stream: bool) -> None:
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


async def test_a_call_without_id_or_arguments_still_gets_both() -> None:
    rec = Recorder()
    with ScriptedServer([Turn(tool_calls=[ToolCall("", "plan", "")])]) as srv:
        reply = await ask(build(srv, rec), rec, stream=True)
    (tc,) = reply.message.tool_calls
    assert tc.name == "plan" and tc.id.startswith("call_") and tc.arguments == "{}"


@pytest.mark.parametrize("stream", [False, True])
async def test_usage_comes_from_the_servers_usage_and_is_priced(stream: bool) -> None:
    import litellm

    rec = Recorder()
    turn = Turn("ok", usage=Usage(1200, 80, 1024))
    with ScriptedServer([turn]) as srv:
        reply = await ask(build(srv, rec), rec, stream)
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.cached_tokens) == (1200, 80, 1024)
    price = litellm.model_cost["gpt-4o-mini"]
    uncached = (1200 - 1024) * price["input_cost_per_token"] + 1024 * price["cache_read_input_token_cost"]
    assert reply.usage.cost_usd == pytest.approx(uncached + 80 * price["output_cost_per_token"])


async def test_a_model_without_a_known_price_costs_nothing() -> None:
    rec = Recorder()
    with ScriptedServer([Turn("ok", usage=Usage(500, 20, 0))]) as srv:
        reply = await ask(build(srv, rec, model="my-local-finetune"), rec, stream=True)
    assert reply.usage.cost_usd == 0.0 and reply.usage.prompt_tokens == 500
    assert srv.requests[0].body["model"] == "my-local-finetune"


@pytest.mark.parametrize("stream", [False, True])
async def test_configured_prices_cost_a_model_litellm_does_not_price(stream: bool) -> None:
    rec = Recorder()
    prices = {"input": 0.6, "output": 2.5}
    with ScriptedServer([Turn("ok", usage=Usage(2_000_000, 400_000, 0))]) as srv:
        reply = await ask(build(srv, rec, model="my-local-finetune", usd_per_million=prices), rec, stream=stream)
    assert reply.usage.cost_usd == pytest.approx(2 * 0.6 + 0.4 * 2.5)


async def test_rate_limit_is_retried_after_the_servers_retry_after() -> None:
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


async def test_retry_after_is_capped() -> None:
    rec = Recorder()
    script = [{"fault": "http", "status": 429, "headers": {"Retry-After": "86400"}}, say("done")]
    with ScriptedServer(script) as srv:
        await ask(build(srv, rec), rec, stream=False)
    assert rec.sleeps == [300.0]


async def test_server_error_then_success() -> None:
    rec = Recorder()
    with ScriptedServer([{"fault": "http", "status": 500}, {"fault": "http", "status": 503}, say("ok")]) as srv:
        reply = await ask(build(srv, rec), rec, stream=False)
    assert reply.message.content == "ok"
    assert [r["kind"] for r in rec.retries] == ["overloaded", "overloaded"]
    assert [r["attempt"] for r in rec.retries] == [1, 2]
    assert all(0 <= d <= 0.05 for d in rec.sleeps) and len(rec.sleeps) == 2


async def test_backoff_grows_exponentially_with_full_jitter_up_to_the_cap() -> None:
    rec = Recorder()
    with ScriptedServer([]) as srv:
        model = build(srv, rec, backoff_base=1.0, backoff_max=5.0)
    delays = {attempt: [model.backoff(attempt) for _ in range(300)] for attempt in (1, 2, 3, 6)}
    assert all(0 <= d <= 1 for d in delays[1]) and max(delays[1]) > 0.5
    assert all(0 <= d <= 2 for d in delays[2]) and max(delays[2]) > 1
    assert all(0 <= d <= 4 for d in delays[3]) and max(delays[3]) > 2
    assert all(0 <= d <= 5 for d in delays[6]) and max(delays[6]) > 4
    assert model.backoff(1, retry_after=3.0) == 3.0


async def test_hang_times_out_is_retried_then_fails_when_retries_run_out() -> None:
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


async def test_the_timeout_bounds_the_wait_for_each_chunk_not_a_whole_stream() -> None:
    rec = Recorder()
    text = "a long answer that keeps flowing, slowly"
    script = [say("warm-up"), {"fault": "slow_stream", "turn": {"text": text}, "chunk_delay": 0.15}]
    with ScriptedServer(script, chunk_chars=3) as srv:  # ~15 chunks: over 2 s in all, 0.15 s apart
        await ask(build(srv, rec), rec, stream=True)
        reply = await ask(build(srv, rec, timeout=1.0, max_retries=0), rec, stream=True)
    assert reply.message.content == text
    assert rec.retries == []


async def test_a_stream_that_stalls_between_chunks_times_out() -> None:
    rec = Recorder()
    script = [say("warm-up"), {"fault": "slow_stream", "turn": {"text": "one two three"}, "chunk_delay": 2.0}]
    with ScriptedServer(script, chunk_chars=4) as srv:
        await ask(build(srv, rec), rec, stream=True)
        with pytest.raises(LLMError) as info:
            await ask(build(srv, rec, timeout=0.5, max_retries=0), rec, stream=True)
    assert info.value.kind in ("timeout", "stream")


async def test_a_broken_stream_is_retried_from_scratch() -> None:
    rec = Recorder()
    text = "The first attempt breaks off part way."
    script = [{"fault": "break_stream", "turn": {"text": text}, "after_chunks": 3}, say(text)]
    with ScriptedServer(script, chunk_chars=4) as srv:
        reply = await ask(build(srv, rec), rec, stream=True)
    assert reply.message.content == text
    (retry,) = rec.retries
    assert retry["kind"] == "stream" and retry["streamed"] is True
    assert "".join(rec.text).endswith(text) and len("".join(rec.text)) > len(text)


async def test_a_broken_non_streaming_answer_is_retried() -> None:
    rec = Recorder()
    with ScriptedServer([{"fault": "break_stream", "turn": {"text": "x"}}, say("whole")]) as srv:
        reply = await ask(build(srv, rec), rec, stream=False)
    assert reply.message.content == "whole" and len(rec.retries) == 1
    assert rec.retries[0]["streamed"] is False


@pytest.mark.parametrize("stream", [False, True])
async def test_context_overflow_is_raised_without_retrying(stream: bool) -> None:
    rec = Recorder()
    with (
        ScriptedServer([{"fault": "context_overflow"}, say("never")]) as srv,
        pytest.raises(ContextOverflowError) as info,
    ):
        await ask(build(srv, rec), rec, stream)
    assert info.value.kind == "context_overflow" and not info.value.retryable
    assert "maximum context length" in str(info.value)
    assert rec.retries == [] and len(srv.requests) == 1


async def test_rejected_key_is_an_auth_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_LLM_KEY", f"sk-{secrets.token_hex(12)}")
    rec = Recorder()
    with ScriptedServer([{"fault": "http", "status": 401}, say("never")]) as srv, pytest.raises(AuthError) as info:
        await ask(build(srv, rec, api_key_env="MY_LLM_KEY"), rec, stream=True)
    assert "MY_LLM_KEY" in str(info.value) and info.value.status == 401
    assert rec.retries == [] and len(srv.requests) == 1


async def test_rejected_hf_token_names_hf_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", f"hf_{secrets.token_hex(12)}")
    rec = Recorder()
    with ScriptedServer([{"fault": "http", "status": 403}]) as srv, pytest.raises(AuthError) as info:
        await ask(build(srv, rec, model="huggingface/moonshotai/Kimi-K2.6"), rec, stream=False)
    assert "HF_TOKEN" in str(info.value)


async def test_wrong_model_id_is_not_found_with_a_hint() -> None:
    rec = Recorder()
    with ScriptedServer([{"fault": "http", "status": 404}]) as srv, pytest.raises(LLMError) as info:
        await ask(build(srv, rec), rec, stream=False)
    assert info.value.kind == "not_found" and "model id" in info.value.hint
    assert rec.retries == []


async def test_exhausted_retries_keep_the_last_error() -> None:
    rec = Recorder()
    with ScriptedServer([]) as srv, pytest.raises(LLMError) as info:
        await ask(build(srv, rec, max_retries=2), rec, stream=False)
    assert "script is exhausted" in str(info.value) and "gave up after 2 retries" in str(info.value)
    assert len(srv.requests) == 3 and len(rec.sleeps) == 2


async def test_an_error_in_on_text_is_not_a_model_error() -> None:
    async def boom(text: str) -> None:
        raise RuntimeError("the terminal went away")

    rec = Recorder()
    with ScriptedServer([say("hello there"), say("again")]) as srv:
        model = build(srv, rec)
        with pytest.raises(RuntimeError, match="terminal went away"):
            await model.complete(HISTORY, [], stream=True, on_text=boom, on_retry=rec.on_retry)
    assert rec.retries == [] and len(srv.requests) == 1


async def test_missing_provider_key_fails_before_any_request() -> None:
    with pytest.raises(AuthError) as info:
        model_from_config(config(model="anthropic/claude-sonnet-4-5"))
    assert "ANTHROPIC_API_KEY" in str(info.value)


async def test_missing_hf_token_fails_before_any_request() -> None:
    from huggingface_hub import get_token

    assert get_token() is None, "a saved Hugging Face login is visible to the tests"
    with ScriptedServer([say("never")]) as srv, pytest.raises(AuthError) as info:
        model_from_config(config(srv, model="huggingface/moonshotai/Kimi-K2.6"))
    assert "HF_TOKEN" in str(info.value) and srv.requests == []


async def test_configured_key_variable_must_be_set() -> None:
    with ScriptedServer([]) as srv, pytest.raises(AuthError, match="MY_MISSING_KEY"):
        model_from_config(config(srv, api_key_env="MY_MISSING_KEY"))
    assert srv.requests == []


async def test_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"(?i)check the id"):
        model_from_config(config(model="no-such-provider-model"))


@pytest.mark.parametrize(
    ("model_id", "sent"),
    [
        ("huggingface/moonshotai/Kimi-K2.6", "moonshotai/Kimi-K2.6"),
        ("huggingface/Qwen/Qwen3-Coder-480B-A35B-Instruct:novita", "Qwen/Qwen3-Coder-480B-A35B-Instruct:novita"),
        ("huggingface/together/deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-V3:together"),
    ],
)
async def test_hugging_face_ids_go_to_the_router_with_the_hf_token(
    model_id: str, sent: str, monkeypatch: pytest.MonkeyPatch
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


async def test_openai_key_is_used_for_an_openai_compatible_server(monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"sk-{secrets.token_hex(12)}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    rec = Recorder()
    with ScriptedServer([say("ok")]) as srv:
        await ask(build(srv, rec, model="Qwen/Qwen3-8B"), rec, stream=False)
    assert srv.requests[0].headers["authorization"] == f"Bearer {key}"
    assert srv.requests[0].body["model"] == "Qwen/Qwen3-8B"


@pytest.mark.parametrize("model_id", ["hosted_vllm/my-model", "ollama/qwen3"])
def test_provider_ids_take_base_url_as_api_base(model_id: str) -> None:
    route = resolve_route(AgentConfig(model=model_id, base_url="http://127.0.0.1:9/v1"))
    assert (route.model, route.api_base) == (model_id, "http://127.0.0.1:9/v1")


def test_api_key_never_shows_in_the_route_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    token = f"hf_{secrets.token_hex(12)}"
    monkeypatch.setenv("HF_TOKEN", token)
    route = resolve_route(config(model="huggingface/moonshotai/Kimi-K2.6"))
    assert route.api_key == token and token not in repr(route)


async def test_anthropic_models_get_cache_breakpoints_on_the_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_KEY_FOR_TEST", f"sk-or-{secrets.token_hex(8)}")
    rec = Recorder()
    history = [*HISTORY, Message("assistant", "Looking."), Message.user("and the tests?")]
    with ScriptedServer([say("ok")]) as srv:
        model = build(srv, rec, model="openrouter/anthropic/claude-sonnet-4.5", api_key_env="OPENROUTER_KEY_FOR_TEST")
        await model.complete(history, TOOLS, stream=True)
    body = srv.requests[0].body
    assert body["messages"][0]["content"] == [{"type": "text", "text": "You are terse.", "cache_control": EPHEMERAL}]
    assert body["messages"][2]["content"][-1]["cache_control"] == EPHEMERAL
    assert body["messages"][3]["content"] == "and the tests?"
    assert body["tools"][-1]["cache_control"] == EPHEMERAL


async def test_caching_off_or_other_models_send_plain_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder()
    with ScriptedServer([say("ok"), say("ok")]) as srv:
        await build(srv, rec).complete(HISTORY, TOOLS)
        await build(srv, rec, model="claude-via-proxy", prompt_caching=False).complete(HISTORY, TOOLS)
    for request in srv.requests:
        assert request.body["messages"] == [m.to_llm() for m in HISTORY]
        assert "cache_control" not in json.dumps(request.body)


def test_cache_breakpoints_transform() -> None:
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "task"},
        {"role": "assistant", "content": "thinking", "tool_calls": [{"id": "c1"}]},
        {
            "role": "tool",
            "content": [{"type": "text", "text": "out-1"}, {"type": "text", "text": "out-2"}],
            "tool_call_id": "c1",
        },
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c2"}]},
        {"role": "tool", "content": "newest", "tool_call_id": "c2"},
    ]
    tools = [{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b"}}]
    before = json.dumps([messages, tools])
    out, specs = add_cache_breakpoints(messages, tools)
    assert json.dumps([messages, tools]) == before, "inputs must not be modified"
    assert out[0]["content"] == [{"type": "text", "text": "sys", "cache_control": EPHEMERAL}]
    assert out[3]["content"] == [
        {"type": "text", "text": "out-1"},
        {"type": "text", "text": "out-2", "cache_control": EPHEMERAL},
    ]
    assert [out[i] for i in (1, 2, 4, 5)] == [messages[i] for i in (1, 2, 4, 5)]
    assert specs[0] == tools[0] and specs[1] == {**tools[1], "cache_control": EPHEMERAL}


def test_cache_breakpoints_with_a_single_user_message_mark_only_system_and_tools() -> None:
    out, specs = add_cache_breakpoints([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], [])
    assert out[1] == {"role": "user", "content": "u"} and specs == []
    assert "cache_control" in out[0]["content"][0]
    no_system, _ = add_cache_breakpoints(
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}], []
    )
    assert no_system[1] == {"role": "assistant", "content": [{"type": "text", "text": "b", "cache_control": EPHEMERAL}]}
    assert (no_system[0], no_system[2]) == ({"role": "user", "content": "a"}, {"role": "user", "content": "c"})


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("anthropic/claude-sonnet-4-5", True),
        ("bedrock/anthropic.claude-3-5-sonnet", True),
        ("vertex_ai/claude-opus-4", True),
        ("openrouter/anthropic/claude-sonnet-4.5", True),
        ("huggingface/moonshotai/Kimi-K2.6", False),
        ("openai/gpt-5", False),
    ],
)
def test_is_anthropic(model_id: str, expected: bool) -> None:
    assert is_anthropic(model_id) is expected


def test_context_window_override_known_model_and_default() -> None:
    import litellm

    known = model_from_config(AgentConfig(model="openai/gpt-4o-mini", base_url="http://127.0.0.1:9/v1"))
    assert known.context_window == litellm.model_cost["gpt-4o-mini"]["max_input_tokens"]
    cfg = AgentConfig(model="my-local-model", base_url="http://127.0.0.1:9/v1")
    assert model_from_config(cfg).context_window == DEFAULT_CONTEXT_WINDOW
    cfg = cfg.model_copy(update={"context": ContextConfig(context_window=32_768)})
    assert model_from_config(cfg).context_window == 32_768


def test_hf_context_window_comes_from_the_same_weights_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    import litellm

    monkeypatch.setenv("HF_TOKEN", f"hf_{secrets.token_hex(8)}")
    sizes = [
        v["max_input_tokens"]
        for k, v in litellm.model_cost.items()
        if k.lower().endswith("/moonshotai/kimi-k2.6") and v.get("max_input_tokens")
    ]
    assert sizes, "the price map no longer lists Kimi-K2.6 anywhere; pick another model for this test"
    model = model_from_config(AgentConfig(model="huggingface/moonshotai/Kimi-K2.6"))
    assert model.context_window == min(sizes)


def test_count_tokens_grows_with_the_history() -> None:
    model = model_from_config(AgentConfig(model="my-local-model", base_url="http://127.0.0.1:9/v1"))
    short = model.count_tokens(HISTORY)
    longer = model.count_tokens([*HISTORY, Message.user("word " * 400)], TOOLS)
    assert short > 0 and longer - short >= 400
