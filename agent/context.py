"""The history's budget: tool output caps with spill files, compaction into a summary, undo and repair."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import prompts
from agent.errors import CompactionError
from agent.llm import Model
from agent.messages import Message, MessageKind, Usage

logger = logging.getLogger(__name__)

SUMMARY_PREFIX = "[Summary of earlier work in this session]"
NOT_EXECUTED = "Tool was not executed (interrupted)."
NOT_INPUT_KINDS = frozenset(MessageKind)
"""Meta kinds of user messages the agent injected itself; undo skips them."""

_SNAP = 400
"""How many characters a cut may move to land on a line boundary."""
_CLIP_STEPS = (4000, 2000, 1000, 500, 250)
"""Characters kept of each message in the summary request, tried in turn until it fits."""
_REQUEST_SHARE = 0.6
"""Share of the model's window the summary request may use; the rest is room for the answer."""
_MARKER = "[… {n} characters omitted — full output: {path}; use the read tool with offset/limit or search to see it]"
_SPILLED = re.compile(r"full output: (.+?); use the read tool")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


# ---- tool output caps --------------------------------------------------------------------------


def _cut(text: str, head: int, tail: int) -> tuple[str, str]:
    """The first `head` and last `tail` characters (head + tail < len(text)), moved to line boundaries when near."""
    first = text[:head]
    nl = first.rfind("\n")
    if text[head : head + 1] != "\n" and nl >= 0 and head - nl - 1 <= min(_SNAP, head // 4):
        first = first[: nl + 1]
    start = len(text) - tail
    last = text[start:] if tail else ""
    nl = last.find("\n")
    if text[start - 1] != "\n" and nl >= 0 and nl < min(_SNAP, tail // 4):
        last = last[nl + 1 :]
    return first, last


def _around(head: str, marker: str, tail: str) -> str:
    """`marker` on its own line between `head` and `tail`."""
    before = "\n" if head and not head.endswith("\n") else ""
    return f"{head}{before}{marker}\n{tail}"


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")  # undecodable bytes from a subprocess come back as they were
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _spill(text: str, spill_dir: Path, stem: str) -> Path:
    """Write `text` to spill_dir/<stem>.txt, never overwriting a different earlier spill."""
    spill_dir.mkdir(parents=True, exist_ok=True)
    data = _encode(text)
    base = _UNSAFE.sub("_", stem).strip("._") or "output"
    path, n = spill_dir / f"{base}.txt", 1
    while path.exists() and path.read_bytes() != data:
        n += 1
        path = spill_dir / f"{base}-{n}.txt"
    path.write_bytes(data)
    return path.resolve()


def bound_output(text: str, limit: int, spill_dir: Path, stem: str) -> tuple[str, Path | None]:
    """Cap `text` at `limit` characters: head and tail kept, the whole saved to a file the model can read.

    Returns the text to show and the spill file (None when `text` fits). The result is at most `limit`
    characters plus the marker line. Unsafe characters of `stem` (e.g. "/" in a call id) become "_".
    """
    limit = max(limit, 0)
    if len(text) <= limit:
        return text, None
    path = _spill(text, spill_dir, stem)
    head, tail = _cut(text, limit * 2 // 5, limit - limit * 2 // 5)
    marker = _MARKER.format(n=len(text) - len(head) - len(tail), path=path)
    logger.debug("tool output of %d characters cut to %d; full output in %s", len(text), limit, path)
    return _around(head, marker, tail), path


def should_compact(tokens: int, window: int, share: float) -> bool:
    """Whether a prompt of `tokens` has passed `share` of a `window`-token context."""
    return window > 0 and tokens > window * share


# ---- compaction ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Compaction:
    """What compact() did."""

    messages: list[Message]
    """The new history."""
    usage: Usage
    """Cost of the summary call; zero when there was nothing to summarise."""
    before_tokens: int
    after_tokens: int
    removed: int
    """Messages replaced by the summary."""
    elided: int = 0
    """Kept tool outputs replaced by a placeholder to fit."""


def _kind(message: Message) -> str:
    return str(message.meta.get("kind") or "")


def _is_input(message: Message) -> bool:
    """A message the user wrote, not one the agent injected."""
    return message.role == "user" and _kind(message) not in NOT_INPUT_KINDS


def _tail_start(messages: list[Message], lo: int, keep: int) -> int:
    """Where the kept tail begins: `keep` from the end, moved back so it does not open with a tool result."""
    n = len(messages)
    start = max(lo, n - max(keep, 0))
    back = start
    while lo < back < n and messages[back].role == "tool":
        back -= 1
    if back >= n or messages[back].role != "tool":
        return back
    while start < n and messages[start].role == "tool":  # an orphan result right after the task: skip it
        start += 1
    return start


def _partition(messages: list[Message], keep: int) -> tuple[list[Message], list[Message], list[Message]]:
    """Split into (pinned: system prompt and first task, middle to summarise, kept tail)."""
    pinned_at = [0] if messages and messages[0].role == "system" else []
    first_user = next((i for i, m in enumerate(messages) if _is_input(m)), None)
    if first_user is not None:
        pinned_at.append(first_user)
    start = _tail_start(messages, pinned_at[-1] + 1 if pinned_at else 0, keep)
    pinned = [messages[i] for i in pinned_at]
    middle = [m for i, m in enumerate(messages[:start]) if i not in pinned_at]
    if len(middle) == 1 and _kind(middle[0]) == MessageKind.SUMMARY:  # nothing new since the last compaction
        pinned, middle = [*pinned, middle[0]], []
    return pinned, middle, messages[start:]


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head, tail = _cut(text, limit * 2 // 5, limit - limit * 2 // 5)
    return _around(head, f"[… {len(text) - len(head) - len(tail)} characters cut …]", tail)


def _entry(message: Message, clip: int) -> dict[str, str]:
    kind = _kind(message)
    if kind == MessageKind.SUMMARY:
        label = "earlier summary"
    elif message.role == "tool":
        label = f"result of {message.name or 'a tool'}"
    else:
        label = f"{message.role} ({kind})" if kind else message.role
    content = message.content.removeprefix(SUMMARY_PREFIX).strip()
    parts = [_clip(content, clip)] if content else []
    parts += [f"→ calls {c.name}({_clip(c.arguments, clip // 2)})" for c in message.tool_calls]
    return {"label": label, "text": "\n".join(parts)}


def _render_request(middle: list[Message], task: str, clip: int, omitted: int) -> list[Message]:
    text = prompts.render(
        "compact.md.j2",
        task=_clip(task, _CLIP_STEPS[0]),
        entries=[_entry(m, clip) for m in middle[omitted:]],
        omitted=omitted,
        has_summary=any(_kind(m) == MessageKind.SUMMARY for m in middle[omitted:]),
    )
    return [Message.user(text)]


def _summary_request(middle: list[Message], task: str, model: Model) -> list[Message]:
    """The request for the summary, its messages cut (and the oldest left out) until it fits the model."""
    budget = int(model.context_window * _REQUEST_SHARE)
    for clip in _CLIP_STEPS:
        request = _render_request(middle, task, clip, 0)
        if model.count_tokens(request) <= budget:
            return request
    omitted = 0
    while len(middle) - omitted > 1:
        omitted += max(1, (len(middle) - omitted) // 4)
        request = _render_request(middle, task, _CLIP_STEPS[-1], omitted)
        if model.count_tokens(request) <= budget:
            break
    return request


async def _summarise(middle: list[Message], task: str, model: Model) -> tuple[Message, Usage]:
    response = await model.complete(_summary_request(middle, task, model), tools=[], stream=False)
    text = response.message.content.strip()
    if not text:
        raise CompactionError(
            f"{model.name} returned an empty summary, so the history was left as it was; "
            "try compacting again, or start a new session"
        )
    text = text.removeprefix(SUMMARY_PREFIX).lstrip()
    return Message.user(f"{SUMMARY_PREFIX}\n\n{text}", kind=MessageKind.SUMMARY), response.usage


def _placeholder(message: Message) -> Message:
    size = len(message.content)
    spilled = _SPILLED.search(message.content)
    where = f" The full output is in {spilled.group(1)}." if spilled else " Run the tool again if you need it."
    tool = message.name or "this tool"
    text = f"[Output of {tool} removed to fit the context window: it was {size:,} characters.{where}]"
    return dataclasses.replace(message, content=text, meta={**message.meta, "elided_chars": size})


_ARGS_KEPT = 2000
"""Tool-call arguments longer than this may be replaced when the history must shrink."""


def _without_long_arguments(message: Message) -> Message:
    """An assistant message whose long tool-call arguments (a whole file written at once) are replaced by a note
    in valid JSON; the call already ran, its result says what it did."""
    calls = [
        c
        if len(c.arguments) <= _ARGS_KEPT
        else dataclasses.replace(c, arguments=json.dumps({"elided": f"{len(c.arguments):,} characters of arguments"}))
        for c in message.tool_calls
    ]
    return dataclasses.replace(message, tool_calls=calls)


def _size(message: Message) -> int:
    return len(message.content) + sum(len(c.arguments) for c in message.tool_calls)


def _fit(
    messages: list[Message], first: int, model: Model, tools: list[dict[str, Any]] | None, target: int
) -> tuple[list[Message], int, int]:
    """Replace the longest tool outputs and tool-call arguments from index `first` on until the history fits
    `target` tokens."""
    out = list(messages)
    tokens = model.count_tokens(out, tools)
    shrinkable = [i for i in range(first, len(out)) if out[i].role == "tool" or out[i].tool_calls]
    longest = sorted(shrinkable, key=lambda i: -_size(out[i]))
    elided = 0
    for i in longest:
        if tokens <= target:
            break
        shorter = _placeholder(out[i]) if out[i].role == "tool" else _without_long_arguments(out[i])
        if _size(shorter) >= _size(out[i]):
            continue
        out[i], elided = shorter, elided + 1
        tokens = model.count_tokens(out, tools)
    return out, tokens, elided


async def compact(
    messages: list[Message],
    model: Model,
    *,
    keep_recent: int,
    target_tokens: int,
    tools: list[dict[str, Any]] | None = None,
) -> Compaction:
    """Summarise the middle of the history with one model call, keeping the system prompt, task and recent tail.

    Raises CompactionError when even then the history needs more than `target_tokens`.
    """
    before = model.count_tokens(messages, tools)
    pinned, middle, tail = _partition(messages, keep_recent)
    usage = Usage()
    if middle:
        task = next((m.content for m in pinned if m.role == "user"), "")
        summary, usage = await _summarise(middle, task, model)
        pinned.append(summary)
    kept, after, elided = _fit(pinned + tail, len(pinned), model, tools, target_tokens)
    if after > target_tokens:
        raise CompactionError(
            f"the history still needs {after:,} tokens after compaction, {after - target_tokens:,} more than the "
            f"target of {target_tokens:,}; start a new session, or raise context.compact_at, "
            "or use a model with a larger context window"
        )
    logger.info("compacted %d messages into a summary: %d → %d tokens", len(middle), before, after)
    return Compaction(kept, usage, before, after, len(middle), elided)


# ---- repair -------------------------------------------------------------------------------------


def undo_last_turn(messages: list[Message]) -> tuple[list[Message], int]:
    """Drop the last real user input and everything after it; returns (history, messages removed)."""
    for i in range(len(messages) - 1, -1, -1):
        if _is_input(messages[i]):
            return messages[:i], len(messages) - i
    return messages, 0


def close_dangling_tool_calls(messages: list[Message]) -> list[Message]:
    """Answer every tool call that has no result, right after its existing results, so providers accept the history."""
    out: list[Message] = []
    i = 0
    while i < len(messages):
        message = messages[i]
        out.append(message)
        i += 1
        if message.role != "assistant" or not message.tool_calls:
            continue
        answered: set[str | None] = set()
        while i < len(messages) and messages[i].role == "tool":
            answered.add(messages[i].tool_call_id)
            out.append(messages[i])
            i += 1
        out += [Message.tool(c, NOT_EXECUTED) for c in message.tool_calls if c.id not in answered]
    return out


__all__ = [
    "Compaction",
    "bound_output",
    "close_dangling_tool_calls",
    "compact",
    "should_compact",
    "undo_last_turn",
]
