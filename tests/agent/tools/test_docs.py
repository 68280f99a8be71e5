"""The docs family. Search hits have the shape the Hub's own MCP server reads from `/api/docs/search`."""

from __future__ import annotations

import respx

from agent.tools.base import ToolContext
from agent.tools.docs import docs_read, docs_search, html_text
from tests.agent.tools.conftest import call

HUB = "https://huggingface.co"
HITS = [
    {
        "text": "The <code>SFTTrainer</code> supports packing via <b>SFTConfig(packing=True)</b>.",
        "product": "trl",
        "heading1": "SFT Trainer",
        "heading2": "Packing",
        "source_page_url": "https://huggingface.co/docs/trl/sft_trainer#packing",
        "source_page_title": "Sft_trainer",
    },
    {
        "text": "Trainer is a complete training loop.",
        "product": "transformers",
        "heading1": "Trainer",
        "source_page_url": "https://huggingface.co/docs/transformers/main_classes/trainer",
        "source_page_title": "Trainer",
    },
]


async def test_search_gives_one_line_per_hit(ctx: ToolContext, api: respx.MockRouter) -> None:
    route = api.get(f"{HUB}/api/docs/search").respond(200, json=HITS)
    out = (await call(docs_search, ctx, query="SFT Packing", product="trl")).output
    assert out.splitlines() == [
        "trl › SFT Trainer › Packing · https://huggingface.co/docs/trl/sft_trainer#packing"
        " · The SFTTrainer supports packing via SFTConfig(packing=True).",
        "transformers › Trainer · https://huggingface.co/docs/transformers/main_classes/trainer"
        " · Trainer is a complete training loop.",
    ]
    assert dict(route.calls.last.request.url.params) == {"q": "sft packing", "product": "trl"}
    api.get(f"{HUB}/api/docs/search").respond(200, json=[])
    assert "no docs match 'lora' in peft" in (await call(docs_search, ctx, query="lora", product="peft")).output
    assert (await call(docs_search, ctx, query="x")).is_error


async def test_read_takes_a_path_or_a_hub_url_and_prefers_markdown(ctx: ToolContext, api: respx.MockRouter) -> None:
    page = api.get(f"{HUB}/docs/trl/sft_trainer").respond(
        200, text="# SFT Trainer\n\nUse `SFTConfig`.\n", headers={"Content-Type": "text/markdown"}
    )
    out = (await call(docs_read, ctx, page="trl/sft_trainer")).output
    assert out == "1  # SFT Trainer\n2  \n3  Use `SFTConfig`.\n[/docs/trl/sft_trainer: lines 1-3 of 3]"
    assert "text/markdown" in page.calls.last.request.headers["accept"]
    await call(docs_read, ctx, page="https://huggingface.co/docs/trl/sft_trainer#packing")
    assert page.call_count == 2


async def test_html_pages_become_text_without_chrome(ctx: ToolContext, api: respx.MockRouter) -> None:
    html = (
        "<html><head><script>var x=1</script><style>p{}</style></head><body><nav>Menu</nav>"
        "<h1>Trainer</h1><p>The <b>Trainer</b> class.</p><pre>trainer.train()</pre><footer>©</footer></body></html>"
    )
    api.get(f"{HUB}/docs/transformers/trainer").respond(200, text=html, headers={"Content-Type": "text/html"})
    out = (await call(docs_read, ctx, page="/docs/transformers/trainer")).output
    assert "# Trainer" in out and "The Trainer class." in out and "trainer.train()" in out
    assert not any(word in out for word in ("Menu", "var x", "p{}", "©"))
    assert html_text("<p>a</p>\n\n\n\n<p>b</p>") == "a\n\nb"


async def test_only_hugging_face_docs_are_read(ctx: ToolContext, api: respx.MockRouter) -> None:
    for page in ("https://example.com/docs/x", "https://huggingface.co/api/whoami-v2", "docs/../api/x"):
        result = await call(docs_read, ctx, page=page)
        assert result.is_error, page
    assert not api.calls
