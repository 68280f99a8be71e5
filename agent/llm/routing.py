"""Where a configured model id goes: litellm id, endpoint, key and context window.

- `huggingface/<org>/<model>[:provider]` (and litellm's own `huggingface/<provider>/<org>/<model>`) is sent as
  `openai/<org>/<model>[:provider]` to Hugging Face Inference Providers' OpenAI-compatible router
  (https://router.huggingface.co/v1, or `base_url` for an Inference Endpoint) with the user's HF token.
  litellm 1.106 also has a native `huggingface` provider that reaches the same router, but it resolves
  `<provider>/` ids with a blocking request to the Hub API inside the call and maps errors through its own
  exception class. Its OpenAI path is the one litellm exercises most for tools, streamed tool-call deltas and
  `stream_options.include_usage`, and its errors keep the HTTP status and the Retry-After header, so we use that.
- With `base_url`, an id without a provider prefix becomes `openai/<id>` against that server. Other ids
  (ollama/, hosted_vllm/, anthropic/ behind a proxy...) keep their provider and get `base_url` as api_base.
- Anything else is passed to litellm unchanged; litellm finds the key in the provider's usual variable.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType

from agent.config import AgentConfig
from agent.errors import AuthError, ConfigError
from agent.llm.classify import key_env_for

HF_ROUTER = "https://router.huggingface.co/v1"
NO_KEY = "sk-no-key"
"""Sent to local OpenAI-compatible servers that need no key (the OpenAI client insists on one)."""
DEFAULT_CONTEXT_WINDOW = 128_000


@functools.cache
def litellm_module() -> ModuleType:
    """Import and configure litellm once: local price map, no telemetry, no debug banners, no HF downloads."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    litellm.drop_params = True
    litellm.disable_hf_tokenizer_download = True
    return litellm


@dataclass(frozen=True, slots=True)
class Route:
    """How a configured model id is called through litellm."""

    model: str
    """The id litellm is given."""
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    key_env: str | None = None
    """The variable the key comes from, named in auth errors."""
    info_ids: tuple[str, ...] = ()
    """Ids under which litellm's model map may know this model (context window, prices)."""


def resolve_route(cfg: AgentConfig, env: Mapping[str, str] | None = None) -> Route:
    """Route `cfg.model`; raises ConfigError for an id litellm cannot place, AuthError when the key is missing."""
    env = os.environ if env is None else env
    model, base_url, key_var = cfg.model.strip(), cfg.base_url, cfg.llm.api_key_env
    if key_var and not env.get(key_var):
        raise AuthError(f"llm.api_key_env names {key_var}, but {key_var} is not set", hint=f"export {key_var}")
    if model.startswith("huggingface/"):
        return _hf_route(model, base_url, key_var, env)
    litellm = litellm_module()
    prefix = model.split("/", 1)[0] if "/" in model else ""
    if base_url and (prefix not in litellm.provider_list or prefix == "openai"):
        key = env.get(key_var) if key_var else env.get("OPENAI_API_KEY")
        routed = model if prefix == "openai" else f"openai/{model}"
        return Route(routed, base_url, key or NO_KEY, key_var or "OPENAI_API_KEY", (routed, model))
    try:
        litellm.get_llm_provider(model)
    except Exception as e:
        raise ConfigError(
            f"unknown model {model!r}: litellm cannot tell which provider serves it. Check the id, give it a "
            "provider prefix (anthropic/..., openai/..., huggingface/<org>/<model>, ollama/...), or set base_url "
            "for an OpenAI-compatible server"
        ) from e
    if key_var:
        return Route(model, base_url, env[key_var], key_var, (model,))
    missing = [
        k
        for k in litellm.validate_environment(model=model, api_base=base_url)["missing_keys"]
        if k.endswith("_API_KEY") and not env.get(k)
    ]
    if missing:
        names = " or ".join(missing)
        raise AuthError(f"{model} needs an API key: {names} is not set", hint=f"export {missing[-1]}=...")
    return Route(model, base_url, None, key_env_for(model), (model,))


def _hf_route(model: str, base_url: str | None, key_var: str | None, env: Mapping[str, str]) -> Route:
    parts = model.removeprefix("huggingface/").split("/")
    if len(parts) == 3:  # litellm's huggingface/<provider>/<org>/<model>
        repo = f"{parts[1]}/{parts[2]}:{parts[0]}"
    elif len(parts) == 2 and all(parts):
        repo = "/".join(parts)
    else:
        raise ConfigError(f"model {model!r}: Hugging Face ids look like huggingface/<org>/<model>[:provider]")
    token = env.get(key_var) if key_var else hf_token(env)
    if not token:
        raise AuthError(
            f"{model} needs a Hugging Face token: HF_TOKEN is not set and no saved login was found",
            hint="export HF_TOKEN=hf_... (https://huggingface.co/settings/tokens) or run `hf auth login`",
        )
    plain = repo.split(":", 1)[0]
    return Route(f"openai/{repo}", base_url or HF_ROUTER, token, key_var or "HF_TOKEN", (f"huggingface/{plain}", plain))


def hf_token(env: Mapping[str, str]) -> str | None:
    """HF_TOKEN, HUGGING_FACE_HUB_TOKEN, else huggingface_hub's saved login."""
    token = env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token.strip()
    from huggingface_hub import get_token

    return get_token()


def context_window_for(route: Route, override: int | None = None) -> int:
    """The override, else litellm's max_input_tokens for the model (or the same weights elsewhere), else 128k."""
    if override:
        return override
    litellm = litellm_module()
    for model_id in route.info_ids:
        try:
            tokens = litellm.get_model_info(model_id).get("max_input_tokens")
        except Exception:  # litellm raises a bare Exception for unmapped models
            continue
        if tokens:
            return int(tokens)
    tails = {"/" + "/".join(i.split(":", 1)[0].lower().split("/")[-2:]) for i in route.info_ids if "/" in i}
    known = [
        int(v["max_input_tokens"])
        for k, v in litellm.model_cost.items()
        if v.get("max_input_tokens") and any(k.lower().endswith(t) for t in tails)
    ]
    return min(known) if known else DEFAULT_CONTEXT_WINDOW
