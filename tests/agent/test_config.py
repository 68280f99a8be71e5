"""Config layering, ${ENV} substitution and errors that name the key."""

from __future__ import annotations

import pytest

from agent.config import deep_merge, load_config, parse_override, substitute_env
from agent.errors import ConfigError


def test_packaged_default_is_valid():
    cfg = load_config(use_user_file=False)
    assert cfg.max_iterations == 300 and cfg.model.startswith("huggingface/")
    assert cfg.tools == ["workspace", "hub", "datasets", "papers", "docs", "github"]


def test_user_file_then_overrides(tmp_path, monkeypatch):
    user = tmp_path / "config.yaml"
    user.write_text("model: openai/gpt-5\nllm:\n  timeout: 30\n")
    monkeypatch.setenv("ML_INTERN_CONFIG", str(user))
    cfg = load_config(overrides=parse_override("llm.max_retries=1"))
    assert (cfg.model, cfg.llm.timeout, cfg.llm.max_retries) == ("openai/gpt-5", 30, 1)
    assert cfg.llm.backoff_max == 60  # untouched keys keep their defaults


def test_env_substitution_in_mcp_servers(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_MCP_TOKEN", "abc")
    path = tmp_path / "c.yaml"
    path.write_text(
        'mcpServers:\n  hub:\n    url: "${HUB_URL:-http://127.0.0.1:9/mcp}"\n'
        '    headers: {Authorization: "Bearer ${MY_MCP_TOKEN}"}\n'
    )
    cfg = load_config(path)
    assert cfg.mcpServers["hub"].url == "http://127.0.0.1:9/mcp"
    assert cfg.mcpServers["hub"].headers == {"Authorization": "Bearer abc"}


def test_missing_env_variable_names_the_key_and_the_fix(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('mcpServers:\n  s:\n    command: x\n    env: {TOKEN: "${SURELY_NOT_SET_VAR}"}\n')
    with pytest.raises(ConfigError, match=r"mcpServers\.s\.env\.TOKEN: environment variable SURELY_NOT_SET_VAR"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("llm:\n  timout: 3\n", "llm.timout: unknown key"),
        ("max_iterations: 0\n", "max_iterations: Input should be greater than or equal to 1"),
        ("approvals:\n  ask: [spending]\n", "approvals.ask.0"),
        ("- a list\n", "must be a mapping"),
        ("model: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_says_which_key_is_wrong(tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_override_parsing():
    assert parse_override("a.b=3") == {"a": {"b": 3}}
    assert parse_override("tools=[bash, read]") == {"tools": ["bash", "read"]}
    with pytest.raises(ConfigError, match=r"key\.sub=value"):
        parse_override("nokey")
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}}
    assert substitute_env({"x": ["${V:-d}"]}, {}) == {"x": ["d"]}
