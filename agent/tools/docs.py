"""The docs family: search the Hugging Face documentation and read a page of it as text."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

from agent.errors import ToolError
from agent.tools.base import Effect, ToolContext, tool
from agent.tools.families import Family
from agent.tools.hub import as_list
from agent.tools.remote import HUB, HubHTTP, origin
from agent.tools.render import clip, window

PAGE_BYTES = 1 << 20
_SKIP = {"script", "style", "nav", "header", "footer", "aside", "svg", "noscript", "form", "button", "iframe"}
_BLOCK = {"p", "div", "section", "article", "li", "tr", "pre", "table", "ul", "ol", "br", "hr", "dd", "dt"}


class _Text(HTMLParser):
    """HTML to plain text: the content, headings marked with #, code blocks fenced; page chrome dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif not self.skipping and re.fullmatch(r"h[1-6]", tag):
            self.out.append("\n\n" + "#" * int(tag[1]) + " ")
        elif not self.skipping and tag == "pre":
            self.out.append("\n```\n")
        elif not self.skipping and tag in _BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif not self.skipping and tag == "pre":
            self.out.append("\n```\n")
        elif not self.skipping and (tag in _BLOCK or re.fullmatch(r"h[1-6]", tag)):
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data)


def html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    text = "".join(parser.out)
    return re.sub(r"\n\s*\n(\s*\n)+", "\n\n", re.sub(r"[ \t]+\n", "\n", text)).strip()


def doc_url(hub: HubHTTP, page: str) -> str:
    """A docs page on the Hub from a URL, '/docs/...' or 'transformers/trainer'; anything else is refused."""
    page = page.strip()
    if page.startswith(("http://", "https://")):
        if origin(page) not in {origin(hub.endpoint), HUB}:
            raise ToolError("docs_read reads Hugging Face documentation only (https://huggingface.co/docs/...)")
        path = urlsplit(page).path
    else:
        path = "/" + page.lstrip("/")
        path = path if path.startswith("/docs/") else "/docs" + path
    if not path.startswith("/docs/") or ".." in path:
        raise ToolError("give a documentation page, e.g. 'transformers/main_classes/trainer' or its URL")
    return f"{hub.endpoint}{path.rstrip('/')}"


@tool(effects=[Effect.READ, Effect.NETWORK])
async def docs_search(ctx: ToolContext, query: str, product: str = "", limit: int = 8) -> str:
    """Search the Hugging Face docs; one line per hit.

    Args:
        product: e.g. transformers, datasets, peft, trl, hub.
    """
    hub = ctx.deps.get(HubHTTP)
    if len(query.strip()) < 3:
        raise ToolError("query needs at least 3 characters")
    params = {"q": query.strip().lower(), **({"product": product} if product else {})}
    hits = as_list(await hub.json(f"{hub.endpoint}/api/docs/search", params), "docs search")
    lines = []
    for hit in hits[: max(1, min(limit, 20))]:
        where = " › ".join(str(hit[k]) for k in ("product", "heading1", "heading2") if hit.get(k))
        excerpt = clip(re.sub(r"<[^>]+>", "", str(hit.get("text", ""))), 200)
        lines.append(f"{where} · {hit.get('source_page_url', '?')} · {excerpt}")
    return "\n".join(lines) if lines else f"no docs match {query!r}{f' in {product}' if product else ''}"


@tool(effects=[Effect.READ, Effect.NETWORK])
async def docs_read(ctx: ToolContext, page: str, offset: int = 1, limit: int = 250) -> str:
    """Read a Hugging Face docs page as text from line `offset`.

    Args:
        page: URL or path, e.g. "trl/sft_trainer".
    """
    hub = ctx.deps.get(HubHTTP)
    url = doc_url(hub, page)
    reply = await hub.get(url, headers={"Accept": "text/markdown, text/html;q=0.9"}, max_bytes=PAGE_BYTES)
    kind = reply.headers.get("content-type", "")
    text = html_text(reply.text) if "html" in kind else reply.text
    try:
        return window(text, max(offset, 1), max(1, min(limit, 1000)), name=url.removeprefix(hub.endpoint))
    except ValueError as e:
        raise ToolError(str(e)) from None


FAMILY = Family("docs", (docs_search, docs_read), needs=(HubHTTP,))

__all__ = ["FAMILY", "docs_read", "docs_search"]
