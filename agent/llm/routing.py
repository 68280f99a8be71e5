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
- `openai/<model>` without `base_url` goes to OpenAI (`OPENAI_BASE_URL` if set) with `OPENAI_API_KEY`.

Routes to an OpenAI-compatible server (`Route.client == "openai"`: the router, any `base_url` without another
provider's prefix, `openai/...`) are served by the direct client in `openai_compat.py` without importing litellm;
the rest by litellm (`litellm_model.py`), which translates for Anthropic, Bedrock, Vertex and the others.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Literal
from urllib.parse import urlsplit

from agent.config import AgentConfig
from agent.errors import AuthError, ConfigError
from agent.llm import prices
from agent.llm.classify import key_env_for

HF_ROUTER = "https://router.huggingface.co/v1"
NO_KEY = "sk-no-key"
"""Sent to local OpenAI-compatible servers that need no key (the OpenAI client insists on one)."""
OPENAI_API = "https://api.openai.com/v1"
DEFAULT_CONTEXT_WINDOW = 128_000
LITELLM_PROVIDERS = frozenset(
    """a2a a2a_agent ai21 ai21_chat aiml aiohttp_openai amazon_nova anthropic anthropic_text apertis assemblyai
    auto_router aws_polly aws_textract azure azure_ai azure_speech azure_text baseten bedrock bedrock_mantle
    black_forest_labs bytez cerebras charity_engine chatgpt chutes clarifai cloudflare codestral cognition cohere
    cohere_chat cometapi compactifai cortecs cursor custom custom_openai darkbloom dashscope databricks datarobot
    deepgram deepinfra deepseek docker_model_runner dotprompt edenai elevenlabs empower fal_ai featherless_ai
    fireworks_ai friendliai galadriel gdc gemini gigachat github github_copilot gradient_ai groq helicone heroku
    hosted_vllm huggingface humanloop hyperbolic inception infinity jina_ai lambda_ai langflow langfuse langgraph
    lemonade libertai litellm_agent litellm_proxy llamafile lm_studio manus maritalk meta meta_llama milvus
    minimax mistral modelscope mongodb moonshot morph nadir nano-gpt nebius neosantara nlp_cloud novita nscale
    nvidia_nim nvidia_riva oci ollama ollama_chat oobabooga openai openai_like openrouter ovhcloud parasail
    perplexity petals pg_vector pinstripes poe predibase prism publicai qwen_ai_platform qwencloud ragflow recraft
    reducto reka replicate runwayml s3_vectors sagemaker sagemaker_chat sagemaker_nova sail sambanova sap scaleway
    scx-ai snowflake soniox stability strands_decider synthetic tencent tensormesh text-completion-codestral
    text-completion-inception text-completion-openai together_ai topaz transcribe triton typesafe v0 valkey
    vercel_ai_gateway vertex_ai vertex_ai_beta vllm volcengine voyage wandb watsonx watsonx_text xai xiaomi_mimo
    xinference zai""".split()  # noqa: SIM905
)
"""`litellm.provider_list` of the locked litellm, so routing needs no litellm import (a test keeps it in step)."""


@functools.cache
def litellm_module() -> ModuleType:
    """Import and configure litellm once: local price map, no telemetry, no debug banners, no HF downloads.

    The one write to `os.environ` in ML Intern: litellm reads this variable at import, and without it fetches
    its price map from the network. It is a default (a value the user set wins), set in this process only;
    subprocesses get the session's snapshot, taken before.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    litellm.drop_params = True
    litellm.disable_hf_tokenizer_download = True
    return litellm


@dataclass(frozen=True, slots=True)
class Route:
    """How a configured model id is called: by the direct OpenAI-compatible client or through litellm."""

    model: str
    """The id litellm is given (`openai/<id>` for an OpenAI-compatible server)."""
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    key_env: str | None = None
    """The variable the key comes from, named in auth errors."""
    info_ids: tuple[str, ...] = ()
    """Ids under which litellm's model map may know this model (context window, prices)."""
    client: Literal["openai", "litellm"] = "litellm"
    """"openai": the server speaks OpenAI's chat completions API and `openai_compat.py` calls it directly."""

    @property
    def wire_model(self) -> str:
        """The model name an OpenAI-compatible server is sent."""
        return self.model.removeprefix("openai/")


def resolve_route(cfg: AgentConfig, env: Mapping[str, str] | None = None) -> Route:
    """Route `cfg.model`; raises ConfigError for an id litellm cannot place, AuthError when the key is missing."""
    env = os.environ if env is None else env
    model, base_url, key_var = cfg.model.strip(), cfg.base_url, cfg.llm.api_key_env
    if base_url:
        check_base_url(base_url)
    if key_var and not env.get(key_var):
        raise AuthError(f"llm.api_key_env names {key_var}, but {key_var} is not set", hint=f"export {key_var}")
    if model.startswith("huggingface/"):
        return _hf_route(model, base_url, key_var, env)
    prefix = model.split("/", 1)[0] if "/" in model else ""
    if base_url and (prefix not in LITELLM_PROVIDERS or prefix == "openai"):
        key = env.get(key_var) if key_var else env.get("OPENAI_API_KEY")
        routed = model if prefix == "openai" else f"openai/{model}"
        return Route(routed, base_url, key or NO_KEY, key_var or "OPENAI_API_KEY", (routed, model), "openai")
    if prefix == "openai":
        return _openai_route(model, key_var, env)
    litellm = litellm_module()
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


def check_base_url(url: str) -> None:
    """Refuse a base_url that is not an http(s) URL at once, instead of failing on every retry."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as e:
        raise ConfigError(
            f"base_url {url!r} is not a valid URL ({e}); give the server's address, e.g. http://localhost:8000/v1"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base_url {url!r} is not an http(s) URL; give the server's address, e.g. http://localhost:8000/v1"
        )


def _openai_route(model: str, key_var: str | None, env: Mapping[str, str]) -> Route:
    key = env.get(key_var or "OPENAI_API_KEY")
    if not key:
        raise AuthError(f"{model} needs an API key: OPENAI_API_KEY is not set", hint="export OPENAI_API_KEY=...")
    base = env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_BASE") or OPENAI_API
    check_base_url(base)
    return Route(model, base, key, key_var or "OPENAI_API_KEY", (model,), "openai")


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
    info = (f"huggingface/{plain}", plain)
    return Route(f"openai/{repo}", base_url or HF_ROUTER, token, key_var or "HF_TOKEN", info, "openai")


def hf_token(env: Mapping[str, str]) -> str | None:
    """HF_TOKEN, HUGGING_FACE_HUB_TOKEN, else huggingface_hub's saved login."""
    token = env.get("HF_TOKEN") or env.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token.strip()
    from huggingface_hub import get_token

    return get_token()


def context_window_for(route: Route, override: int | None = None) -> int:
    """The override, else the map's max_input_tokens for the model (or the same weights elsewhere), else 128k.

    litellm routes ask litellm first (it normalises provider ids); OpenAI-compatible routes read the map directly.
    """
    if override:
        return override
    if route.client == "litellm":
        litellm = litellm_module()
        for model_id in route.info_ids:
            try:
                tokens = litellm.get_model_info(model_id).get("max_input_tokens")
            except Exception:  # litellm raises a bare Exception for unmapped models
                continue
            if tokens:
                return int(tokens)
    found = prices.max_input_tokens(route.info_ids) if route.client == "openai" else None
    return found or prices.same_weights_window(route.info_ids) or DEFAULT_CONTEXT_WINDOW
