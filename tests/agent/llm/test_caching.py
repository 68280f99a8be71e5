"""Anthropic cache breakpoints: the transform, and what reaches the wire through each client."""

from __future__ import annotations

import json
import secrets

import pytest

from agent.llm.caching import add_cache_breakpoints, is_anthropic
from agent.llm.scripted import say
from agent.llm.server import ScriptedServer
from agent.messages import Message
from tests.agent.llm.conftest import Build, Recorder
from tests.agent.llm.test_models import HISTORY, TOOLS

EPHEMERAL = {"type": "ephemeral"}


async def test_anthropic_models_get_cache_breakpoints_on_the_wire(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
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


async def test_caching_off_or_other_models_send_plain_messages(build: Build, monkeypatch: pytest.MonkeyPatch) -> None:
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
