import json
import re
import threading
from pathlib import Path

import pytest

from agent.errors import SessionError
from agent.events import Event, EventType
from agent.messages import Message, ToolCall
from agent.trace import (
    TraceWriter,
    data_home,
    find_session,
    iso_time,
    list_sessions,
    new_session_id,
    read_trace,
    session_dir,
)


def _trace(home: Path, session_id: str) -> Path:
    return session_dir(session_id, home) / "trace.jsonl"


def _call(i: int, name: str = "bash") -> ToolCall:
    return ToolCall(f"call_{i}", name, json.dumps({"command": f"echo {i}"}))


def test_data_home_honours_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ML_INTERN_HOME", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home"
    assert list_sessions() == []
    monkeypatch.delenv("ML_INTERN_HOME")
    assert data_home().name == "ml-intern"


def test_session_ids_sort_by_time_and_differ() -> None:
    ids = [new_session_id() for _ in range(50)]
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", i) for i in ids)
    assert len(set(ids)) == 50
    assert iso_time(0.5) == "1970-01-01T00:00:00.500Z"


def test_round_trip_messages_meta_and_events(tmp_path: Path) -> None:
    path = _trace(tmp_path, "s1")
    system, user = Message.system("You are ML Intern."), Message.user("train a model", source="cli")
    answer = Message("assistant", "on it", tool_calls=[_call(1)])
    result = Message.tool(_call(1), "1\n", error=True)
    with TraceWriter(path) as w:
        w.meta(id="s1", model="m/a", workdir="/w", created="2026-11-21T11:30:05+00:00", version="0.1.0")
        for m in (system, user, answer, result):
            w.message(m)
        w.event(Event(EventType.ASSISTANT_CHUNK, {"text": "on"}, seq=1))
        w.event(Event(EventType.TOOL_OUTPUT, {"call_id": "call_1", "output": "1\n"}, seq=2))
        w.meta(model="m/b", status="done")
    state = read_trace(path)
    assert state.messages == [system, user, answer, result]
    assert state.meta == {
        "id": "s1",
        "model": "m/b",
        "workdir": "/w",
        "created": "2026-11-21T11:30:05+00:00",
        "version": "0.1.0",
        "status": "done",
    }
    assert [e.type for e in state.events] == [EventType.TOOL_OUTPUT]
    assert state.events[0].data == {"call_id": "call_1", "output": "1\n"}
    assert state.last_seq == 2
    assert state.unanswered_calls == []
    assert state.warnings == []
    assert len(state.message_times) == 4
    assert read_trace(path.parent).messages == state.messages


def test_a_lone_surrogate_from_the_model_is_written_and_reads_back_the_same(tmp_path: Path) -> None:
    path = _trace(tmp_path, "s1")
    bad = "bad \udcff text"
    answer = Message("assistant", bad, tool_calls=[ToolCall("c1", "write", '{"content": "x\udcff"}')])
    with TraceWriter(path) as w:
        w.message(Message.user("日本語で"))
        w.message(answer)
        w.event(Event(EventType.TOOL_CALL, {"call_id": "c1", "arguments": {"content": "x\udcff"}}, seq=1))
    raw = path.read_bytes().decode("utf-8")  # valid UTF-8 all through
    assert "日本語で" in raw  # records without a surrogate stay readable
    assert "\\udcff" in raw
    state = read_trace(path)
    assert state.messages[1] == answer
    assert state.events[0].data["arguments"] == {"content": "x\udcff"}
    assert state.warnings == []


def test_history_replacement_keeps_times_of_kept_messages(tmp_path: Path) -> None:
    path = _trace(tmp_path, "s1")
    first, second = Message.user("first"), Message("assistant", "one")
    with TraceWriter(path) as w:
        w.message(first)
        w.message(second)
        w.message(Message.user("second"))
    times = read_trace(path).message_times
    lines = path.read_text().splitlines()
    with TraceWriter(path) as w:
        w.history([first, Message.user("summary", kind="summary")])
    state = read_trace(path)
    assert state.messages == [first, Message.user("summary", kind="summary")]
    history_ts = json.loads(path.read_text().splitlines()[len(lines)])["ts"]
    assert state.message_times == [times[0], history_ts]


