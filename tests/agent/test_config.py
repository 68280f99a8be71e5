"""Config layering, ${ENV} substitution and errors that name the key."""

from __future__ import annotations

import re
import tracemalloc

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


def test_sandbox_defaults_and_a_bad_mode_named():
    sandbox = load_config(use_user_file=False).sandbox
    assert (sandbox.mode, sandbox.network, sandbox.allow_unsandboxed) == ("auto", True, False)
    assert (sandbox.memory_mb, sandbox.processes, sandbox.file_size_mb) == (8192, 512, 10240)
    with pytest.raises(ConfigError, match=r"sandbox\.mode: Input should be 'auto', 'bubblewrap' or 'none'"):
        load_config(overrides=parse_override("sandbox.mode=docker"), use_user_file=False)
    with pytest.raises(ConfigError, match=r"sandbox\.processes"):
        load_config(overrides=parse_override("sandbox.processes=0"), use_user_file=False)
    unbounded = load_config(overrides=parse_override("sandbox.memory_mb=null"), use_user_file=False)
    assert unbounded.sandbox.memory_mb is None


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)
"""Nine levels of nine aliases each: 9^9 (387 million) values once expanded."""


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"model: caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 10); save it as UTF-8"),
        (b"mcpServers: &a {x: *a}\n", "an alias that contains itself"),
        (b"tools: &t [bash, *t]\n", "an alias that contains itself"),
        (BOMB.encode(), "expands to more than 100,000 values"),
        (b"x: " + b"[" * 500 + b"]" * 500, "nested more than 100 levels deep"),
        (b"# padding\n" * 110_000, "is over 1024 KiB"),
    ],
)
def test_a_config_that_would_crash_or_blow_up_is_refused_with_bounded_memory(tmp_path, data, needle):
    path = tmp_path / "bad.yaml"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as err:
            load_config(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert needle in str(err.value) and str(path) in str(err.value)
    assert peak < 64 << 20  # the bomb is refused before it is expanded


def test_aliases_that_only_share_values_still_work(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("mcpServers:\n  a: &srv {command: x, timeout: 5}\n  b: *srv\n")
    cfg = load_config(path)
    assert cfg.mcpServers["a"] == cfg.mcpServers["b"]


def test_an_override_that_is_not_yaml_names_the_key_and_says_to_quote_it():
    with pytest.raises(ConfigError, match=r"the value of -c model is not valid YAML \(quote the value"):
        parse_override("model=[unclosed")
    with pytest.raises(ConfigError, match="alias that contains itself"):
        parse_override("tools=&t [*t]")


@pytest.mark.parametrize(
    "override",
    [
        "llm.timeout=0",
        "llm.timeout=-5",
        "llm.max_retries=-1",
        "llm.backoff_base=-1",
        "llm.max_output_tokens=0",
        "context.tool_output_chars=0",
        "context.tool_output_chars=-100",
        "context.context_window=0",
        "context.keep_recent_messages=-1",
        "bash_timeout=0",
        "mcpServers.s.timeout=-1",
    ],
)
def test_zero_or_negative_limits_are_refused_naming_the_key(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{re.escape(key)}: Input should be greater than"):
        load_config(overrides=parse_override(override), use_user_file=False)
