"""The hub family against recorded Hub responses (a gated model, a rename redirect) and documented conventions."""

from __future__ import annotations

import json

import httpx
import respx

from agent.tools.base import ToolContext
from agent.tools.hub import hub_file, hub_repo, hub_search
from tests.agent.tools.conftest import call
from tests.remote_data import hub_recording

HUB = "https://huggingface.co"


def recorded(response: dict) -> httpx.Response:  # type: ignore[type-arg]
    body = response["body"]
    kind = {"json": {"json": body}, "text": {"text": body}}[response["body_kind"]]
    return httpx.Response(response["status"], headers=response["headers_subset"], **kind)


async def test_search_lists_one_line_per_hit_with_the_asked_filters(ctx: ToolContext, api: respx.MockRouter) -> None:
    # No recorded list body exists; items carry the keys the list endpoint returns with `expand` (huggingface_hub).
    bert = hub_recording("models.get.bert-base-uncased.redirect-then-200")[1]["response"]["body"]
    llama = hub_recording("models.get.meta-llama__Llama-3.1-8B-Instruct.gated")[0]["response"]["body"]
    keys = ("id", "downloads", "likes", "lastModified", "pipeline_tag", "library_name", "gated", "private", "tags")
    route = api.get(f"{HUB}/api/models").respond(200, json=[{k: m[k] for k in keys} for m in (llama, bert)])
    args = {"query": "bert", "task": "fill-mask", "library": "transformers", "sort": "trending", "limit": 2}
    result = await call(hub_search, ctx, **args)
    lines = result.output.splitlines()
    assert lines[0] == (
        "meta-llama/Llama-3.1-8B-Instruct · text-generation · 5.8M dl · 3.8k likes · updated 2024-09-25"
        " · llama3.1 · gated (manual)"
    )
    assert lines[1].startswith("google-bert/bert-base-uncased · fill-mask · 72.4M dl") and "apache-2.0" in lines[1]
    params = route.calls.last.request.url.params
    assert params.get_list("expand")[:2] == ["downloads", "likes"]
    assert (params["search"], params["pipeline_tag"], params["filter"], params["sort"]) == (
        "bert",
        "fill-mask",
        "transformers",
        "trendingScore",
    )


async def test_search_of_datasets_filters_by_task_category(ctx: ToolContext, api: respx.MockRouter) -> None:
    item = {"id": "stanfordnlp/imdb", "downloads": 10, "likes": 2, "tags": ["task_categories:text-classification"]}
    route = api.get(f"{HUB}/api/datasets").respond(200, json=[item])
    result = await call(hub_search, ctx, kind="dataset", task="text-classification")
    assert result.output.startswith("stanfordnlp/imdb · text-classification · 10 dl")
    assert route.calls.last.request.url.params["filter"] == "task_categories:text-classification"
    api.get(f"{HUB}/api/datasets").respond(200, json=[])
    assert "no datasets match" in (await call(hub_search, ctx, kind="dataset", query="zzz")).output


async def test_repo_follows_a_rename_and_shows_config_files_and_card(ctx: ToolContext, api: respx.MockRouter) -> None:
    moved, final = hub_recording("models.get.bert-base-uncased.redirect-then-200")
    body = final["response"]["body"]
    body["siblings"] = [{"rfilename": "README.md", "size": 10_000}, {"rfilename": "config.json", "size": 570}]
    api.get(f"{HUB}/api/models/bert-base-uncased").mock(return_value=recorded(moved["response"]))
    second = api.get(f"{HUB}/api/models/google-bert/bert-base-uncased").mock(return_value=recorded(final["response"]))
    base = f"{HUB}/google-bert/bert-base-uncased/resolve/main"
    config = {"architectures": ["BertForMaskedLM"], "max_position_embeddings": 512, "torch_dtype": "float32"}
    api.get(f"{base}/config.json").respond(200, json=config)
    card = "---\nlicense: apache-2.0\n---\n# BERT base\n\nPretrained on English."
    api.get(f"{base}/README.md").respond(200, text=card)
    out = (await call(hub_repo, ctx, repo_id="bert-base-uncased")).output
    assert out.startswith("model google-bert/bert-base-uncased · fill-mask")
    assert "config.json: architectures=BertForMaskedLM, max_position_embeddings=512, torch_dtype=float32" in out
    assert "files: 2, 10.3 kB in total" in out and "  config.json  570 B" in out
    assert out.endswith("card:\n# BERT base\n\nPretrained on English.")
    assert second.calls.last.request.url.params["blobs"] == "true"


