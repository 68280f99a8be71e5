"""Output caps, compaction, undo and dangling tool calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.context import (
    NOT_EXECUTED,
    SUMMARY_PREFIX,
    bound_output,
    close_dangling_tool_calls,
    compact,
    should_compact,
    undo_last_turn,
)
from agent.errors import CompactionError, ConfigError, LLMError
from agent.llm.scripted import ScriptedModel, Turn, estimate_tokens
from agent.messages import Message, MessageKind, ToolCall, Usage
from agent.prompts import render

# ---- bound_output --------------------------------------------------------------------------------


def _marker_line(text: str) -> str:
    return next(line for line in text.splitlines() if "characters omitted" in line)


def test_bound_output_leaves_text_at_the_limit_alone(tmp_path: Path) -> None:
    text = "x" * 100
    assert bound_output(text, 100, tmp_path / "spill", "c1") == (text, None)
    assert not (tmp_path / "spill").exists()


def test_bound_output_one_over_the_limit_spills(tmp_path: Path) -> None:
    text = "x" * 101
    shown, path = bound_output(text, 100, tmp_path / "spill", "c1")
    assert path == (tmp_path / "spill" / "c1.txt").resolve()
    assert path.read_text() == text
    assert "[… 1 characters omitted — full output: " in shown
    assert shown.startswith("x" * 40) and shown.endswith("x" * 60)


def test_bound_output_keeps_head_and_tail_at_line_boundaries(tmp_path: Path) -> None:
    text = "".join(f"line {i:05d}\n" for i in range(2000))  # 11 characters a line
    shown, path = bound_output(text, 1000, tmp_path, "call_7")
    assert path is not None and path.read_text() == text
    head, marker_line, tail = shown.partition(_marker_line(shown))
    assert head.startswith("line 00000\n") and head.endswith("line 00035\n")
    assert tail == "\n" + "".join(f"line {i:05d}\n" for i in range(1946, 2000))
    omitted = len(text) - len(head) - len(tail) + 1
    assert f"[… {omitted} characters omitted — full output: {path}; use the read tool" in marker_line
    assert str(path).startswith("/")
    assert len(shown) <= 1000 + len(marker_line) + 2


def test_bound_output_keeps_whole_lines_when_the_cut_is_already_on_a_boundary(tmp_path: Path) -> None:
    lines = [f"line {i:04d}\n" for i in range(1000)]  # 10 characters a line
    shown, _ = bound_output("".join(lines), 1000, tmp_path, "c")
    head, _, tail = shown.partition(_marker_line(shown))
    assert head == "".join(lines[:40])
    assert tail == "\n" + "".join(lines[-60:])
    shown, _ = bound_output("".join(lines), 1023, tmp_path, "c")  # the head budget, 409, ends right before a newline
    assert shown.startswith("".join(lines[:41]) + "[… ")


@pytest.mark.parametrize("limit", [0, 1, 7, 50, 333, 4096])
def test_bound_output_never_exceeds_limit_plus_marker(tmp_path: Path, limit: int) -> None:
    text = "\n".join("é日本語🙂" * (i % 13) for i in range(800))
    shown, path = bound_output(text, limit, tmp_path, f"c{limit}")
    assert path is not None
    assert path.read_bytes() == text.encode()
    assert len(shown) <= limit + len(_marker_line(shown)) + 2


def test_bound_output_multibyte_spill_equals_original(tmp_path: Path) -> None:
    text = "准确率 🎯 accuracy=0.91\n" * 500
    shown, path = bound_output(text, 2000, tmp_path / "a" / "b", "c")
    assert path is not None and path.read_text(encoding="utf-8") == text
    assert "准确率" in shown


def test_bound_output_keeps_undecodable_bytes(tmp_path: Path) -> None:
    raw = b"ok \xff\xfe bytes\n" * 100
    text = raw.decode("utf-8", "surrogateescape")
    _, path = bound_output(text, 100, tmp_path, "c")
    assert path is not None and path.read_bytes() == raw


def test_bound_output_never_overwrites_another_spill(tmp_path: Path) -> None:
    _, first = bound_output("a" * 50, 10, tmp_path, "functions/bash:0")
    _, again = bound_output("a" * 50, 10, tmp_path, "functions/bash:0")
    _, other = bound_output("b" * 50, 10, tmp_path, "functions/bash:0")
    assert first == again and first is not None and first.parent == tmp_path.resolve()
    assert first.name == "functions_bash_0.txt"
    assert other is not None and other != first
    assert first.read_text() == "a" * 50 and other.read_text() == "b" * 50


def test_should_compact() -> None:
    assert should_compact(81, 100, 0.8)
    assert not should_compact(80, 100, 0.8)
    assert not should_compact(10, 0, 0.8)


# ---- compaction ----------------------------------------------------------------------------------


def _exchange(i: int, output: str = "", name: str = "bash") -> list[Message]:
    """An assistant turn calling one tool, and its result."""
    c = ToolCall(f"call_{i}", name, json.dumps({"command": f"step {i}"}))
    return [Message("assistant", f"doing step {i}", tool_calls=[c]), Message.tool(c, output or f"output of step {i}")]


def _history(steps: int) -> list[Message]:
    msgs = [Message.system("You are ML Intern."), Message.user("Fine-tune distilbert on imdb")]
    for i in range(steps):
        msgs += _exchange(i)
    return msgs


def _summary_text(model: ScriptedModel) -> str:
    [request] = model.requests
    return "\n".join(m.content for m in request)


async def test_compact_keeps_system_task_and_tail() -> None:
    msgs = _history(10)
    model = ScriptedModel([Turn("## Goal\nfine-tune", usage=Usage(500, 40, 0, 0.01))])
    result = await compact(msgs, model, keep_recent=4, target_tokens=10_000)

    assert len(model.requests) == 1 and model.tool_specs == [[]]
    assert result.messages[:2] == msgs[:2]
    summary = result.messages[2]
    assert summary.role == "user" and summary.meta == {"kind": "summary"}
    assert summary.content == f"{SUMMARY_PREFIX}\n\n## Goal\nfine-tune"
    assert result.messages[3:] == msgs[-4:]
    assert result.removed == len(msgs) - 2 - 4
    assert result.usage == Usage(500, 40, 0, 0.01)
    assert result.before_tokens == estimate_tokens(msgs)
    assert result.after_tokens == estimate_tokens(result.messages) < result.before_tokens

    request = _summary_text(model)
    assert "Fine-tune distilbert on imdb" in request
    assert "doing step 0" in request and "output of step 7" in request and '"step 7"' in request
    assert "step 8" not in request  # kept verbatim, not summarised
    assert "You are ML Intern." not in request
    for heading in ("## Goal", "## Decisions", "## Done", "## Results", "## Problems", "## Open"):
        assert heading in request


@pytest.mark.parametrize("keep", [1, 2, 3])
async def test_compact_never_splits_a_tool_call_from_its_results(keep: int) -> None:
    calls = [ToolCall("a", "read", '{"path": "x"}'), ToolCall("b", "read", '{"path": "y"}')]
    msgs = [
        *_history(4),
        Message("assistant", "", tool_calls=calls),
        Message.tool(calls[0], "X"),
        Message.tool(calls[1], "Y"),
    ]
    model = ScriptedModel(["summary"])
    result = await compact(msgs, model, keep_recent=keep, target_tokens=10_000)
    assert result.messages[3:] == msgs[-3:]
    assert result.messages[3].role == "assistant"


async def test_compact_tail_may_start_at_a_user_message() -> None:
    msgs = [*_history(3), Message.user("now push it to the Hub"), *_exchange(9)]
    result = await compact(msgs, ScriptedModel(["summary"]), keep_recent=3, target_tokens=10_000)
    assert result.messages[3:] == msgs[-3:]


async def test_compact_resummarises_an_earlier_summary() -> None:
    model = ScriptedModel(["first summary", "second summary"])
    first = await compact(_history(6), model, keep_recent=2, target_tokens=10_000)
    msgs = first.messages + _exchange(20) + _exchange(21)
    second = await compact(msgs, model, keep_recent=2, target_tokens=10_000)

    assert [m.meta.get("kind") for m in second.messages].count("summary") == 1
    assert second.messages[2].content.endswith("second summary")
    assert "first summary" in "".join(m.content for m in model.requests[1])
    assert "earlier summary" in model.requests[1][0].content


async def test_compact_with_nothing_new_does_not_call_the_model() -> None:
    model = ScriptedModel(["summary"])
    first = await compact(_history(6), model, keep_recent=2, target_tokens=10_000)
    again = await compact(first.messages, model, keep_recent=2, target_tokens=10_000)
    assert len(model.requests) == 1
    assert again.messages == first.messages and again.removed == 0 and again.usage == Usage()


async def test_compact_cuts_long_messages_in_the_request() -> None:
    huge = "START" + "y" * 200_000 + "END"
    msgs = [*_history(1), *_exchange(5, huge), *_exchange(6)]
    model = ScriptedModel(["summary"])
    await compact(msgs, model, keep_recent=2, target_tokens=10_000)
    request = _summary_text(model)
    assert "START" in request and "END" in request and "characters cut" in request
    assert len(request) < 20_000


async def test_compact_request_fits_a_small_window() -> None:
    msgs = _history(400)
    model = ScriptedModel(["summary"], context_window=4000)
    await compact(msgs, model, keep_recent=2, target_tokens=4000)
    [request] = model.requests
    assert model.count_tokens(request) <= 4000 * 0.6
    assert "oldest messages are left out" in request[0].content
    assert "output of step 397" in request[0].content  # the newest middle messages stay


async def test_compact_replaces_longest_kept_outputs_when_over_target() -> None:
    msgs = [*_history(4), *_exchange(7, "a" * 8000), *_exchange(8, "b" * 2000), *_exchange(9, "c" * 100)]
    model = ScriptedModel(["summary"])
    result = await compact(msgs, model, keep_recent=6, target_tokens=1200)

    outputs = [m for m in result.messages[3:] if m.role == "tool"]
    assert outputs[0].content.startswith("[Output of bash removed to fit the context window: it was 8,000 characters")
    assert outputs[0].meta["elided_chars"] == 8000
    assert outputs[1].content == "b" * 2000 and outputs[2].content == "c" * 100
    assert result.elided == 1 and result.after_tokens <= 1200
    assert result.messages[:2] == msgs[:2]


async def test_compact_placeholder_points_at_the_spill_file(tmp_path: Path) -> None:
    shown, path = bound_output("z" * 20_000, 4000, tmp_path, "call_7")
    msgs = [*_history(2), *_exchange(7, shown)]
    result = await compact(msgs, ScriptedModel([]), keep_recent=10, target_tokens=300)
    assert f"The full output is in {path}." in result.messages[-1].content


async def test_compact_cannot_fit_raises_with_advice() -> None:
    msgs = [Message.system("s" * 40_000), Message.user("task"), *_exchange(1), *_exchange(2)]
    model = ScriptedModel(["summary"])
    with pytest.raises(CompactionError) as info:
        await compact(msgs, model, keep_recent=2, target_tokens=1000)
    message = str(info.value)
    assert "more than the target of 1,000" in message
    assert "start a new session" in message and "context.compact_at" in message
    assert len(model.requests) == 1


async def test_compact_nothing_to_summarise_over_target_elides_then_raises() -> None:
    msgs = [Message.system("s" * 8000), Message.user("t" * 8000), *_exchange(1, "o" * 8000)]
    model = ScriptedModel([])
    with pytest.raises(CompactionError, match="start a new session"):
        await compact(msgs, model, keep_recent=8, target_tokens=3000)
    assert model.requests == []


async def test_compact_nothing_to_summarise_fits_after_eliding() -> None:
    msgs = [Message.system("sys"), Message.user("task"), *_exchange(1, "o" * 8000)]
    result = await compact(msgs, ScriptedModel([]), keep_recent=8, target_tokens=100)
    assert result.removed == 0 and result.elided == 1
    assert result.messages[:2] == msgs[:2] and "8,000 characters" in result.messages[-1].content
    assert msgs[-1].content == "o" * 8000  # the input is not changed


async def test_compact_empty_summary_is_an_error() -> None:
    with pytest.raises(CompactionError, match="empty summary"):
        await compact(_history(6), ScriptedModel([Turn("  ")]), keep_recent=2, target_tokens=10_000)


async def test_compact_model_failure_propagates() -> None:
    model = ScriptedModel([LLMError("overloaded", kind="overloaded", retryable=True)])
    with pytest.raises(LLMError, match="overloaded"):
        await compact(_history(6), model, keep_recent=2, target_tokens=10_000)


async def test_compact_counts_tools() -> None:
    tools = [{"type": "function", "function": {"name": "bash", "description": "d" * 4000, "parameters": {}}}]
    msgs = _history(6)
    result = await compact(msgs, ScriptedModel(["summary"]), keep_recent=2, target_tokens=10_000, tools=tools)
    assert result.before_tokens == estimate_tokens(msgs, tools)
    assert result.after_tokens == estimate_tokens(result.messages, tools)


def test_compact_prompt_is_strict() -> None:
    with pytest.raises(ConfigError, match="task"):
        render("compact.md.j2", entries=[], omitted=0, has_summary=False)


# ---- undo ----------------------------------------------------------------------------------------


def test_undo_drops_the_last_user_input_and_after() -> None:
    msgs = [
        *_history(2),
        Message.user("and push it"),
        *_exchange(5),
        Message.user("stop", kind=MessageKind.DOOM_GUARD),
        Message("assistant", "ok"),
    ]
    undone, removed = undo_last_turn(msgs)
    assert undone == msgs[:6] and removed == 5


def test_undo_skips_injected_messages() -> None:
    msgs = [
        *_history(1),
        Message.user(f"{SUMMARY_PREFIX} x", kind="summary"),
        Message.user("n", kind=MessageKind.DOOM_GUARD),
        *_exchange(3),
    ]
    undone, removed = undo_last_turn(msgs)
    assert undone == msgs[:1] and removed == len(msgs) - 1


def test_undo_with_nothing_to_undo() -> None:
    msgs = [Message.system("s")]
    assert undo_last_turn(msgs) == (msgs, 0)
    assert undo_last_turn([]) == ([], 0)


# ---- dangling tool calls -------------------------------------------------------------------------


def test_close_dangling_tool_calls_answers_after_existing_results() -> None:
    calls = [ToolCall("a", "bash", "{}"), ToolCall("b", "read", "{}"), ToolCall("c", "write", "{}")]
    msgs = [
        Message.user("go"),
        Message("assistant", "", tool_calls=calls),
        Message.tool(calls[1], "B"),
        Message.user("interrupted"),
    ]
    out = close_dangling_tool_calls(msgs)
    assert out[:3] == msgs[:3]
    assert [(m.role, m.tool_call_id, m.name, m.content) for m in out[3:5]] == [
        ("tool", "a", "bash", NOT_EXECUTED),
        ("tool", "c", "write", NOT_EXECUTED),
    ]
    assert out[5] == msgs[3] and len(msgs) == 4


def test_close_dangling_tool_calls_at_the_end_and_when_complete() -> None:
    complete = _history(2)
    assert close_dangling_tool_calls(complete) == complete
    c = ToolCall("z", "bash", "{}")
    out = close_dangling_tool_calls([*complete, Message("assistant", "", tool_calls=[c])])
    assert out[-1].role == "tool" and out[-1].tool_call_id == "z" and out[-1].content == NOT_EXECUTED


async def test_compaction_shortens_a_huge_tool_call_argument_in_the_kept_tail() -> None:
    big = json.dumps({"path": "data.csv", "content": "x," * 500_000})  # a whole file written in one call
    call = ToolCall("c_big", "write", big)
    msgs = [
        *_history(3),
        Message("assistant", "", [call]),
        Message.tool(call, "wrote data.csv"),
        Message("assistant", "done"),
    ]
    result = await compact(msgs, ScriptedModel(["summary"]), keep_recent=3, target_tokens=20_000)
    kept = next(m for m in result.messages if m.tool_calls and m.tool_calls[0].id == "c_big")
    assert json.loads(kept.tool_calls[0].arguments) == {"elided": f"{len(big):,} characters of arguments"}
    assert result.after_tokens <= 20_000
    assert msgs[-3].tool_calls[0].arguments == big  # the caller's history is left alone
