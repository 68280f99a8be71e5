"""Repetition detection: the same tool calls getting the same results, over and over."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from agent.messages import Message, MessageKind, ToolCall

logger = logging.getLogger(__name__)

WINDOW = 30
"""Messages at the end of the history that detection looks at."""
GUARD_KIND = MessageKind.DOOM_GUARD
"""Meta kind of the corrective user message the loop injects; detection restarts after it."""
MIN_RUN = 3
"""Identical calls in a row that make a loop."""
BLOCK_SIZES = range(2, 6)
"""Lengths of a repeated block of calls that make a loop when it occurs twice in a row."""

Signature = tuple[str, str, str]
"""(tool name, hash of its arguments, hash of its result)."""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def args_hash(arguments: str) -> str:
    """Hash of a call's arguments: of their canonical JSON (sorted keys), or of the raw text when not JSON."""
    try:
        canonical = json.dumps(json.loads(arguments), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, RecursionError):
        canonical = arguments
    return _sha(canonical)


def _show(call: ToolCall, width: int = 80) -> str:
    args = " ".join(call.arguments.split())
    return f"{call.name}({args if len(args) <= width else args[: width - 1] + '…'})"


@dataclass(frozen=True, slots=True)
class DoomLoop:
    """A detected loop: which calls repeat, and how to tell the model."""

    description: str
    """Human readable, e.g. 'bash({...}) returned the same result 3 times in a row'."""
    calls: frozenset[tuple[str, str]]
    """(tool name, arguments hash) of the looping calls."""

    def matches(self, call: ToolCall) -> bool:
        """Whether `call` is one of the looping calls (whatever it would return)."""
        return (call.name, args_hash(call.arguments)) in self.calls

    def guard_message(self) -> str:
        """The corrective message sent to the model as a user message."""
        return (
            f"[Loop detected] {self.description}. Repeating it will not give a different result: this approach "
            "is not working. Step back and work out why it fails, then try a different approach or a different "
            "tool. If you are blocked (missing access, missing information, an error you cannot fix), stop and "
            "explain the blocker to the user instead."
        )


def since_last_guard(messages: list[Message]) -> int:
    """Index just after the last guard message (0 when there is none): the `since` to pass to detect()."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].meta.get("kind") == GUARD_KIND:
            return i + 1
    return 0


def _signatures(messages: list[Message], since: int) -> tuple[list[Signature], dict[Signature, ToolCall]]:
    """Signatures of the answered calls in the window, in order, and one call per signature for descriptions."""
    window = messages[max(since, len(messages) - WINDOW, 0) :]
    sequence: list[Signature] = []
    examples: dict[Signature, ToolCall] = {}
    i = 0
    while i < len(window):
        message = window[i]
        i += 1
        if message.role != "assistant" or not message.tool_calls:
            continue
        results: dict[str | None, str] = {}
        while i < len(window) and window[i].role == "tool":  # the results answering this message's calls
            results.setdefault(window[i].tool_call_id, window[i].content)
            i += 1
        for call in message.tool_calls:
            if call.id in results:
                signature = (call.name, args_hash(call.arguments), _sha(results[call.id]))
                sequence.append(signature)
                examples.setdefault(signature, call)
    return sequence, examples


def _repeated_call(sequence: list[Signature], examples: dict[Signature, ToolCall]) -> DoomLoop | None:
    """Rule A: the last call was made with the same arguments and got the same result MIN_RUN+ times in a row."""
    if not sequence:
        return None
    last, run = sequence[-1], 0
    for signature in reversed(sequence):
        if signature != last:
            break
        run += 1
    if run < MIN_RUN:
        return None
    return DoomLoop(f"{_show(examples[last])} returned the same result {run} times in a row", frozenset({last[:2]}))


def _repeated_block(sequence: list[Signature], examples: dict[Signature, ToolCall]) -> DoomLoop | None:
    """Rule B: the sequence ends with a block of 2–5 calls repeated, with the same results, at least twice."""
    for size in BLOCK_SIZES:
        if len(sequence) < 2 * size:
            return None
        block = sequence[-size:]
        if sequence[-2 * size : -size] != block:
            continue
        times = 2
        while len(sequence) >= (times + 1) * size and sequence[-(times + 1) * size : -times * size] == block:
            times += 1
        steps = " → ".join(_show(examples[s]) for s in block)
        return DoomLoop(
            f"the calls {steps} were repeated {times} times in a row with the same results",
            frozenset(s[:2] for s in block),
        )
    return None


def detect(messages: list[Message], since: int = 0) -> DoomLoop | None:
    """The loop the recent tool calls are stuck in, if any; reads at most WINDOW messages, none before `since`."""
    sequence, examples = _signatures(messages, since)
    loop = _repeated_call(sequence, examples) or _repeated_block(sequence, examples)
    if loop is not None:
        logger.info("doom loop: %s", loop.description)
    return loop


__all__ = ["GUARD_KIND", "DoomLoop", "args_hash", "detect", "since_last_guard"]
