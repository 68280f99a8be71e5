"""The hub family: search models, datasets and Spaces; a repo's card, files and config; any file of a repo."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from agent.errors import ToolError
from agent.tools.base import Effect, ToolContext, tool
from agent.tools.families import Family
from agent.tools.remote import HubHTTP, Reply
from agent.tools.render import clip, count, day, is_binary, notebook, size, window

Kind = Literal["model", "dataset", "space"]
Sort = Literal["downloads", "likes", "trending", "updated"]

REPO_ID = re.compile(r"^[\w.-]{1,96}(/[\w.-]{1,96})?$")
_SORT = {"downloads": "downloads", "likes": "likes", "trending": "trendingScore", "updated": "lastModified"}
_EXPAND = {
    "model": ["downloads", "likes", "lastModified", "pipeline_tag", "library_name", "gated", "private", "tags"],
    "dataset": ["downloads", "likes", "lastModified", "gated", "private", "tags"],
    "space": ["likes", "lastModified", "sdk", "private", "tags"],
}
_CONFIG_KEYS = ("model_type", "torch_dtype", "dtype", "hidden_size", "num_hidden_layers", "vocab_size")
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx", "sliding_window")
FILES_SHOWN = 40
CARD_CHARS = 1500
FILE_BYTES = 1 << 20


def check_repo(repo_id: str) -> str:
    repo_id = repo_id.strip().strip("/")
    for prefix in ("https://huggingface.co/", "datasets/", "spaces/"):
        repo_id = repo_id.removeprefix(prefix)
    if not REPO_ID.match(repo_id) or any(part in (".", "..") for part in repo_id.split("/")):
        raise ToolError(f"{repo_id!r} is not a repo id; use owner/name, e.g. 'google-bert/bert-base-uncased'")
    return repo_id


def tag_value(tags: object, key: str) -> str | None:
    """'license' in ['license:mit', ...] → 'mit'."""
    if isinstance(tags, list):
        for t in tags:
            if isinstance(t, str) and t.startswith(f"{key}:"):
                return t.split(":", 1)[1]
    return None


def hit_line(kind: str, item: dict[str, Any]) -> str:
    """One search hit: id, task, downloads, likes, updated, licence, gated."""
    tags = item.get("tags")
    task = item.get("pipeline_tag") or tag_value(tags, "task_categories") or item.get("sdk")
    parts = [str(item.get("id", "?"))]
    if task:
        parts.append(str(task))
    if kind != "space":
        parts.append(f"{count(item.get('downloads'))} dl")
    parts += [f"{count(item.get('likes'))} likes", f"updated {day(item.get('lastModified'))}"]
    if lic := tag_value(tags, "license"):
        parts.append(lic)
    if item.get("gated"):
        parts.append(f"gated ({item['gated']})" if isinstance(item["gated"], str) else "gated")
    if item.get("private"):
        parts.append("private")
    return " · ".join(parts)


def as_list(data: object, what: str) -> list[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise ToolError(f"unexpected answer for {what} (expected a list); try again later")
    return data


@tool(effects=[Effect.READ, Effect.NETWORK])
async def hub_search(
    ctx: ToolContext,
    query: str = "",
    kind: Kind = "model",
    task: str = "",
    library: str = "",
    author: str = "",
    sort: Sort = "downloads",
    limit: int = 10,
) -> str:
    """Search Hub models, datasets or Spaces; one line per hit.

    Args:
        query: Words in the repo name.
        task: e.g. text-classification.
        library: e.g. transformers, peft.
    """
    hub = ctx.deps.get(HubHTTP)
    limit = max(1, min(limit, 50))
    params: list[tuple[str, Any]] = [("limit", limit), ("direction", -1)]
    params.append(("sort", _SORT["likes" if kind == "space" and sort == "downloads" else sort]))
    params += [("expand", e) for e in _EXPAND[kind]]
    if query:
        params.append(("search", query))
    if author:
        params.append(("author", author))
    if task:
        params.append(("pipeline_tag", task) if kind == "model" else ("filter", f"task_categories:{task}"))
    if library:
        params.append(("filter", library))
    items = as_list(await hub.json(f"{hub.endpoint}/api/{kind}s", params), f"{kind} search")
    if not items:
        return f"no {kind}s match; try fewer filters or other words"
    return "\n".join(hit_line(kind, item) for item in items[:limit])


def _prefix(kind: str) -> str:
    return {"model": "", "dataset": "datasets/", "space": "spaces/"}[kind]


async def _optional(hub: HubHTTP, url: str) -> Reply | None:
    """A file that may be missing or gated: None instead of an error."""
    try:
        reply = await hub.get(url, max_bytes=64 << 10, ok=(401, 403, 404))
    except ToolError:
        return None
    return reply if reply.status == 200 else None


def card_summary(text: str) -> str:
    """The README without its YAML header, cut to CARD_CHARS."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        text = text[end + 4 :] if end != -1 else text
    text = re.sub(r"<[^>]+>|!\[[^\]]*\]\([^)]*\)", "", text).strip()
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text if len(text) <= CARD_CHARS else text[:CARD_CHARS] + "… (read README.md with hub_file for more)"


