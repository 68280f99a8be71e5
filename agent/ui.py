"""Terminal I/O for the CLI: agent events rendered with rich, JSON lines for machines, and a prompt reader."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterable
from typing import IO, Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.control import Control
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from agent.events import Event
from agent.format import EXPLAINED, PLAN_MARKS, RETRY_REASONS, STOPPED, seconds, short_args, tokens, usage_line, usd
from agent.printable import SURROGATE, printable

logger = logging.getLogger(__name__)

CARD_LINES = 12
"""An approval card with more argument lines than this says how many there are (all are shown)."""


def _printable_data(obj: Any) -> Any:
    if isinstance(obj, str):
        return printable(obj)
    if isinstance(obj, dict):
        return {_printable_data(k): _printable_data(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_printable_data(v) for v in obj]
    return obj


def _argument_lines(arguments: Any, shown: str) -> list[str]:
    """Arguments as `key: value` lines, multi-line text indented below its key; values `shown` already
    (in the one-line summary) are left out."""
    if isinstance(arguments, str):
        raw = arguments
        try:
            arguments = json.loads(raw)
        except ValueError:
            return raw.splitlines()
    if not isinstance(arguments, dict):
        return [] if arguments is None else [json.dumps(arguments, ensure_ascii=False)]
    lines = []
    for key, value in arguments.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if "\n" in text:
            lines += [f"{key}:", *(f"  {line}" for line in text.splitlines())]
        elif not (isinstance(value, str) and value and re.search(rf"(?<!\S){re.escape(value)}(?!\S)", shown)):
            lines.append(f"{key}: {text}")
    return lines


def _excerpt(lines: list[str], limit: int | None) -> tuple[list[str], int, list[str]]:
    """(head, lines left out, tail): at most `limit` lines, a third from the start and the rest from the end,
    where tracebacks and test summaries are."""
    if limit is None or len(lines) <= limit:
        return lines, 0, []
    head = limit // 3
    return lines[:head], len(lines) - limit, lines[len(lines) - (limit - head) :]


class _Tail:
    """The last lines of a renderable that fit the screen: a streaming answer shows where it is being written."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = console.render_lines(self.renderable, options, pad=False)
        keep = max(1, console.size.height - 2)
        for line in lines[-keep:]:
            yield from line
            yield Segment.line()


