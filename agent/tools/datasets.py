"""The datasets family: a Hub dataset through the dataset viewer API (splits, sizes, features, rows, statistics)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agent.errors import ToolError
from agent.tools.base import Effect, ToolContext, tool
from agent.tools.families import Family
from agent.tools.hub import check_repo
from agent.tools.remote import HubHTTP, Reply
from agent.tools.render import BUDGET, clip, count, size

CELL_CHARS = 200
_VIEWER_ERRORS = (401, 403, 404, 422, 500, 501)


async def viewer(hub: HubHTTP, endpoint: str, dataset: str, **params: Any) -> dict[str, Any]:
    """GET a viewer endpoint; its documented errors become observations that say what to do."""
    query = {"dataset": dataset, **{k: v for k, v in params.items() if v not in (None, "")}}
    reply = await hub.get(f"{hub.viewer}/{endpoint}", query, ok=_VIEWER_ERRORS)
    if reply.status != 200:
        raise ToolError(explain(reply, dataset, hub.token is not None))
    data = reply.json()
    if not isinstance(data, dict):
        raise ToolError(f"the dataset viewer sent an unexpected answer for /{endpoint}; try again later")
    return data


def explain(reply: Reply, dataset: str, has_token: bool) -> str:
    """The dataset viewer's documented failures, as what the model should do next."""
    code, said = reply.headers.get("x-error-code", ""), reply.error_message()
    if code == "ResponseNotReadyError":
        return f"the dataset viewer has not processed {dataset} yet; retry in a minute or read its files with hub_file"
    if code in ("DatasetInBlockListError", "DatasetWithTooManyConfigsError") or reply.status == 501:
        return f"the dataset viewer does not serve {dataset} ({said or code}); read its files with hub_repo/hub_file"
    if reply.status in (401, 403) or (reply.status == 404 and said != "Not found."):
        if has_token:
            return f"{dataset} does not exist, or is private/gated and HF_TOKEN has no access; check the id"
        return f"{dataset} does not exist, or is private/gated and no HF_TOKEN is set; check the id or set HF_TOKEN"
    if reply.status == 404:
        return f"no such config or split in {dataset}; list them with dataset_overview"
    if reply.status == 422:
        return f"the dataset viewer rejected the arguments: {said}"
    cause = _cause(reply)
    if reply.status == 500 and cause:
        return f"the dataset viewer cannot read {dataset}: {clip(said, 200)} ({cause}); look at its files with hub_repo"
    return f"the dataset viewer failed ({reply.status}); try again later or read the files with hub_file"


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[dict[str, Any]]:
    """The dict items of a list (anything else in a malformed body is skipped)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _cause(reply: Reply) -> str:
    try:
        data = json.loads(reply.body)
    except ValueError:
        return ""
    return str(data.get("cause_exception") or "") if isinstance(data, dict) else ""


def feature_type(spec: object) -> str:
    """A viewer/datasets feature spec in a few characters."""
    if not isinstance(spec, dict):
        return "list" if isinstance(spec, list) else str(spec)
    kind = spec.get("_type")
    if kind == "ClassLabel":
        names = spec.get("names") or []
        return f"ClassLabel[{', '.join(map(str, names[:10]))}{', …' if len(names) > 10 else ''}]"
    if kind == "Value":
        return str(spec.get("dtype"))
    if kind in ("List", "Sequence", "LargeList"):
        return f"list[{feature_type(spec.get('feature'))}]"
    if kind is None:
        return "{" + ", ".join(f"{k}: {feature_type(v)}" for k, v in spec.items()) + "}"
    return str(kind)


async def _maybe(coro: Any) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = await coro
    except ToolError:
        return None
    return result


@tool(effects=[Effect.READ, Effect.NETWORK])
async def dataset_overview(ctx: ToolContext, dataset: str, config: str = "") -> str:
    """Check a Hub dataset before use: configs and splits with row counts, features (labels), parquet files.

    Args:
        config: Subset; all when empty.
    """
    hub, dataset = ctx.deps.get(HubHTTP), check_repo(dataset)
    valid = await viewer(hub, "is-valid", dataset)
    able = [k for k in ("preview", "viewer", "search", "filter", "statistics") if valid.get(k)]
    if not able:
        return f"{dataset}: the dataset viewer cannot read this dataset; inspect its files with hub_repo and hub_file"
    sizes, parquet = await asyncio.gather(
        _maybe(viewer(hub, "size", dataset, config=config)), _maybe(viewer(hub, "parquet", dataset, config=config))
    )
    splits = _list(_dict(_dict(sizes).get("size")).get("splits"))
    if not splits:
        splits = _list((await viewer(hub, "splits", dataset, config=config)).get("splits"))
    if not splits:
        return f"{dataset}: no splits found{f' in config {config!r}' if config else ''}"
    lines = [f"{dataset} · viewer: {', '.join(able)}", "config/split: rows (parquet size)"]
    for s in splits[:30]:
        rows, parquet_bytes = count(s.get("num_rows")), size(s.get("num_bytes_parquet_files"))
        lines.append(f"  {s.get('config')}/{s.get('split')}: {rows} rows ({parquet_bytes})")
    first = config or str(splits[0].get("config"))
    info = _dict((await viewer(hub, "info", dataset, config=first)).get("dataset_info"))
    features = _dict(info.get("features"))
    if features:
        lines.append(f"features ({first}): " + "; ".join(f"{k}: {feature_type(v)}" for k, v in features.items()))
    if info.get("license"):
        lines.append(f"license: {clip(info['license'], 100)}")
    files = _list(_dict(parquet).get("parquet_files"))
    if files:
        lines.append(f"parquet: {len(files)} files, {size(sum(f.get('size') or 0 for f in files))}")
        lines += [f"  {f.get('config')}/{f.get('split')} {size(f.get('size'))} {f.get('url')}" for f in files[:10]]
    if _dict(sizes).get("partial") or _dict(parquet).get("partial"):
        lines.append("(partial: the viewer converted only part of this large dataset)")
    return "\n".join(lines)


def row_line(row: dict[str, Any]) -> str:
    cells = row.get("row") if isinstance(row.get("row"), dict) else {}
    assert isinstance(cells, dict)
    shown: dict[str, Any] = {}
    for k, v in cells.items():
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        shown[k] = v if len(text) <= CELL_CHARS else f"{text[:CELL_CHARS]}…({len(text)} chars)"
    return f"#{row.get('row_idx')} {json.dumps(shown, ensure_ascii=False)}"


@tool(effects=[Effect.READ, Effect.NETWORK])
async def dataset_rows(
    ctx: ToolContext,
    dataset: str,
    config: str,
    split: str,
    offset: int = 0,
    length: int = 5,
    search: str = "",
    where: str = "",
) -> str:
    """Rows of a split from `offset`, one per line; `search` for full-text search, `where` for an SQL filter like
    "label"=1."""
    hub, dataset = ctx.deps.get(HubHTTP), check_repo(dataset)
    length, offset = max(1, min(length, 100)), max(0, offset)
    args = {"config": config, "split": split, "offset": offset, "length": length}
    if search:
        data = await viewer(hub, "search", dataset, query=search, **args)
    elif where:
        data = await viewer(hub, "filter", dataset, where=where, **args)
    elif offset == 0:  # served as soon as the viewer has a preview, before any parquet conversion
        data = await viewer(hub, "first-rows", dataset, config=config, split=split)
    else:
        data = await viewer(hub, "rows", dataset, **args)
    rows = _list(data.get("rows"))[:length]
    total = data.get("num_rows_total")
    if not rows:
        return f"no rows (offset {offset}, {total if total is not None else '?'} rows in total)"
    lines: list[str] = []
    for row in rows:
        line = row_line(row)
        if lines and sum(map(len, lines)) + len(line) > BUDGET:
            break
        lines.append(line)
    last = offset + len(lines) - 1
    more = f"; more with offset={last + 1}" if len(lines) < len(rows) else ""
    head = f"rows {offset}-{last} of {count(total)}" + (" (partial)" if data.get("partial") else "") + more
    return "\n".join([head, *lines])


def stat_line(column: dict[str, Any]) -> str:
    s = column.get("column_statistics") if isinstance(column.get("column_statistics"), dict) else {}
    assert isinstance(s, dict)
    parts = [f"{column.get('column_name')} ({column.get('column_type')})"]
    if "frequencies" in s and isinstance(s["frequencies"], dict):
        top = sorted(s["frequencies"].items(), key=lambda kv: -kv[1] if isinstance(kv[1], int) else 0)[:10]
        parts.append(f"{s.get('n_unique', len(s['frequencies']))} values: " + ", ".join(f"{k}={v}" for k, v in top))
        if s.get("no_label_count"):
            parts.append(f"no label: {s['no_label_count']}")
    for key in ("min", "max", "mean", "median", "std"):
        if s.get(key) is not None:
            parts.append(f"{key}={s[key]}")
    if s.get("nan_count"):
        parts.append(f"nulls={s['nan_count']} ({s.get('nan_proportion')})")
    return " · ".join(parts)


@tool(effects=[Effect.READ, Effect.NETWORK])
async def dataset_stats(ctx: ToolContext, dataset: str, config: str, split: str) -> str:
    """Column statistics of a split: label balance, text lengths, numeric ranges, nulls."""
    hub, dataset = ctx.deps.get(HubHTTP), check_repo(dataset)
    data = await viewer(hub, "statistics", dataset, config=config, split=split)
    columns = _list(data.get("statistics"))
    head = f"{dataset} {config}/{split}: {count(data.get('num_examples'))} rows" + (
        " (partial)" if data.get("partial") else ""
    )
    return "\n".join([head, *(stat_line(c) for c in columns[:60])])


FAMILY = Family("datasets", (dataset_overview, dataset_rows, dataset_stats), needs=(HubHTTP,))

__all__ = ["FAMILY", "dataset_overview", "dataset_rows", "dataset_stats"]
