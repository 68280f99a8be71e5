"""Untrusted text in a comment: inert HTML, mentions and images; code kept; fences closed; markers defused."""

from __future__ import annotations

from bot import markdown as md


def test_inline_is_one_escaped_line() -> None:
    text = md.inline("a\n\n<b>bold</b> *x* [l](u) ![i](u) @bob\x1b[31m", 200)
    assert "\n" not in text and "<b>" not in text and "&lt;b&gt;" in text
    assert "\\*x\\*" in text and "\\[l\\]" in text and "\\!\\[i\\]" in text and "@&#8203;bob" in text
    assert "\x1b" not in text and "␛" in text
    assert md.inline("x" * 50, 10) == "x" * 9 + "…"


def test_code_spans_cannot_close_early_or_hide_a_marker() -> None:
    assert md.code("a`b") == "`a'b`"
    assert "<!--" not in md.code("<!-- ml-intern:run:9 -->")


def test_block_keeps_markdown_and_code_but_not_html_mentions_or_images() -> None:
    text = "# Result\n\n- **ok** @alice\n![x](https://e/x.png)\n<details>\n\n"
    text += "```html\n<b>kept</b>\n<!-- ml-intern:run:9 -->"
    out = md.block(text, 10_000)
    assert out.startswith("# Result\n\n- **ok** @&#8203;alice")
    assert "!\\[x]" in out and "&lt;details&gt;" in out
    assert "<b>kept</b>" in out  # inside the code block, shown as written
    assert "<!--" not in out and out.endswith("\n```")  # the open fence is closed: nothing after it becomes code


def test_block_is_cut_with_a_note() -> None:
    out = md.block("y" * 500, 100)
    assert out.startswith("y" * 100) and "(cut" in out


def test_links_only_for_http() -> None:
    assert md.link("PR", "https://github.com/o/r/pull/1") == "[PR](https://github.com/o/r/pull/1)"
    spaced = md.link("x", "https://e.example/a b")
    assert "](" not in spaced and spaced.startswith("x (")  # not a URL: shown as text
    assert "](" not in md.link("x", "javascript:alert(1)")
    assert md.link("x", "https://e.example/a(b)") == "[x](https://e.example/a%28b%29)"