async def test_a_gated_model_shows_metadata_and_how_to_get_access(ctx: ToolContext, api: respx.MockRouter) -> None:
    (exchange,) = hub_recording("models.get.meta-llama__Llama-3.1-8B-Instruct.gated")
    api.get(f"{HUB}/api/models/meta-llama/Llama-3.1-8B-Instruct").mock(return_value=recorded(exchange["response"]))
    base = f"{HUB}/meta-llama/Llama-3.1-8B-Instruct/resolve/main"
    gated = httpx.Response(403, headers={"X-Error-Code": "GatedRepo"}, json={"error": "Access to model is restricted"})
    api.get(f"{base}/config.json").mock(return_value=gated)
    api.get(f"{base}/README.md").mock(return_value=gated)
    out = (await call(hub_repo, ctx, repo_id="meta-llama/Llama-3.1-8B-Instruct")).output
    assert "gated (manual)" in out.splitlines()[0] and "parameters: 8.0B" in out
    assert "config.json: not readable (gated" in out
    result = await call(hub_file, ctx, repo_id="meta-llama/Llama-3.1-8B-Instruct", path="config.json")
    assert result.is_error and result.output.startswith("gated repo: request access on its Hub page")


async def test_missing_repos_and_files_say_what_to_check(ctx: ToolContext, api: respx.MockRouter) -> None:
    api.get(f"{HUB}/api/datasets/nobody/nothing").respond(
        401, headers={"X-Error-Code": "RepoNotFound"}, json={"error": "Repository not found"}
    )
    result = await call(hub_repo, ctx, repo_id="nobody/nothing", kind="dataset")
    assert result.is_error and "repo not found, or private and HF_TOKEN has no access" in result.output
    api.get(f"{HUB}/org/m/resolve/main/nope.txt").respond(404, headers={"X-Error-Code": "EntryNotFound"})
    result = await call(hub_file, ctx, repo_id="org/m", path="nope.txt")
    assert result.is_error and "no such file in this repo" in result.output
    for bad in ("not a repo id!", "a/b/c", "../x", "org/.."):
        assert "is not a repo id" in (await call(hub_repo, ctx, repo_id=bad)).output


async def test_file_reads_are_windowed_notebooks_shown_as_cells_and_binaries_refused(
    ctx: ToolContext, api: respx.MockRouter
) -> None:
    text = "\n".join(f"line {i}" for i in range(1, 501))
    api.get(f"{HUB}/datasets/o/d/resolve/main/data.csv").respond(200, text=text)
    out = (await call(hub_file, ctx, repo_id="o/d", kind="dataset", path="data.csv", offset=10, limit=3)).output
    assert out == "10  line 10\n11  line 11\n12  line 12\n[data.csv: lines 10-12 of 500; more with offset=13]"
    nb = {"cells": [{"cell_type": "markdown", "source": ["# Train"]}, {"cell_type": "code", "source": "import trl"}]}
    api.get(f"{HUB}/spaces/o/s/resolve/main/demo.ipynb").respond(200, text=json.dumps(nb))
    out = (await call(hub_file, ctx, repo_id="o/s", kind="space", path="demo.ipynb")).output
    assert "# %% [markdown] cell 1" in out and "# %% [code] cell 2" in out and "import trl" in out
    api.get(f"{HUB}/o/m/resolve/main/model.safetensors").respond(200, content=b"\x00\x01" * 100)
    out = (await call(hub_file, ctx, repo_id="o/m", path="model.safetensors")).output
    assert "binary file" in out
    past = await call(hub_file, ctx, repo_id="o/d", kind="dataset", path="data.csv", offset=900)
    assert past.is_error and "past the end" in past.output
