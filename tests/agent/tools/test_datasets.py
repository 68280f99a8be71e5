"""The datasets family against the dataset viewer's documented bodies and errors."""

from __future__ import annotations

import httpx
import pytest
import respx

from agent.tools.base import ToolContext
from agent.tools.datasets import dataset_overview, dataset_rows, dataset_stats
from tests.agent.tools.conftest import call
from tests.remote_data import viewer, viewer_error

VIEWER = "https://datasets-server.huggingface.co"


def route(api: respx.MockRouter, endpoint: str, response: httpx.Response) -> respx.Route:
    return api.get(f"{VIEWER}/{endpoint}").mock(return_value=response)


async def test_overview_shows_splits_rows_features_and_parquet(ctx: ToolContext, api: respx.MockRouter) -> None:
    route(api, "is-valid", httpx.Response(200, json=viewer("is-valid")))
    route(api, "size", httpx.Response(200, json=viewer("size", example="dataset size")))
    route(api, "parquet", httpx.Response(200, json=viewer("parquet", example="ibm/duorc")))
    info = route(
        api, "info", httpx.Response(200, json={"dataset_info": viewer("info")["dataset_info"]["ylecun/mnist"]})
    )
    out = (await call(dataset_overview, ctx, dataset="ylecun/mnist")).output
    lines = out.splitlines()
    assert lines[0] == "ylecun/mnist · viewer: preview, viewer, search, filter, statistics"
    assert "  mnist/train: 60.0k rows (14.8 MB)" in lines and "  mnist/test: 10.0k rows (2.5 MB)" in lines
    assert "features (mnist): image: Image; label: ClassLabel[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in lines
    assert "parquet: 6 files, 56.0 MB" in lines
    assert info.calls.last.request.url.params["config"] == "mnist"


async def test_overview_falls_back_to_splits_when_sizes_are_not_ready(ctx: ToolContext, api: respx.MockRouter) -> None:
    route(api, "is-valid", httpx.Response(200, json=viewer("is-valid")))
    route(api, "size", viewer_error("size", 500, "response not ready", code="ResponseNotReadyError"))
    route(api, "parquet", viewer_error("parquet", 500, "unexpected error"))
    route(api, "splits", httpx.Response(200, json=viewer("splits", example="splits for a single subset")))
    route(
        api,
        "info",
        httpx.Response(200, json={"dataset_info": {"features": {"text": {"dtype": "string", "_type": "Value"}}}}),
    )
    out = (await call(dataset_overview, ctx, dataset="dair-ai/emotion")).output
    assert "  unsplit/train: ? rows (?)" in out and "features (unsplit): text: string" in out


async def test_a_dataset_the_viewer_cannot_read_points_to_its_files(ctx: ToolContext, api: respx.MockRouter) -> None:
    route(api, "is-valid", httpx.Response(200, json={k: False for k in viewer("is-valid")}))
    out = (await call(dataset_overview, ctx, dataset="o/raw")).output
    assert "cannot read this dataset; inspect its files with hub_repo and hub_file" in out


@pytest.mark.parametrize(
    ("endpoint", "status", "example", "code", "says"),
    [
        (
            "is-valid",
            401,
            "inexistent dataset, and not authenticated",
            None,
            "private/gated and HF_TOKEN has no access",
        ),
        ("is-valid", 401, "private dataset, and not authenticated or authorized", None, "private/gated"),
        ("is-valid", 404, "gated dataset, and not authenticated or authorized", None, "does not exist, or is private"),
        ("rows", 404, "inexistent split", "ResponseNotFound", "no such config or split"),
        ("statistics", 500, "response not ready", "ResponseNotReadyError", "has not processed"),
        (
            "statistics",
            500,
            "error in the dataset itself",
            "UnexpectedError",
            "(HTTPError); look at its files with hub_repo",
        ),
        ("statistics", 501, "blocked dataset", "DatasetInBlockListError", "does not serve"),
        ("rows", 422, "too-large-length", None, "Parameter 'length' must not be greater than 100"),
        ("rows", 500, "unexpected error", None, "the dataset viewer failed (500)"),
    ],
)
async def test_documented_viewer_errors_say_what_to_do(
    ctx: ToolContext, api: respx.MockRouter, endpoint: str, status: int, example: str, code: str | None, says: str
) -> None:
    route(api, endpoint, viewer_error(endpoint, status, example, code))
    tool = {"is-valid": dataset_overview, "rows": dataset_rows, "statistics": dataset_stats}[endpoint]
    args: dict[str, object] = {"dataset": "o/d"}
    if endpoint != "is-valid":
        args |= {"config": "c", "split": "train", **({"offset": 5} if endpoint == "rows" else {})}
    result = await call(tool, ctx, **args)
    assert result.is_error and says in result.output


