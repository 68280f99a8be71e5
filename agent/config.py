"""Agent behaviour config: the packaged default, a user file, then flags; validated in one place."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import ConfigError
from agent.safe_yaml import MAX_CONFIG_BYTES, load_yaml
from agent.tools.base import Effect

DEFAULT_MODEL = "huggingface/moonshotai/Kimi-K2.6"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Prices(_Strict):
    input: float = Field(ge=0)
    """USD per million prompt tokens."""
    output: float = Field(ge=0)
    """USD per million completion tokens."""


class LLMConfig(_Strict):
    timeout: float = Field(default=180.0, gt=0)
    """Seconds to wait for a model's answer; when streaming, the longest wait for the next chunk."""
    max_retries: int = Field(default=4, ge=0)
    """Retries of a retryable failure (rate limit, overload, timeout, broken stream)."""
    backoff_base: float = Field(default=2.0, ge=0)
    """First retry delay in seconds; doubles each time, with jitter, capped by backoff_max."""
    backoff_max: float = Field(default=60.0, ge=0)
    api_key_env: str | None = None
    """Environment variable holding the API key, when the provider's usual one does not apply."""
    temperature: float | None = None
    max_output_tokens: int | None = Field(default=None, gt=0)
    prompt_caching: bool = True
    """Mark cache breakpoints for providers that support them (Anthropic)."""
    usd_per_million: Prices | None = None
    """Prices for a model litellm does not price (e.g. via the Hugging Face router), so budgets apply to it."""
    client: Literal["auto", "litellm"] = "auto"
    """auto: OpenAI-compatible endpoints (HF router, base_url, openai/) are called directly; litellm: all through it."""


class ContextConfig(_Strict):
    compact_at: float = Field(default=0.8, gt=0.1, le=1.0)
    """Compact when the prompt passes this share of the model's context window."""
    keep_recent_messages: int = Field(default=8, ge=0)
    """Messages at the end of the history that compaction keeps verbatim."""
    tool_output_chars: int = Field(default=16_000, gt=0)
    """Tool output longer than this is cut (head and tail kept) and spilled to a file."""
    context_window: int | None = Field(default=None, gt=0)
    """Override the model's context window (tokens)."""


class ApprovalConfig(_Strict):
    ask: list[Effect] = [Effect.EXECUTE, Effect.SPEND, Effect.PUBLISH, Effect.DESTRUCTIVE, Effect.PROTECTED]
    """Effects a human must approve (interactive prompt, or an approval card on GitHub)."""
    deny: list[Effect] = []
    """Effects never allowed."""
    headless_auto: list[Effect] = [Effect.EXECUTE, Effect.NETWORK]
    """In headless runs, `ask` effects approved without a human; the rest are denied."""


class MCPServerConfig(_Strict):
    command: str | None = None
    """Executable of a stdio server."""
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None
    url: str | None = None
    """Endpoint of a streamable-HTTP server."""
    headers: dict[str, str] = {}
    effects: list[Effect] | None = None
    """Effects of this server's tools; by default taken from the tools' annotations."""
    tools: list[str] | None = None
    """Only these tools of the server (all when unset)."""
    timeout: float = Field(default=60.0, gt=0)


class TraceUploadConfig(_Strict):
    enabled: bool = False
    """Upload each session's trace to a private Hub dataset (opt-in)."""
    repo: str | None = None
    """Dataset repo id; default `<hf user>/ml-intern-traces`."""
    private: bool = True


class SandboxConfig(_Strict):
    mode: Literal["auto", "bubblewrap", "none"] = "auto"
    """auto: bubblewrap for headless runs where it works, local for the chat; bubblewrap: always (an error
    where it cannot run); none: commands run as you, unsandboxed."""
    network: bool = True
    """Commands in the sandbox may use the network (off: only their own loopback)."""
    memory_mb: int | None = Field(default=8192, ge=16)
    """Address space of each sandboxed process (RLIMIT_AS), and the size of its private /tmp; null: unbounded."""
    processes: int | None = Field(default=512, ge=4)
    """Processes one sandboxed command may have at once; null: unbounded."""
    file_size_mb: int | None = Field(default=10240, ge=1)
    """Largest file a sandboxed command may write (RLIMIT_FSIZE); null: unbounded."""
    read_only: list[str] = []
    """Extra host folders visible read-only in the sandbox (e.g. a toolchain under your home)."""
    allow_unsandboxed: bool = False
    """Let headless runs approve `execute` (per approvals.headless_auto) when commands run without the sandbox,
    where they can read your files and credentials."""