def test_plan_and_usage_from_events(tmp_path: Path) -> None:
    path = _trace(tmp_path, "s1")
    with TraceWriter(path) as w:
        w.event(Event(EventType.PLAN_UPDATED, {"plan": [{"step": "a", "status": "pending"}]}, seq=1))
        w.event(
            Event(
                EventType.USAGE,
                {
                    "call": {"prompt_tokens": 100, "completion_tokens": 10, "cached_tokens": 50, "cost_usd": 0.25},
                    "total": {"cost_usd": 99},
                },
                seq=2,
            )
        )
        w.event(Event(EventType.PLAN_UPDATED, {"plan": [{"step": "a", "status": "done"}]}, seq=3))
        w.event(Event(EventType.USAGE, {"call": {"prompt_tokens": 7, "completion_tokens": 3, "cost_usd": 0.5}}, seq=4))
    state = read_trace(path)
    assert state.plan == [{"step": "a", "status": "done"}]
    assert (state.usage.prompt_tokens, state.usage.completion_tokens, state.usage.cached_tokens) == (107, 13, 50)
    assert state.usage.cost_usd == pytest.approx(0.75)
    assert state.last_seq == 4


def test_pending_approvals_and_unanswered_calls(tmp_path: Path) -> None:
    path = _trace(tmp_path, "s1")
    calls = [_call(1), _call(2, "hub_push"), _call(3, "run_job")]
    with TraceWriter(path) as w:
        w.message(Message.user("go"))
        w.message(Message("assistant", "", tool_calls=[_call(0)]))
        w.message(Message.tool(_call(0), "ok"))
        w.message(Message("assistant", "three calls", tool_calls=calls))
        w.message(Message.tool(calls[0], "done"))
        for i, call in enumerate(calls[1:], start=1):
            w.event(Event(EventType.APPROVAL_REQUIRED, {"call_id": call.id, "name": call.name}, seq=i))
        w.event(Event(EventType.TOOL_STATE_CHANGE, {"call_id": calls[1].id, "state": "waiting"}, seq=3))
        w.event(Event(EventType.TOOL_STATE_CHANGE, {"call_id": calls[2].id, "state": "denied"}, seq=4))
    state = read_trace(path)
    assert state.pending_approvals == [{"call_id": "call_2", "name": "hub_push"}]
    assert state.unanswered_calls == calls[1:]


@pytest.mark.parametrize("state", ["approved", "denied", "done", "failed"])
def test_settled_states_clear_an_approval(tmp_path: Path, state: str) -> None:
    path = _trace(tmp_path, "s1")
    with TraceWriter(path) as w:
        w.event(Event(EventType.APPROVAL_REQUIRED, {"call_id": "c"}, seq=1))
        w.event(Event(EventType.TOOL_STATE_CHANGE, {"call_id": "c", "state": state}, seq=2))
        w.event(Event(EventType.APPROVAL_REQUIRED, {"call_id": "d"}, seq=3))
    assert read_trace(path).pending_approvals == [{"call_id": "d"}]


def test_crash_mid_record_loses_only_that_record(tmp_path: Path) -> None:
    path = _trace(tmp_path, "s1")
    with TraceWriter(path) as w:
        w.message(Message.user("kept"))
        w.message(Message.user("half written " * 20))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])
    state = read_trace(path)
    assert state.messages == [Message.user("kept")]
    assert len(state.warnings) == 1 and "line 2" in state.warnings[0]
    with TraceWriter(path) as w:  # resuming drops the partial record before appending
        w.message(Message.user("after restart"))
    state = read_trace(path)
    assert state.messages == [Message.user("kept"), Message.user("after restart")]
    assert state.warnings == []


@pytest.mark.parametrize(("kept", "partial"), [(0, 10), (1, 10), (2, 200_000)])
def test_reopening_drops_a_partial_record_of_any_size(tmp_path: Path, kept: int, partial: int) -> None:
    path = _trace(tmp_path, "s1")
    with TraceWriter(path) as w:
        for i in range(kept):
            w.message(Message.user(f"m{i}"))
    with path.open("a") as f:
        f.write('{"t":"msg","m":{"role":"user","content":"' + "y" * partial)
    TraceWriter(path).close()
    assert [m.content for m in read_trace(path).messages] == [f"m{i}" for i in range(kept)]
    assert path.read_text().count("y") == 0


def test_garbled_complete_last_line_is_skipped(tmp_path: Path) -> None:
    path = _trace(tmp_path, "s1")
    with TraceWriter(path) as w:
        w.message(Message.user("kept"))
    with path.open("a") as f:
        f.write('{"t":"msg","m":{"content":"no role"}}\n')
    state = read_trace(path)
    assert state.messages == [Message.user("kept")]
    assert state.warnings


def test_corrupt_middle_line_names_the_line(tmp_path: Path) -> None:
    path = _trace(tmp_path, "s1")
    with TraceWriter(path) as w:
        for text in ("a", "b", "c"):
            w.message(Message.user(text))
    lines = path.read_text().splitlines()
    lines[1] = lines[1][:20]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SessionError, match="line 2"):
        read_trace(path)


def test_missing_trace_says_how_to_list(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match=r"session nope not found.*ml-intern --list-sessions"):
        read_trace(_trace(tmp_path, "nope"))