def config_line(config: dict[str, Any]) -> str:
    parts = []
    if arch := config.get("architectures"):
        parts.append(f"architectures={','.join(map(str, arch)) if isinstance(arch, list) else arch}")
    parts += [f"{k}={config[k]}" for k in _CONTEXT_KEYS + _CONFIG_KEYS if config.get(k) is not None]
    return "config.json: " + (", ".join(parts) if parts else "no standard keys")


def header_lines(kind: str, info: dict[str, Any]) -> list[str]:
    card = info.get("cardData") if isinstance(info.get("cardData"), dict) else {}
    assert isinstance(card, dict)
    lines = [f"{kind} {hit_line(kind, info)}"]
    facts = {
        "library": info.get("library_name"),
        "sdk": info.get("sdk"),
        "parameters": count((info.get("safetensors") or {}).get("total")) if info.get("safetensors") else None,
        "base model": card.get("base_model"),
        "datasets": card.get("datasets"),
        "languages": card.get("language"),
        "size": card.get("size_categories"),
        "arxiv": ", ".join(t[6:] for t in info.get("tags") or [] if isinstance(t, str) and t.startswith("arxiv:")),
    }
    runtime = info.get("runtime")
    if isinstance(runtime, dict):
        facts["runtime"] = f"{runtime.get('stage')} on {(runtime.get('hardware') or {}).get('current')}"
    for key, value in facts.items():
        if value:
            lines.append(f"{key}: {clip(', '.join(map(str, value)) if isinstance(value, list) else value, 200)}")
    return lines


def file_lines(siblings: object) -> list[str]:
    files = [s for s in siblings if isinstance(s, dict)] if isinstance(siblings, list) else []
    total = sum(s.get("size") or 0 for s in files)
    shown = f" (first {FILES_SHOWN})" if len(files) > FILES_SHOWN else ""
    lines = [f"files: {len(files)}, {size(total)} in total{shown}"]
    lines += [f"  {s.get('rfilename')}  {size(s.get('size'))}" for s in files[:FILES_SHOWN]]
    return lines


@tool(effects=[Effect.READ, Effect.NETWORK])
async def hub_repo(ctx: ToolContext, repo_id: str, kind: Kind = "model") -> str:
    """A Hub repo's metadata, access (gated/private), card summary, config.json essentials and files with sizes."""
    hub, repo_id = ctx.deps.get(HubHTTP), check_repo(repo_id)
    info = (await hub.get(f"{hub.endpoint}/api/{kind}s/{repo_id}", {"blobs": "true"})).json()
    if not isinstance(info, dict) or "id" not in info:
        raise ToolError(f"unexpected answer for {kind} {repo_id}; try again later")
    repo_id = str(info["id"])  # renamed repos redirect to their new id
    base = f"{hub.endpoint}/{_prefix(kind)}{repo_id}/resolve/main"
    names = {s.get("rfilename") for s in info.get("siblings") or [] if isinstance(s, dict)}
    readme, config = await asyncio.gather(
        _optional(hub, f"{base}/README.md") if "README.md" in names else _none(),
        _optional(hub, f"{base}/config.json") if kind == "model" and "config.json" in names else _none(),
    )
    lines = header_lines(kind, info)
    if config is not None:
        data = config.json()
        lines.append(config_line(data) if isinstance(data, dict) else "config.json: not an object")
    elif info.get("gated") and kind == "model":
        lines.append("config.json: not readable (gated; request access on the Hub with the HF_TOKEN account)")
    lines += file_lines(info.get("siblings"))
    if readme is not None:
        lines += ["card:", card_summary(readme.text)]
    return "\n".join(lines)


async def _none() -> None:
    return None


@tool(effects=[Effect.READ, Effect.NETWORK])
async def hub_file(
    ctx: ToolContext,
    repo_id: str,
    path: str,
    kind: Kind = "model",
    revision: str = "main",
    offset: int = 1,
    limit: int = 200,
) -> str:
    """Read a text file of a Hub repo: numbered lines from `offset`, notebooks as cells."""
    hub, repo_id = ctx.deps.get(HubHTTP), check_repo(repo_id)
    path = path.strip().lstrip("/")
    if not path or ".." in path.split("/"):
        raise ToolError("path must be a file path inside the repo, e.g. 'README.md'")
    if not re.fullmatch(r"[\w./-]{1,200}", revision):
        raise ToolError("revision must be a branch, tag or commit hash")
    reply = await hub.get(f"{hub.endpoint}/{_prefix(kind)}{repo_id}/resolve/{revision}/{path}", max_bytes=FILE_BYTES)
    if is_binary(reply.body):
        return f"{path} is a binary file ({reply.headers.get('content-length', '?')} bytes); not shown"
    text = notebook(reply.text) if path.endswith(".ipynb") else reply.text
    note = f"\n[only the first {size(FILE_BYTES)} were read]" if reply.truncated else ""
    try:
        return window(text, max(offset, 1), max(1, min(limit, 1000)), name=path) + note
    except ValueError as e:
        raise ToolError(str(e)) from None


FAMILY = Family("hub", (hub_search, hub_repo, hub_file), needs=(HubHTTP,))

__all__ = ["FAMILY", "hub_file", "hub_repo", "hub_search"]