class AgentConfig(_Strict):
    model: str = DEFAULT_MODEL
    """Any litellm model id; `huggingface/<org>/<model>` goes through HF Inference Providers."""
    base_url: str | None = None
    """An OpenAI-compatible endpoint (vLLM, llama.cpp, LM Studio, OpenRouter...)."""
    stream: bool = True
    max_iterations: int = Field(default=300, ge=1)
    """Model calls in one turn before the turn stops."""
    budget_usd: float | None = Field(default=None, ge=0)
    """Stop the run once this much has been spent (model and estimated tool costs)."""
    yolo: bool = False
    """Approve every call without asking (the budget still holds)."""
    tools: list[str] = ["workspace"]
    """Tool families (`workspace`), single tools of a family (`workspace.read`) or tool names (`read`)."""
    bash_timeout: int = Field(default=120, gt=0)
    """Default seconds for a bash call."""
    llm: LLMConfig = LLMConfig()
    context: ContextConfig = ContextConfig()
    approvals: ApprovalConfig = ApprovalConfig()
    mcpServers: dict[str, MCPServerConfig] = {}
    traces: TraceUploadConfig = TraceUploadConfig()
    sandbox: SandboxConfig = SandboxConfig()
    system_prompt: str = "system.md.j2"
    """Prompt template under agent/prompts/."""


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(value: Any, env: Mapping[str, str] | None = None, where: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of a nested structure."""
    env = os.environ if env is None else env
    if isinstance(value, dict):
        return {k: substitute_env(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{where}: environment variable {name} is not set; export it or write ${{{name}:-default}}")

    return _VAR.sub(repl, value)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_override(text: str) -> dict[str, Any]:
    """`a.b=value` → {"a": {"b": value}}; the value is parsed as YAML (numbers, lists, booleans)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    value = load_yaml(raw, f"the value of -c {key.strip()}", quote=True) if raw.strip() else ""
    for part in reversed(key.strip().split(".")):
        value = {part: value}
    return value  # type: ignore[return-value]


def packaged_config_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "_configs", here.parent / "configs"):
        if (candidate / "default.yaml").is_file():
            return candidate
    raise ConfigError("the packaged configs/default.yaml is missing; reinstall ml-intern")


def user_config_path(env: Mapping[str, str] | None = None) -> Path:
    given = (os.environ if env is None else env).get("ML_INTERN_CONFIG")
    if given:
        return Path(given)
    from platformdirs import user_config_dir

    return Path(user_config_dir("ml-intern")) / "config.yaml"


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config {path} is over {MAX_CONFIG_BYTES >> 10} KiB; a config is a few keys, check the file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"config {path} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); save it as UTF-8"
        ) from None
    data = load_yaml(text, f"config {path}") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys, not {type(data).__name__}")
    return data


def load_config(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    use_user_file: bool = True,
    env: Mapping[str, str] | None = None,
) -> AgentConfig:
    """Merge default ← user file (or `path`) ← overrides, substitute ${ENV} from `env` (default: the process
    environment), validate."""
    data = read_yaml(packaged_config_dir() / "default.yaml")
    layer = path if path is not None else (user_config_path(env) if use_user_file else None)
    if layer is not None:
        if path is None and not layer.exists():
            layer = None
        elif not layer.exists():
            raise ConfigError(f"config file {layer} does not exist")
    if layer is not None:
        data = deep_merge(data, read_yaml(layer))
    if overrides:
        data = deep_merge(data, overrides)
    data = substitute_env(data, env)
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown key (check the spelling)" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"  {key}: {msg}")
        source = f" (from {layer})" if layer else ""
        raise ConfigError(f"bad config{source}:\n" + "\n".join(problems)) from None


__all__ = [
    "AgentConfig",
    "ApprovalConfig",
    "ContextConfig",
    "LLMConfig",
    "MCPServerConfig",
    "SandboxConfig",
    "load_config",
]
