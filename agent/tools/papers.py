"""The papers family: Hugging Face papers and arXiv; a paper's abstract, metadata and the repos that cite it."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal
from xml.etree import ElementTree

from agent.errors import ToolError
from agent.tools.base import Effect, ToolContext, tool
from agent.tools.families import Family
from agent.tools.hub import as_list, hit_line
from agent.tools.remote import HubHTTP
from agent.tools.render import clip, count, day

ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
_ATOM = {"a": "http://www.w3.org/2005/Atom", "arxiv": "http://arxiv.org/schemas/atom"}
CITING_SHOWN = 5


def check_id(arxiv_id: str) -> str:
    found = arxiv_id.strip().removeprefix("arXiv:").rstrip("/").rsplit("/abs/", 1)[-1].rsplit("/papers/", 1)[-1]
    if not ARXIV_ID.match(found):
        raise ToolError(f"{arxiv_id!r} is not an arXiv id; use e.g. '2106.09685'")
    return found


def paper_line(item: dict[str, Any]) -> str:
    """One hit of HF papers search or daily papers (the paper nested under `paper`, or at the top level)."""
    paper = item.get("paper") if isinstance(item.get("paper"), dict) else item
    assert isinstance(paper, dict)
    title = item.get("title") or paper.get("title") or "?"
    upvotes = paper.get("upvotes", item.get("upvotes"))
    return f"{paper.get('id', '?')} · {clip(title, 120)} · {day(paper.get('publishedAt'))} · {count(upvotes)} upvotes"


def arxiv_entries(xml: str) -> list[dict[str, str]]:
    """Entries of an arXiv API Atom feed: id, title, summary, published, authors, category."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        raise ToolError("arXiv sent a malformed answer (not Atom XML); try again later") from None
    entries = []
    for e in root.findall("a:entry", _ATOM):
        link = e.findtext("a:id", "", _ATOM)
        authors = [a.findtext("a:name", "", _ATOM) for a in e.findall("a:author", _ATOM)]
        category = e.find("arxiv:primary_category", _ATOM)
        entries.append(
            {
                "id": re.sub(r"v\d+$", "", link.rsplit("/abs/", 1)[-1]),
                "title": clip(e.findtext("a:title", "", _ATOM), 200),
                "summary": " ".join(e.findtext("a:summary", "", _ATOM).split()),
                "published": day(e.findtext("a:published", "", _ATOM)),
                "authors": ", ".join(authors[:6]) + (" et al." if len(authors) > 6 else ""),
                "category": category.get("term", "") if category is not None else "",
            }
        )
    return entries


@tool(effects=[Effect.READ, Effect.NETWORK])
async def paper_search(
    ctx: ToolContext, query: str = "", source: Literal["hf", "arxiv"] = "hf", date: str = "", limit: int = 10
) -> str:
    """Search papers on Hugging Face or arXiv; without a query, HF daily papers (of `date`, YYYY-MM-DD)."""
    hub, limit = ctx.deps.get(HubHTTP), max(1, min(limit, 50))
    if date and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise ToolError("date must look like 2025-01-31")
    if source == "arxiv":
        if not query:
            raise ToolError("give a query to search arXiv")
        params = {"search_query": f"all:{query}", "start": 0, "max_results": limit}
        entries = arxiv_entries((await hub.get(f"{hub.arxiv}/api/query", params)).text)
        lines = [f"{e['id']} · {e['title']} · {e['published']} · {e['category']}" for e in entries]
    elif query:
        items = as_list(await hub.json(f"{hub.endpoint}/api/papers/search", {"q": query, "limit": limit}), "papers")
        lines = [paper_line(i) for i in items[:limit]]
    else:
        params = {"limit": limit, **({"date": date} if date else {})}
        items = as_list(await hub.json(f"{hub.endpoint}/api/daily_papers", params), "daily papers")
        lines = [paper_line(i) for i in items[:limit]]
    return "\n".join(lines) if lines else "no papers found; try other words or source='arxiv'"


async def _citing(hub: HubHTTP, kind: str, arxiv_id: str) -> str:
    sort = "likes" if kind == "space" else "downloads"
    params = [("filter", f"arxiv:{arxiv_id}"), ("sort", sort), ("direction", -1), ("limit", CITING_SHOWN)]
    params += [("expand", e) for e in ("downloads", "likes", "lastModified", "pipeline_tag", "gated", "tags")]
    try:
        items = as_list(await hub.json(f"{hub.endpoint}/api/{kind}s", params), f"{kind}s citing {arxiv_id}")
    except ToolError as e:
        return f"{kind}s citing it: not available ({e})"
    if not items:
        return f"{kind}s citing it: none on the Hub"
    top = items[:CITING_SHOWN]
    return f"{kind}s citing it (top {len(top)}):\n" + "\n".join(f"  {hit_line(kind, i)}" for i in top)


@tool(effects=[Effect.READ, Effect.NETWORK])
async def paper_read(ctx: ToolContext, arxiv_id: str) -> str:
    """A paper's abstract and metadata, and the Hub models, datasets and Spaces citing it."""
    hub, arxiv_id = ctx.deps.get(HubHTTP), check_id(arxiv_id)
    reply = await hub.get(f"{hub.endpoint}/api/papers/{arxiv_id}", headers={"Accept": "application/json"}, ok=(404,))
    if reply.status == 404:
        head = await _from_arxiv(hub, arxiv_id)
    else:
        data = reply.json()
        if not isinstance(data, dict):
            raise ToolError("Hugging Face sent an unexpected answer for this paper; try source arXiv")
        head = _from_hf(data, arxiv_id)
    citing = await asyncio.gather(*(_citing(hub, kind, arxiv_id) for kind in ("model", "dataset", "space")))
    return "\n".join([head, *citing])


def _from_hf(data: dict[str, Any], arxiv_id: str) -> str:
    authors = [str(a.get("name")) for a in data.get("authors") or [] if isinstance(a, dict)]
    lines = [
        f"{arxiv_id} · {data.get('title', '?')}",
        f"authors: {', '.join(authors[:8])}{' et al.' if len(authors) > 8 else ''}",
        f"published {day(data.get('publishedAt'))} · {count(data.get('upvotes'))} upvotes on HF",
    ]
    if data.get("githubRepo"):
        lines.append(f"code: {data['githubRepo']} ({count(data.get('githubStars'))} stars)")
    if data.get("projectPage"):
        lines.append(f"project: {data['projectPage']}")
    if data.get("ai_keywords"):
        lines.append(f"keywords: {clip(', '.join(map(str, data['ai_keywords'])), 200)}")
    lines.append(f"abstract: {clip(data.get('summary') or '?', 3000)}")
    return "\n".join(lines)


async def _from_arxiv(hub: HubHTTP, arxiv_id: str) -> str:
    entries = arxiv_entries((await hub.get(f"{hub.arxiv}/api/query", {"id_list": arxiv_id})).text)
    if not entries or not entries[0]["title"]:
        raise ToolError(f"paper {arxiv_id} is neither on Hugging Face nor on arXiv; check the id")
    e = entries[0]
    return "\n".join(
        [
            f"{arxiv_id} · {e['title']} (arXiv; not on Hugging Face papers)",
            f"authors: {e['authors']}",
            f"published {e['published']} · {e['category']}",
            f"abstract: {clip(e['summary'], 3000)}",
        ]
    )


FAMILY = Family("papers", (paper_search, paper_read), needs=(HubHTTP,))

__all__ = ["FAMILY", "paper_read", "paper_search"]