async def test_a_plain_text_500_is_an_observation_too(ctx: ToolContext, api: respx.MockRouter) -> None:
    route(api, "is-valid", httpx.Response(500, text="Internal Server Error."))
    result = await call(dataset_overview, ctx, dataset="o/d")
    assert result.is_error and "the dataset viewer failed (500)" in result.output


async def test_rows_are_one_line_each_with_long_cells_cut(ctx: ToolContext, api: respx.MockRouter) -> None:
    rows = route(api, "rows", httpx.Response(200, json=viewer("rows")))
    out = (
        await call(dataset_rows, ctx, dataset="stanfordnlp/imdb", config="plain_text", split="train", offset=234)
    ).output
    lines = out.splitlines()
    assert lines[0].startswith("rows 234-") and "of 25.0k" in lines[0]
    assert (
        lines[1].startswith('#234 {"text": "Well, you know the rest!')
        and "…(" in lines[1]
        and '"label": 0}' in lines[1]
    )
    assert all(len(line) < 700 for line in lines)
    assert rows.calls.last.request.url.params["length"] == "5"


async def test_search_and_filter_use_their_endpoints(ctx: ToolContext, api: respx.MockRouter) -> None:
    search = route(api, "search", httpx.Response(200, json=viewer("search")))
    filt = route(api, "filter", httpx.Response(200, json=viewer("filter")))
    args = {"dataset": "o/d", "config": "default", "split": "train", "length": 500}
    await call(dataset_rows, ctx, search="dull", **args)
    out = (await call(dataset_rows, ctx, where="\"Sex\"='female'", **args)).output
    assert search.calls.last.request.url.params["query"] == "dull"
    assert search.calls.last.request.url.params["length"] == "100"  # the viewer's maximum
    assert filt.calls.last.request.url.params["where"] == "\"Sex\"='female'"
    assert out.splitlines()[1].startswith("#")


async def test_stats_show_label_balance_and_ranges(ctx: ToolContext, api: respx.MockRouter) -> None:
    glue = viewer("statistics", example="A split (nyu-mll/glue) with a string (text) column")
    route(api, "statistics", httpx.Response(200, json=glue))
    out = (await call(dataset_stats, ctx, dataset="nyu-mll/glue", config="ax", split="test")).output
    lines = out.splitlines()
    assert lines[0] == "nyu-mll/glue ax/test: 1.1k rows"
    assert "label (class_label) · 3 values: entailment=0, neutral=0, contradiction=0 · no label: 1104" in lines
    assert any(line.startswith("hypothesis (string_text) · min=11 · max=296") for line in lines)


async def test_malformed_viewer_bodies_are_observations_not_crashes(ctx: ToolContext, api: respx.MockRouter) -> None:
    route(api, "is-valid", httpx.Response(200, json=viewer("is-valid")))
    route(api, "size", httpx.Response(200, json={"size": ["not", "a", "dict"]}))
    route(api, "parquet", httpx.Response(200, json={"parquet_files": "nope"}))
    route(api, "splits", httpx.Response(200, json={"splits": None}))
    result = await call(dataset_overview, ctx, dataset="o/d")
    assert not result.is_error and result.output == "o/d: no splits found"
    route(api, "first-rows", httpx.Response(200, json=["a", "list"]))
    result = await call(dataset_rows, ctx, dataset="o/d", config="c", split="s")
    assert result.is_error and "unexpected answer for /first-rows" in result.output


async def test_the_first_rows_come_from_the_preview(ctx: ToolContext, api: respx.MockRouter) -> None:
    first = route(api, "first-rows", httpx.Response(200, json=viewer("first-rows", example="Truncated cells")))
    out = (await call(dataset_rows, ctx, dataset="ETDataset/ett", config="m2", split="test", length=2)).output
    lines = out.splitlines()
    assert lines[0] == "rows 0-1 of ?" and len(lines) == 3
    assert (
        lines[1].startswith('#0 {"start": "2016-07-01T00:00:00", "target": "[38.66') and '"item_id": "OT"' in lines[1]
    )
    assert dict(first.calls.last.request.url.params) == {"dataset": "ETDataset/ett", "config": "m2", "split": "test"}