def test_unknown_records_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = _trace(tmp_path, "s1")
    with TraceWriter(path) as w:
        w.message(Message.user("hi"))
    with path.open("a") as f:
        f.write('{"t":"snapshot","x":1}\n{"t":"event","e":{"type":"from_the_future","seq":9}}\n')
        f.write('{"t":"msg","m":{"role":"assistant","content":"hello"}}\n')
    state = read_trace(path)
    assert [m.content for m in state.messages] == ["hi", "hello"]
    assert len(state.warnings) == 2
    assert state.last_seq == 0


def test_writer_is_closed_by_context_and_refuses_later_writes(tmp_path: Path) -> None:
    path = _trace(tmp_path, "s1")
    with TraceWriter(path) as w:
        w.meta(id="s1")
    w.close()
    with pytest.raises(SessionError, match="closed"):
        w.message(Message.user("late"))


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    path = _trace(tmp_path, "s1")
    big = "x" * 20_000
    with TraceWriter(path) as w:

        def work(n: int) -> None:
            for i in range(25):
                w.message(Message.user(f"{n}:{i}:{big}"))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    state = read_trace(path)
    assert len(state.messages) == 100 and state.warnings == []


def _session(home: Path, sid: str, created: str, first: str, *, status: str = "", n_events: int = 0) -> None:
    with TraceWriter(_trace(home, sid)) as w:
        w.meta(id=sid, created=created, model="hf/model", workdir=f"/projects/{sid}")
        w.message(Message.system("system prompt"))
        w.message(Message.user(first))
        w.message(Message("assistant", "ok"))
        for i in range(n_events):
            w.event(Event(EventType.TOOL_LOG, {"line": i}, seq=i))
        if status:
            w.meta(status=status)


def test_list_sessions_newest_first(tmp_path: Path) -> None:
    _session(tmp_path, "20261120-090000-aaaaaa", "2026-11-20T09:00:00+00:00", "old task", status="done")
    _session(
        tmp_path,
        "20261121-113005-bbbbbb",
        "2026-11-21T11:30:05+00:00",
        "  fine-tune\n distilbert " + "x" * 100,
        n_events=5,
    )
    (tmp_path / "sessions" / "not-a-session").mkdir()
    infos = list_sessions(tmp_path)
    assert [i.id for i in infos] == ["20261121-113005-bbbbbb", "20261120-090000-aaaaaa"]
    new, old = infos
    assert new.preview.startswith("fine-tune distilbert xx") and len(new.preview) == 80 and new.preview[-1] == "…"
    assert (new.messages, new.model, new.workdir, new.status) == (2, "hf/model", "/projects/20261121-113005-bbbbbb", "")
    assert (old.preview, old.status, old.created) == ("old task", "done", "2026-11-20T09:00:00+00:00")
    assert new.path == _trace(tmp_path, new.id)


def test_list_counts_the_replaced_history(tmp_path: Path) -> None:
    _session(tmp_path, "s1", "2026-11-20T09:00:00+00:00", "task")
    with TraceWriter(_trace(tmp_path, "s1")) as w:
        w.history([Message.system("p"), Message.user("summary", kind="summary")])
        w.message(Message.user("more"))
    (info,) = list_sessions(tmp_path)
    assert (info.messages, info.preview) == (2, "task")


def test_find_session_by_id_prefix_and_path(tmp_path: Path) -> None:
    for sid in ("20261120-090000-aaaaaa", "20261121-113005-bbbbbb", "20261121-120000-cccccc"):
        _session(tmp_path, sid, sid, f"task {sid}")
    assert find_session("20261120", tmp_path) == _trace(tmp_path, "20261120-090000-aaaaaa")
    assert find_session("20261121-12", tmp_path) == _trace(tmp_path, "20261121-120000-cccccc")
    exact = _trace(tmp_path, "20261121-113005-bbbbbb")
    assert find_session("20261121-113005-bbbbbb", tmp_path) == exact
    assert find_session(str(exact.parent), tmp_path) == exact
    with pytest.raises(SessionError, match="matches 2 sessions") as err:
        find_session("20261121", tmp_path)
    assert "20261121-113005-bbbbbb" in str(err.value) and "20261121-120000-cccccc" in str(err.value)
    with pytest.raises(SessionError, match=r"no session matches '2025'.*ml-intern --list-sessions"):
        find_session("2025", tmp_path)
    with pytest.raises(SessionError, match="give a session id"):
        find_session(" ", tmp_path)


def test_find_session_uses_ml_intern_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ML_INTERN_HOME", str(tmp_path))
    _session(tmp_path, "abc123", "2026-11-20T09:00:00+00:00", "task")
    assert find_session("abc") == _trace(tmp_path, "abc123")
    assert [i.id for i in list_sessions()] == ["abc123"]