class ConsoleRenderer:
    """Turns agent events into terminal output; the CLI's only writer (aider's InputOutput idea)."""

    def __init__(self, console: Console, *, verbose: bool = False, output_lines: int = 6) -> None:
        self.console = console
        self.verbose = verbose
        self.output_lines = output_lines
        self._streamed = ""
        self._line_open = False
        self._turn_started: float | None = None
        self._turn_usage: dict[str, float] = {}
        """Sum of this turn's model calls (the `usage` events)."""
        self._context = (0, 0)
        self._denied: set[str] = set()
        self._live: Live | None = None
        """On a terminal, streamed markdown is shown live and printed rendered when the stream ends."""

    def render(self, event: Event) -> None:
        """Show an event; model and tool text in it cannot act on the terminal (see `printable`)."""
        handler = getattr(self, f"_on_{event.type.value}", None)
        if handler is not None:
            handler(dataclasses.replace(event, data=_printable_data(event.data)))

    # ---- output helpers the CLI uses directly -------------------------------------------------

    def print(self, *objects: RenderableType, **kw: Any) -> None:
        self._close_line()
        self.console.print(*objects, **kw)

    def info(self, text: str) -> None:
        self.print(Text(printable(text), style="dim"))

    def warn(self, text: str) -> None:
        self.print(Text(f"! {printable(text)}", style="yellow"))

    def warn_over_ctrl_c(self, text: str) -> None:
        """A warning written over the `^C` a terminal echoes when Ctrl+C is pressed."""
        if self.console.is_terminal and not self._line_open:
            self.console.control(Control.move_to_column(0))
        self.warn(text)

    def error(self, message: str, hint: str = "", title: str = "error") -> None:
        body = Text(printable(message))
        if hint:
            body.append("\n→ ").append(printable(hint), style="bold yellow")
        self.print(Panel(body, title=title, title_align="left", border_style="red", expand=False))

    def plan(self, plan: list[dict[str, Any]]) -> None:
        if not plan:
            self.info("no plan yet")
            return
        out = Text("plan\n", style="bold")
        for item in plan:
            mark, style = PLAN_MARKS.get(str(item.get("status")), ("○", "dim"))
            out.append(f"  {mark} ", style=style).append(printable(str(item.get("content", ""))) + "\n")
        out.rstrip()
        self.print(out)

    def cost(self, usage: dict[str, Any]) -> None:
        self.print(Text("run total: ", style="bold").append(usage_line(usage, *self._context)))

    def table(self, title: str, rows: Iterable[Iterable[str]], columns: Iterable[str] = ()) -> None:
        cols = list(columns)
        table = Table(title=title, title_justify="left", show_header=bool(cols), box=None, padding=(0, 2, 0, 0))
        for col in cols or [""]:
            table.add_column(col)
        for row in rows:
            table.add_row(*(Text(printable(cell)) for cell in row))  # data (session previews), never markup
        self.print(table)

    def answer(self, text: str) -> None:
        """A final answer that was not streamed, as markdown."""
        self.print(Markdown(printable(text)))

    # ---- events -------------------------------------------------------------------------------

    def _close_line(self) -> None:
        if self._line_open:
            self.console.print()
            self._line_open = False

    def _on_ready(self, e: Event) -> None:
        d = e.data
        head = Text("ml-intern", style="bold magenta").append(f"  {d.get('model', '')}", style="cyan")
        head.append(f"  session {d.get('session_id', '')}", style="dim")
        if d.get("resumed"):
            head.append(" (resumed)", style="dim")
        self.print(head)
        tools = d.get("tools") or []
        self.info(f"{d.get('workdir', '')} · {len(tools)} tools" + (f": {', '.join(tools)}" if self.verbose else ""))
        for name, reason in (d.get("mcp_failures") or {}).items():
            self.warn(f"MCP server {name} is not available: {reason}")

    def _on_processing(self, e: Event) -> None:
        if self._turn_started is None:
            self._turn_started = e.ts

    def _on_assistant_chunk(self, e: Event) -> None:
        text = str(e.data.get("text", ""))
        if not text:
            return
        self._streamed += text
        if self.console.is_terminal:
            if self._live is None:
                self._live = Live(console=self.console, refresh_per_second=8, transient=True)
                self._live.start()
            self._live.update(_Tail(Markdown(self._streamed)))
            return
        self.console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
        self._line_open = not text.endswith("\n")

    def _stop_live(self, *, show: bool) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            if show and self._streamed.strip():
                self.print(Markdown(self._streamed))

    def _on_assistant_stream_reset(self, e: Event) -> None:
        printed = self._live is None and bool(self._streamed)  # a live preview just vanishes
        self._stop_live(show=False)
        self._streamed = ""
        self._close_line()
        if printed:
            self.info("(the partial answer above is discarded; retrying)")

    def _on_assistant_stream_end(self, e: Event) -> None:
        self._stop_live(show=True)
        self._close_line()

    def _on_assistant_message(self, e: Event) -> None:
        text = str(e.data.get("text") or "").strip()
        if text and not self._streamed.strip():
            self.answer(text)
        self._streamed = ""

    def _on_tool_call(self, e: Event) -> None:
        d = e.data
        line = Text("▸ ", style="cyan").append(str(d.get("name", "")), style="bold cyan").append("  ")
        line.append(str(d.get("summary") or short_args(d.get("arguments", ""))))
        self.print(line, no_wrap=True, overflow="ellipsis")

    def _on_tool_output(self, e: Event) -> None:
        d = e.data
        if d.get("name") == "plan" and not d.get("is_error"):
            return  # the plan_updated checklist shows it
        style = "red" if d.get("is_error") else "dim"
        limit = None if self.verbose else self.output_lines * (2 if d.get("is_error") else 1)
        head, omitted, tail = _excerpt(str(d.get("output", "")).rstrip("\n").splitlines(), limit)
        body = Text()
        for line in head:
            body.append("  │ ", style="dim").append(line + "\n", style=style)
        if omitted:
            body.append(f"  … {omitted} more lines\n", style="dim")
        for line in tail:
            body.append("  │ ", style="dim").append(line + "\n", style=style)
        notes = []
        if d.get("is_error"):
            notes.append("✗ not run (denied)" if d.get("call_id") in self._denied else "✗ failed")
        if (d.get("duration_s") or 0) >= 1:
            notes.append(seconds(float(d["duration_s"])))
        if notes:
            body.append("  " + " · ".join(notes) + "\n", style=style)
        body.rstrip()
        if body:
            self.print(body, overflow="ellipsis", no_wrap=not self.verbose)
        if d.get("truncated") and d.get("spill_path"):  # a path to open: never cut
            self.print(Text(f"  full output: {d['spill_path']}", style="dim"), overflow="fold")

    def _on_tool_log(self, e: Event) -> None:
        if self.verbose:  # a batch of lines
            for line in str(e.data.get("line", "")).splitlines():
                self.print(Text(f"  ┆ {line}", style="dim"), no_wrap=True, overflow="ellipsis")

    def _on_tool_state_change(self, e: Event) -> None:
        if e.data.get("state") == "denied":
            self._denied.add(str(e.data.get("call_id")))
        if self.verbose:
            self.info(f"  {e.data.get('name', '')}: {e.data.get('state', '')}")

    def _on_approval_required(self, e: Event) -> None:
        d = e.data
        parts: list[RenderableType] = [Text(str(d.get("summary") or d.get("name", "")), style="bold")]
        if d.get("effects"):
            parts.append(Text("effects: ", style="dim").append(", ".join(map(str, d["effects"])), style="yellow"))
        if "protected" in (d.get("effects") or []) and d.get("reason"):  # the path and what runs it, said plainly
            parts.append(Text(f"⚠ {d['reason']}", style="bold red"))
        if d.get("cost_usd"):
            parts.append(Text("estimated cost: ", style="dim").append(usd(float(d["cost_usd"])), style="bold"))
        args = _argument_lines(d.get("arguments"), shown=str(d.get("summary") or ""))
        if args:  # whole: a line left out is where `; curl …` would hide
            parts.append(Text("\n".join(args), style="dim"))
        if len(args) > CARD_LINES:
            parts.append(Text(f"({len(args)} lines of arguments, all shown above: scroll up to read them)"))
        title = f"approval needed · {d.get('name', '')}"
        self.print(Panel(Group(*parts), title=title, title_align="left", border_style="yellow", expand=False))

    def _on_plan_updated(self, e: Event) -> None:
        self.plan(list(e.data.get("plan") or []))

    def _on_usage(self, e: Event) -> None:
        self._context = (int(e.data.get("context_tokens") or 0), int(e.data.get("context_window") or 0))
        for key, value in (e.data.get("call") or {}).items():
            self._turn_usage[key] = self._turn_usage.get(key, 0) + value
        if self.verbose:
            self.info(f"  call: {usage_line(e.data.get('call') or {}, *self._context)}")

    def _on_retry(self, e: Event) -> None:
        d = e.data
        kind = str(d.get("kind") or "error")
        line = f"↻ {RETRY_REASONS.get(kind, kind)}; retry {d.get('attempt', '?')} in {float(d.get('delay') or 0):.1f}s"
        if self.verbose and d.get("message"):
            line += f" ({d['message']})"
        self.info(line)

    def _on_compacted(self, e: Event) -> None:
        d = e.data
        if not d.get("removed"):
            self.info(f"⇣ nothing to compact yet ({tokens(d.get('after_tokens', 0))} tokens)")
            return
        self.info(
            f"⇣ compacted the history: {tokens(d.get('before_tokens', 0))} → "
            f"{tokens(d.get('after_tokens', 0))} tokens ({d.get('removed', 0)} messages summarised)"
        )

    def _on_doom_loop(self, e: Event) -> None:
        if e.data.get("stopped") and not self.verbose:
            return  # the turn's end says it, with what to do
        what = "stopping the run" if e.data.get("stopped") else "telling the model to change approach"
        self.warn(f"the agent is repeating itself ({e.data.get('description', '')}); {what}")

    def _on_limit_reached(self, e: Event) -> None:
        if self.verbose:  # otherwise the turn's end says it, with what to do
            self.warn(f"limit reached: {e.data.get('limit', '')} = {e.data.get('value', '')}")

    def _on_error(self, e: Event) -> None:
        self._stop_live(show=True)
        kind = e.data.get("kind")
        self.error(
            str(e.data.get("message", "")), str(e.data.get("hint") or ""), title=f"error · {kind}" if kind else "error"
        )

    def _on_interrupted(self, e: Event) -> None:
        self._stop_live(show=True)
        self.warn("interrupted")

    def _on_undo_complete(self, e: Event) -> None:
        removed = e.data.get("removed") or 0
        self.info(f"undid the last turn ({removed} messages removed)" if removed else "nothing to undo")

    def _on_turn_complete(self, e: Event) -> None:
        self._stop_live(show=True)
        d = e.data
        reason = str(d.get("stop_reason", "done"))
        parts = [STOPPED.get(reason, reason) if reason != "done" else "done"]
        if d.get("iterations"):
            parts.append(f"{d['iterations']} step{'s' if d['iterations'] != 1 else ''}")
        parts.append(usage_line(self._turn_usage or d.get("usage") or {}, *self._context))
        if self._turn_started is not None:
            parts.append(seconds(max(0.0, e.ts - self._turn_started)))
        self._turn_started, self._turn_usage = None, {}
        self._streamed = ""
        if reason in EXPLAINED and d.get("final"):
            self.warn(str(d["final"]))
        style = "dim" if reason == "done" else "yellow"
        self.print(Text("── " + " · ".join(parts), style=style))


class JsonRenderer:
    """One JSON object per event, one per line, flushed at once (`--json`)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def render(self, event: Event) -> None:
        line = json.dumps(event.to_dict(), ensure_ascii=False, default=str)
        if SURROGATE.search(line):  # a lone surrogate cannot be written; escapes keep the line valid JSON
            line = json.dumps(event.to_dict(), default=str)
        self.stream.write(line + "\n")
        self.stream.flush()


__all__ = ["ConsoleRenderer", "JsonRenderer", "usage_line"]
