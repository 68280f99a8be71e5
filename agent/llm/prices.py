"""Context windows and prices from litellm's bundled model map, read as JSON without importing litellm.

`import litellm` costs seconds and ~180 MiB; its map is one JSON file in the package (~3 MB, ~20 ms to load,
~5 MiB held). This is the same map litellm uses here (`LITELLM_LOCAL_MODEL_COST_MAP=True`, set by
`routing.litellm_module`). Prices cover the common case: input, cached input and output tokens; tiered or
per-request pricing that only litellm's cost code knows is not applied (`llm.usd_per_million` overrides).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent.messages import Usage

logger = logging.getLogger(__name__)

MAP_FILE = "model_prices_and_context_window_backup.json"


@functools.cache
def model_map() -> dict[str, dict[str, Any]]:
    """litellm's model map ({} when litellm is not installed or the file cannot be read)."""
    spec = importlib.util.find_spec("litellm")  # finds the package without importing it
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / MAP_FILE
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError) as e:
            logger.debug("cannot read %s: %s", path, e)
            continue
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if isinstance(v, dict)}
    return {}


def lookup(model_ids: Iterable[str]) -> dict[str, Any] | None:
    """The map's entry for the first id it knows, also trying each id without its `openai/` prefix."""
    known = model_map()
    for model_id in model_ids:
        for candidate in (model_id, model_id.removeprefix("openai/")):
            if entry := known.get(candidate):
                return entry
    return None


def max_input_tokens(model_ids: Iterable[str]) -> int | None:
    """Input tokens of the first id the map knows with a size."""
    for model_id in model_ids:
        entry = lookup([model_id])
        if entry and entry.get("max_input_tokens"):
            return int(entry["max_input_tokens"])
    return None


def same_weights_window(model_ids: Iterable[str]) -> int | None:
    """The smallest window listed for the same `<org>/<model>` under any provider (e.g. together_ai/...)."""
    tails = {"/" + "/".join(i.split(":", 1)[0].lower().split("/")[-2:]) for i in model_ids if "/" in i}
    if not tails:
        return None
    sizes = [
        int(v["max_input_tokens"])
        for k, v in model_map().items()
        if v.get("max_input_tokens") and any(k.lower().endswith(t) for t in tails)
    ]
    return min(sizes) if sizes else None


def cost(model_id: str, usage: Usage) -> float:
    """USD for this usage at the map's per-token prices (cached prompt tokens at the cache-read price); 0 if
    the model is not priced."""
    entry = lookup([model_id])
    if not entry:
        return 0.0
    try:
        prompt, output = float(entry.get("input_cost_per_token") or 0), float(entry.get("output_cost_per_token") or 0)
        cached_price = entry.get("cache_read_input_token_cost")
        cached_price = prompt if cached_price is None else float(cached_price)
    except (TypeError, ValueError):
        return 0.0
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    return (usage.prompt_tokens - cached) * prompt + cached * cached_price + usage.completion_tokens * output


__all__ = ["cost", "lookup", "max_input_tokens", "model_map", "same_weights_window"]
