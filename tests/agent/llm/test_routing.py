"""Routing: which client serves a model id, its endpoint, key and context window, and errors before any request."""

from __future__ import annotations

import secrets

import pytest

from agent.config import AgentConfig, ContextConfig
from agent.errors import AuthError, ConfigError
from agent.llm import model_from_config
from agent.llm.litellm_model import LiteLLMModel
from agent.llm.openai_compat import OpenAICompatModel
from agent.llm.routing import DEFAULT_CONTEXT_WINDOW, HF_ROUTER, LITELLM_PROVIDERS, OPENAI_API, resolve_route
from agent.llm.scripted import say
from agent.llm.server import ScriptedServer
from tests.agent.llm.conftest import config


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


@pytest.mark.parametrize("model_id", ["hosted_vllm/my-model", "ollama/qwen3"])
def test_provider_ids_take_base_url_as_api_base(model_id: str) -> None:
    route = resolve_route(AgentConfig(model=model_id, base_url="http://127.0.0.1:9/v1"))
    assert (route.model, route.api_base) == (model_id, "http://127.0.0.1:9/v1")


def test_api_key_never_shows_in_the_route_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    token = f"hf_{secrets.token_hex(12)}"
    monkeypatch.setenv("HF_TOKEN", token)
    route = resolve_route(config(model="huggingface/moonshotai/Kimi-K2.6"))
    assert route.api_key == token and token not in repr(route)


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


@pytest.mark.parametrize(
    ("model_id", "base_url", "client"),
    [
        ("huggingface/moonshotai/Kimi-K2.6", None, OpenAICompatModel),
        ("my-local-model", "http://127.0.0.1:9/v1", OpenAICompatModel),
        ("Qwen/Qwen3-8B", "http://127.0.0.1:9/v1", OpenAICompatModel),
        ("openai/gpt-4o-mini", "http://127.0.0.1:9/v1", OpenAICompatModel),
        ("openai/gpt-4o-mini", None, OpenAICompatModel),
        ("ollama/qwen3", "http://127.0.0.1:9/v1", LiteLLMModel),
        ("anthropic/claude-sonnet-4-5", None, LiteLLMModel),
    ],
)
def test_openai_compatible_routes_get_the_direct_client_the_rest_litellm(
    model_id: str, base_url: str | None, client: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HF_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(name, f"sk-{secrets.token_hex(8)}")
    assert type(model_from_config(AgentConfig(model=model_id, base_url=base_url))) is client


def test_openai_ids_without_base_url_go_to_openai_with_openai_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuthError, match="OPENAI_API_KEY"):
        resolve_route(AgentConfig(model="openai/gpt-4o-mini"))
    key = f"sk-{secrets.token_hex(8)}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    route = resolve_route(AgentConfig(model="openai/gpt-4o-mini"))
    assert (route.api_base, route.api_key, route.wire_model, route.client) == (OPENAI_API, key, "gpt-4o-mini", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert resolve_route(AgentConfig(model="openai/gpt-4o-mini")).api_base == "http://127.0.0.1:9/v1"


def test_the_hf_route_is_the_router() -> None:
    route = resolve_route(AgentConfig(model="huggingface/moonshotai/Kimi-K2.6"), env={"HF_TOKEN": "hf_x"})
    assert (route.api_base, route.wire_model, route.client) == (HF_ROUTER, "moonshotai/Kimi-K2.6", "openai")


@pytest.mark.parametrize("url", ["not a url", "localhost:8000/v1", "ftp://host/v1", "http://", "http://host:port/v1"])
def test_a_base_url_that_is_not_a_url_is_a_config_error_at_once(url: str) -> None:
    with pytest.raises(ConfigError, match=r"base_url .* http"):
        model_from_config(AgentConfig(model="my-model", base_url=url))


def test_the_provider_list_is_litellms() -> None:
    import litellm

    assert {str(getattr(p, "value", p)) for p in litellm.provider_list} == LITELLM_PROVIDERS, (
        "litellm's provider list changed: update LITELLM_PROVIDERS in agent/llm/routing.py"
    )


@pytest.mark.parametrize("model_id", ["gpt-4o-mini", "openai/gpt-4o-mini", "openai/gpt-4.1"])
def test_the_price_map_read_directly_agrees_with_litellm(model_id: str) -> None:
    import litellm

    from agent.llm import prices

    assert prices.max_input_tokens([model_id]) == litellm.get_model_info(model_id)["max_input_tokens"]


def test_routing_an_openai_compatible_model_does_not_import_litellm() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from agent.config import AgentConfig; from agent.llm import model_from_config\n"
        "m = model_from_config(AgentConfig(model='my-model', base_url='http://127.0.0.1:9/v1'))\n"
        "print(m.context_window, 'litellm' in sys.modules, 'openai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.split() == [str(DEFAULT_CONTEXT_WINDOW), "False", "False"]


def test_llm_client_litellm_sends_every_route_through_litellm() -> None:
    cfg = AgentConfig(model="my-model", base_url="http://127.0.0.1:9/v1")
    assert type(model_from_config(cfg)) is OpenAICompatModel
    cfg = cfg.model_copy(update={"llm": cfg.llm.model_copy(update={"client": "litellm"})})
    assert type(model_from_config(cfg)) is LiteLLMModel


def test_the_cli_reports_a_base_url_that_is_not_a_url_as_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import USAGE, main

    assert main(["hello", "--base-url", "not a url", "--model", "my-model"]) == USAGE
    assert "base_url 'not a url' is not an http(s) URL" in capsys.readouterr().err
