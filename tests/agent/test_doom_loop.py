"""Doom loop detection: repeated calls, repeated blocks, changing results, the guard window."""

from __future__ import annotations

import json
from typing import Any

from agent.doom_loop import GUARD_KIND, WINDOW, args_hash, detect, since_last_guard
from agent.messages import Message, ToolCall

_ids = iter(range(1_000_000))


def step(name: str, args: dict[str, Any] | str, result: str) -> list[Message]:
    """One assistant call and its result."""
    c = ToolCall(f"call_{next(_ids)}", name, args if isinstance(args, str) else json.dumps(args))
    return [Message("assistant", "", tool_calls=[c]), Message.tool(c, result)]


def history(*steps: list[Message]) -> list[Message]:
    msgs = [Message.system("sys"), Message.user("task")]
    for s in steps:
        msgs += s
    return msgs


def test_same_call_three_times_is_a_loop() -> None:
    msgs = history(*(step("bash", {"command": "pytest"}, "1 failed") for _ in range(3)))
    loop = detect(msgs)
    assert loop is not None
    assert loop.description == 'bash({"command": "pytest"}) returned the same result 3 times in a row'
    assert loop.calls == frozenset({("bash", args_hash('{"command": "pytest"}'))})


def test_two_repeats_are_not_a_loop() -> None:
    assert detect(history(*(step("bash", {"command": "pytest"}, "1 failed") for _ in range(2)))) is None


def test_argument_order_and_spacing_do_not_matter() -> None:
    msgs = history(
        step("edit", {"path": "a.py", "old": "x"}, "no match"),
        step("edit", '{"old":"x","path":"a.py"}', "no match"),
        step("edit", '{ "path" : "a.py",  "old": "x" }', "no match"),
    )
    assert detect(msgs) is not None


def test_invalid_json_arguments_are_hashed_raw() -> None:
    assert args_hash("{not json") != args_hash("{not json ")
    assert detect(history(*(step("bash", "{not json", "error: bad arguments") for _ in range(3)))) is not None
    mixed = history(*(step("bash", f"{{not json {i}", "error: bad arguments") for i in range(3)))
    assert detect(mixed) is None


def test_polling_with_changing_output_is_not_a_loop() -> None:
    msgs = history(*(step("job_status", {"id": "j1"}, f"running, step {i * 100}") for i in range(8)))
    assert detect(msgs) is None
    msgs += step("job_status", {"id": "j1"}, "running, step 700")
    msgs += step("job_status", {"id": "j1"}, "running, step 700")
    assert detect(msgs) is not None  # the job stopped moving


def test_repeated_block_of_two_is_a_loop() -> None:
    a = ("edit", {"path": "t.py", "old": "1", "new": "2"}, "edited")
    b = ("bash", {"command": "pytest"}, "FAILED test_x")
    loop = detect(history(step(*a), step(*b), step(*a), step(*b)))
    assert loop is not None
    assert "repeated 2 times in a row" in loop.description
    assert loop.calls == frozenset({("edit", args_hash(json.dumps(a[1]))), ("bash", args_hash(json.dumps(b[1])))})


def test_repeated_block_of_three_counts_its_repeats() -> None:
    calls = [("read", {"path": "a"}, "A"), ("edit", {"path": "a"}, "ok"), ("bash", {"command": "make"}, "err")]
    msgs = history(*(step(*c) for c in calls * 3))
    loop = detect(msgs)
    assert loop is not None and "repeated 3 times in a row" in loop.description
    assert len(loop.calls) == 3


def test_repeated_block_of_five_but_not_six() -> None:
    five = [("read", {"path": str(i)}, str(i)) for i in range(5)]
    assert detect(history(*(step(*c) for c in five * 2))) is not None
    six = [("read", {"path": str(i)}, str(i)) for i in range(6)]
    assert detect(history(*(step(*c) for c in six * 2))) is None


def test_block_with_a_changing_result_is_not_a_loop() -> None:
    msgs = history(
        step("edit", {"path": "t.py"}, "edited"),
        step("bash", {"command": "pytest"}, "3 failed"),
        step("edit", {"path": "t.py"}, "edited"),
        step("bash", {"command": "pytest"}, "2 failed"),
    )
    assert detect(msgs) is None


def test_an_old_loop_that_ended_is_not_reported() -> None:
    msgs = history(*(step("bash", {"command": "ls"}, "x") for _ in range(3)), step("read", {"path": "y"}, "y"))
    assert detect(msgs) is None


def test_parallel_calls_in_one_message_count_in_order() -> None:
    calls = [ToolCall(f"p{i}", "read", json.dumps({"path": "same"})) for i in range(3)]
    msgs = history([Message("assistant", "", tool_calls=calls), *(Message.tool(c, "same text") for c in calls)])
    assert detect(msgs) is not None


def test_results_are_matched_to_their_own_message_when_ids_repeat() -> None:
    # some providers number calls per turn, so the same id comes back every turn
    msgs = history()
    for i in range(3):
        c = ToolCall("functions.bash:0", "bash", '{"command": "tail log"}')
        msgs += [Message("assistant", "", tool_calls=[c]), Message.tool(c, f"epoch {i}")]
    assert detect(msgs) is None


def test_unanswered_calls_are_ignored() -> None:
    msgs = history(*(step("bash", {"command": "x"}, "same") for _ in range(2)))
    msgs.append(Message("assistant", "", tool_calls=[ToolCall("q", "bash", '{"command": "x"}')]))
    assert detect(msgs) is None


def test_since_ignores_calls_before_the_guard() -> None:
    looping = [step("bash", {"command": "pytest"}, "1 failed") for _ in range(3)]
    msgs = history(*looping)
    loop = detect(msgs)
    assert loop is not None
    msgs.append(Message.user(loop.guard_message(), kind=GUARD_KIND))
    since = since_last_guard(msgs)
    assert since == len(msgs)
    msgs += looping[0] + looping[1]
    assert detect(msgs, since) is None
    assert detect(msgs) is not None  # without `since` the old calls still count
    msgs += step("bash", {"command": "pytest"}, "1 failed")
    assert detect(msgs, since) is not None


def test_since_last_guard_without_a_guard() -> None:
    assert since_last_guard(history(step("a", {}, "b"))) == 0


def test_only_the_recent_window_is_read() -> None:
    msgs = history(*(step("bash", {"command": "pytest"}, "1 failed") for _ in range(2)))
    msgs += [Message("assistant", f"thinking {i}") for i in range(WINDOW)]
    msgs += step("bash", {"command": "pytest"}, "1 failed")
    assert detect(msgs) is None


def test_matches_ignores_the_result() -> None:
    loop = detect(history(*(step("bash", {"command": "pytest -x"}, "1 failed") for _ in range(3))))
    assert loop is not None
    assert loop.matches(ToolCall("new", "bash", '{ "command":"pytest -x" }'))
    assert not loop.matches(ToolCall("new", "bash", '{"command": "pytest"}'))
    assert not loop.matches(ToolCall("new", "shell", '{"command": "pytest -x"}'))


def test_guard_message_explains_what_to_do() -> None:
    loop = detect(history(*(step("bash", {"command": "pytest"}, "1 failed") for _ in range(3))))
    assert loop is not None
    text = loop.guard_message()
    assert loop.description in text
    assert "different approach" in text and "explain the blocker to the user" in text


def test_description_shortens_long_arguments() -> None:
    args = {"content": "x" * 5000}
    loop = detect(history(*(step("write", args, "ok") for _ in range(3))))
    assert loop is not None and len(loop.description) < 200
