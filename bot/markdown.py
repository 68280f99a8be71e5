"""Untrusted text (from the model, tools, GitHub) made inert in a GitHub comment: no HTML, no mentions, no images.

Everything the bot writes that it did not write itself goes through one of these: `inline` for one line of prose,
`code` for a name shown as code, `block` for the model's answer (Markdown kept, what acts on readers removed),
`link` for a URL the runner produced.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from agent.printable import printable

_SPACE = re.compile(r"\s+")
_MENTION = re.compile(r"@(?=[A-Za-z0-9_])")
_SPECIALS = re.compile(r"([\\`*_\[\]!|~])")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_COMMENT_OPEN = "<!--"


def escape(text: str) -> str:
    """Markdown and HTML in `text` shown as written: entities for `&<>`, mentions that ping nobody, no emphasis,
    links, images or code spans."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SPECIALS.sub(r"\\\1", text)
    return _MENTION.sub("@&#8203;", text)


def one_line(text: str, limit: int) -> str:
    """`text` on one line (whitespace collapsed, controls made visible), cut to `limit` characters with `…`."""
    flat = _SPACE.sub(" ", printable(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def inline(text: str, limit: int = 200) -> str:
    """One line of untrusted prose, cut and escaped."""
    return escape(one_line(text, limit))


def code(text: str, limit: int = 80) -> str:
    """A short untrusted name (a tool, a path) as an inline code span."""
    flat = one_line(text, limit).replace("`", "'")
    return f"`{defuse(flat)}`" if flat else ""


def defuse(text: str) -> str:
    """Text that is shown literally (code) but read raw by the bot: no HTML comment can open, so no marker."""
    return text.replace(_COMMENT_OPEN, "<!- -")


def block(text: str, limit: int) -> str:
    """Multi-line Markdown from the model, kept readable: code blocks as they are, the rest with HTML, mentions and
    images made inert; a fence left open is closed, so nothing after it turns into code."""
    text = printable(text.strip())
    cut = len(text) > limit
    if cut:
        text = text[:limit].rstrip()
    out: list[str] = []
    fence = ""
    for line in text.split("\n"):
        m = _FENCE.match(line)
        if fence:
            out.append(defuse(line))
            if m and _closes(m.group(1), fence, line):
                fence = ""
        elif m:
            fence = m.group(1)
            out.append(defuse(line))
        else:
            out.append(_prose(line))
    if fence:
        out.append(fence)
    if cut:
        out.append("\n… (cut; the whole answer is on the run page)")
    return "\n".join(out)


def _closes(mark: str, fence: str, line: str) -> bool:
    """Whether a fence line `mark` closes the block opened by `fence`: same character, as long, nothing after."""
    return mark[0] == fence[0] and len(mark) >= len(fence) and not line.strip()[len(mark) :]


def _prose(line: str) -> str:
    """A Markdown line outside code: structure (lists, headings, emphasis, code spans) kept, HTML and images and
    mentions made inert."""
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    line = line.replace("![", "!\\[")
    return _MENTION.sub("@&#8203;", line)


def link(text: str, url: str) -> str:
    """`[text](url)` for an http(s) URL; anything else is shown as escaped text."""
    url = url.strip()
    if not re.match(r"https?://[^\s]+$", url):
        return inline(text) + (f" ({inline(url)})" if url else "")
    safe = quote(url, safe=":/?#[]@!$&'*+,;=%~-._")
    safe = safe.replace("(", "%28").replace(")", "%29")
    return f"[{inline(text, 120)}]({safe})"


__all__ = ["block", "code", "defuse", "escape", "inline", "link", "one_line"]
