"""The papers family. No recorded papers body exists: HF bodies carry the keys huggingface_hub's `PaperInfo` reads
(search and daily items nest the paper under `paper`); the arXiv body is an Atom feed as its API documents."""

from __future__ import annotations

import httpx
import respx

from agent.tools.base import ToolContext
from agent.tools.papers import paper_read, paper_search
from tests.agent.tools.conftest import call

HUB = "https://huggingface.co"
LORA = {
    "id": "2106.09685",
    "title": "LoRA: Low-Rank Adaptation of Large Language Models",
    "authors": [{"name": "Edward J. Hu", "hidden": False}, {"name": "Yelong Shen", "hidden": False}],
    "publishedAt": "2021-06-17T17:37:18.000Z",
    "summary": "An important paradigm of natural language processing consists of large-scale pre-training...",
    "upvotes": 112,
    "discussionId": "64a1",
    "githubRepo": "https://github.com/microsoft/LoRA",
    "githubStars": 12000,
    "ai_keywords": ["low-rank adaptation", "fine-tuning"],
}
ATOM = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom">
  <title type="html">ArXiv Query: search_query=all:lora</title>
  <entry>
    <id>http://arxiv.org/abs/2106.09685v2</id>
    <published>2021-06-17T17:37:18Z</published>
    <title>LoRA: Low-Rank Adaptation of
      Large Language Models</title>
    <summary>  An important paradigm of natural language processing consists of
 large-scale pre-training.</summary>
    <author><name>Edward J. Hu</name></author>
    <author><name>Yelong Shen</name></author>
    <arxiv:primary_category term="cs.CL" scheme="http://arxiv.org/schemas/atom"/>
  </entry>
</feed>"""


def lists_empty(api: respx.MockRouter) -> dict[str, respx.Route]:
    return {kind: api.get(f"{HUB}/api/{kind}s").respond(200, json=[]) for kind in ("model", "dataset", "space")}


async def test_search_on_hf_and_daily_papers(ctx: ToolContext, api: respx.MockRouter) -> None:
    item = {"paper": LORA, "title": LORA["title"], "numComments": 3}
    search = api.get(f"{HUB}/api/papers/search").respond(200, json=[item])
    out = (await call(paper_search, ctx, query="low rank adaptation", limit=3)).output
    assert out == "2106.09685 · LoRA: Low-Rank Adaptation of Large Language Models · 2021-06-17 · 112 upvotes"
    assert dict(search.calls.last.request.url.params) == {"q": "low rank adaptation", "limit": "3"}
    daily = api.get(f"{HUB}/api/daily_papers").respond(200, json=[{"paper": LORA, "submittedOnDailyAt": "x"}])
    out = (await call(paper_search, ctx, date="2025-01-31")).output
    assert out.startswith("2106.09685 · LoRA") and daily.calls.last.request.url.params["date"] == "2025-01-31"
    assert "date must look like" in (await call(paper_search, ctx, date="yesterday")).output


async def test_search_on_arxiv_parses_its_atom_feed(ctx: ToolContext, api: respx.MockRouter) -> None:
    route = api.get("https://export.arxiv.org/api/query").respond(200, text=ATOM)
    out = (await call(paper_search, ctx, query="lora", source="arxiv", limit=2)).output
    assert out == "2106.09685 · LoRA: Low-Rank Adaptation of Large Language Models · 2021-06-17 · cs.CL"
    assert route.calls.last.request.url.params["search_query"] == "all:lora"
    api.get("https://export.arxiv.org/api/query").respond(200, text="<feed")
    assert "malformed answer (not Atom XML)" in (await call(paper_search, ctx, query="x", source="arxiv")).output


async def test_read_shows_abstract_links_and_citing_repos(ctx: ToolContext, api: respx.MockRouter) -> None:
    api.get(f"{HUB}/api/papers/2106.09685").respond(200, json=LORA)
    routes = lists_empty(api)
    routes["model"] = api.get(f"{HUB}/api/models").respond(
        200, json=[{"id": "org/lora-model", "downloads": 1500, "likes": 3, "pipeline_tag": "text-generation"}]
    )
    out = (await call(paper_read, ctx, arxiv_id="https://arxiv.org/abs/2106.09685")).output
    assert out.startswith("2106.09685 · LoRA: Low-Rank Adaptation of Large Language Models\nauthors: Edward J. Hu")
    assert "code: https://github.com/microsoft/LoRA (12.0k stars)" in out
    assert "abstract: An important paradigm" in out
    assert "models citing it (top 1):\n  org/lora-model · text-generation · 1.5k dl" in out
    assert "datasets citing it: none on the Hub" in out
    assert routes["model"].calls.last.request.url.params["filter"] == "arxiv:2106.09685"


async def test_a_paper_missing_on_hf_is_read_from_arxiv(ctx: ToolContext, api: respx.MockRouter) -> None:
    api.get(f"{HUB}/api/papers/2106.09685").respond(404, json={"error": "Paper not found"})
    arxiv = api.get("https://export.arxiv.org/api/query").respond(200, text=ATOM)
    lists_empty(api)
    api.get(f"{HUB}/api/spaces").respond(503)
    out = (await call(paper_read, ctx, arxiv_id="2106.09685")).output
    assert out.startswith("2106.09685 · LoRA: Low-Rank Adaptation of Large Language Models (arXiv; not on Hugging Face")
    assert arxiv.calls.last.request.url.params["id_list"] == "2106.09685"
    assert "spaces citing it: not available (Hugging Face failed (503)" in out


async def test_bad_ids_and_unknown_papers(ctx: ToolContext, api: respx.MockRouter) -> None:
    assert "is not an arXiv id" in (await call(paper_read, ctx, arxiv_id="lora")).output
    api.get(f"{HUB}/api/papers/2401.00001").respond(404)
    api.get("https://export.arxiv.org/api/query").respond(200, text="<feed xmlns='http://www.w3.org/2005/Atom'/>")
    result = await call(paper_read, ctx, arxiv_id="2401.00001")
    assert result.is_error and "neither on Hugging Face nor on arXiv" in result.output
    api.get(f"{HUB}/api/papers/search").mock(return_value=httpx.Response(200, json={"not": "a list"}))
    assert "unexpected answer for papers" in (await call(paper_search, ctx, query="x")).output
