import asyncio
import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from agent.events import tool_event_data
from agent.redact import scrub_env
from agent.sandbox.local import HEAD_BYTES, TAIL_BYTES, OutputCapture
from agent.tools.base import ToolContext
from agent.tools.shell import LogStream, bash, clean

Events = list[tuple[str, dict[str, Any]]]


def make_ctx(tmp_path: Path, events: Events) -> ToolContext:
    (tmp_path / "ws").mkdir(exist_ok=True)
    (tmp_path / "session").mkdir(exist_ok=True)
    return ToolContext(
        workdir=tmp_path / "ws",
        session_dir=tmp_path / "session",
        env=scrub_env(os.environ),
        emit=lambda ev: events.append((str(ev.type), tool_event_data(ev))),
        call_id="call-1",
    )


@pytest.fixture
def events() -> Events:
    return []


@pytest.fixture
def ctx(tmp_path: Path, events: Events) -> ToolContext:
    return make_ctx(tmp_path, events)


def running(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting for a parent that does not reap."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def wait_gone(*pids: int) -> list[int]:
    """The pids still running after SIGKILL had a moment to land (empty when all are gone)."""
    for _ in range(500):
        if not any(running(p) for p in pids):
            return []
        await asyncio.sleep(0.01)
    return [p for p in pids if running(p)]


async def wait_for_files(*paths: Path) -> None:
    for _ in range(1000):
        if all(p.exists() and p.read_text().strip() for p in paths):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never appeared: {paths}")


def pid_in(path: Path) -> int:
    return int(path.read_text())


async def test_stdout_and_stderr_are_interleaved(ctx: ToolContext) -> None:
    result = await bash.run(ctx, {"command": "echo one; echo two >&2; echo three"})

    assert result.output == "one\ntwo\nthree"
    assert not result.is_error
    assert result.data == {"exit_code": 0, "timed_out": False}


async def test_nonzero_exit_is_an_error_and_ends_with_the_code(ctx: ToolContext) -> None:
    result = await bash.run(ctx, {"command": "echo boom; exit 3"})

    assert result.is_error
    assert result.output == "boom\n[exit code 3]"
    assert result.data == {"exit_code": 3, "timed_out": False}


async def test_no_output_says_so(ctx: ToolContext) -> None:
    assert (await bash.run(ctx, {"command": "true"})).output == "(no output)"


async def test_runs_in_the_workspace_or_a_folder_inside_it(ctx: ToolContext) -> None:
    (ctx.workdir / "sub").mkdir()

    assert (await bash.run(ctx, {"command": "pwd -P"})).output == str(ctx.workdir.resolve())
    assert (await bash.run(ctx, {"command": "pwd -P", "cwd": "sub"})).output == str((ctx.workdir / "sub").resolve())


@pytest.mark.parametrize("cwd", ["..", "/", "missing"])
async def test_cwd_outside_the_workspace_or_missing_is_refused(ctx: ToolContext, cwd: str) -> None:
    result = await bash.run(ctx, {"command": "touch marker", "cwd": cwd})

    assert result.is_error
    assert "outside the workspace" in result.output or "not an existing folder" in result.output
    assert not (ctx.workdir.parent / "marker").exists()


async def test_stdin_is_closed(ctx: ToolContext) -> None:
    result = await bash.run(ctx, {"command": "cat; echo done", "timeout": 30})

    assert result.output == "done"
    assert not result.data["timed_out"]


async def test_secrets_in_the_parent_env_do_not_reach_bash(
    tmp_path: Path, events: Events, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "hf_" + secrets.token_hex(17)
    key = secrets.token_urlsafe(24)
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("MY_SERVICE_API_KEY", key)
    ctx = make_ctx(tmp_path, events)
    ctx.env["ML_INTERN_MARKER"] = "from-ctx"
    monkeypatch.setenv("ML_INTERN_PARENT_ONLY", "from-parent")

    out = (await bash.run(ctx, {"command": "env"})).output

    assert token not in out and key not in out
    assert not [line for line in out.splitlines() if line.startswith(("HF_TOKEN=", "MY_SERVICE_API_KEY="))]
    assert "ML_INTERN_MARKER=from-ctx" in out
    assert "ML_INTERN_PARENT_ONLY" not in out
    assert f"PATH={os.environ['PATH']}" in out


async def test_timeout_kills_the_whole_process_group(ctx: ToolContext) -> None:
    ctx.state["bash_timeout"] = 1
    ws = ctx.workdir
    command = "sleep 30 & echo $! > bg.pid; bash -c 'echo $$ > fg.pid; exec sleep 30'"

    result = await bash.run(ctx, {"command": command})

    assert result.data["timed_out"] is True
    assert result.is_error
    assert "timed out after 1s; its processes were killed" in result.output
    assert result.output.rsplit("\n", 1)[-1].startswith("[exit code -")
    assert await wait_gone(pid_in(ws / "bg.pid"), pid_in(ws / "fg.pid")) == []


async def test_timeout_argument_overrides_the_default_and_is_bounded(ctx: ToolContext) -> None:
    result = await bash.run(ctx, {"command": "sleep 30", "timeout": 1})
    assert result.data["timed_out"] is True

    for bad in (0, 3601):
        bad_result = await bash.run(ctx, {"command": "true", "timeout": bad})
        assert bad_result.is_error and "between 1 and 3600" in bad_result.output


async def test_cancellation_kills_child_and_grandchild(ctx: ToolContext) -> None:
    ws = ctx.workdir
    command = "sleep 30 & echo $! > child.pid; bash -c 'sleep 30 & echo $! > grandchild.pid; wait'"
    task = asyncio.create_task(bash.run(ctx, {"command": command, "timeout": 60}))
    await wait_for_files(ws / "child.pid", ws / "grandchild.pid")
    child, grandchild = pid_in(ws / "child.pid"), pid_in(ws / "grandchild.pid")
    assert running(child) and running(grandchild)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await wait_gone(child, grandchild) == []


async def test_huge_output_is_bounded(ctx: ToolContext) -> None:
    result = await bash.run(ctx, {"command": "echo first; yes | head -c 30000000; echo last"})

    assert result.output.startswith("first\ny\n")
    assert result.output.endswith("y\nlast")
    assert "bytes of output omitted" in result.output
    assert len(result.output) < HEAD_BYTES + TAIL_BYTES + 200


async def test_log_lines_are_streamed_batched_and_bounded(ctx: ToolContext, events: Events) -> None:
    result = await bash.run(ctx, {"command": "for i in $(seq 1 20000); do echo line $i; done"})

    logs = [data for type_, data in events if type_ == "tool_log"]
    assert result.output.endswith("line 20000")
    assert 1 <= len(logs) <= LogStream.MAX_EVENTS
    assert len(logs) < 2000  # batched, not one event per line
    assert all(d["call_id"] == "call-1" for d in logs)
    assert all(len(d["line"].splitlines()) <= LogStream.MAX_LINES for d in logs)
    assert logs[-1]["line"].endswith("line 20000")


async def test_log_events_stop_at_the_cap() -> None:
    events: Events = []
    stream = LogStream(lambda ev: events.append((str(ev.type), tool_event_data(ev))), "c")
    stream._interval = lambda: 0.0  # type: ignore[method-assign]  # no waiting: every feed may emit

    for i in range(LogStream.MAX_EVENTS + 50):
        stream.feed(f"line {i}\n".encode())
    stream.close()

    assert len(events) == LogStream.MAX_EVENTS
    assert events[0][1] == {"call_id": "c", "line": "line 0"}


async def test_ansi_escapes_and_progress_redraws_are_cleaned(ctx: ToolContext) -> None:
    command = r"printf '\033[31mred\033[0m\n'; for i in 1 2 3; do printf '\rprogress %d%%' $i; done; echo"

    assert (await bash.run(ctx, {"command": command})).output == "red\nprogress 3%"


def test_clean_keeps_crlf_lines() -> None:
    assert clean("a\r\nb\r\n") == "a\nb\n"
    assert clean("\x1b]0;title\x07x\x1b[2Ky") == "xy"


async def test_background_processes_end_with_the_call(ctx: ToolContext) -> None:
    command = "sleep 30 & echo $! > bg.pid; sleep 30 > /dev/null 2>&1 & echo $! > quiet.pid; echo started"

    result = await bash.run(ctx, {"command": command, "timeout": 60})

    assert result.output == "started"
    assert result.data == {"exit_code": 0, "timed_out": False}
    assert await wait_gone(pid_in(ctx.workdir / "bg.pid"), pid_in(ctx.workdir / "quiet.pid")) == []


async def test_a_process_escaping_the_group_and_holding_the_output_does_not_hang_the_call(ctx: ToolContext) -> None:
    """Locally, `setsid` leaves the call's process group: the call still returns, and says why it stopped reading."""
    command = (
        "setsid bash -c 'echo $$ > bg.pid; exec sleep 30' & while [ ! -s bg.pid ]; do sleep 0.01; done; echo started"
    )
    result = await bash.run(ctx, {"command": command, "timeout": 60})
    bg = pid_in(ctx.workdir / "bg.pid")
    try:
        assert result.output.startswith("started\n[a process that left the call's process group (setsid) kept")
        assert result.data == {"exit_code": 0, "timed_out": False}
    finally:
        os.kill(bg, 9)


def test_summary_shows_the_first_line_of_the_command() -> None:
    assert bash.describe_call({"command": "echo hi"}) == "$ echo hi"
    assert bash.describe_call({"command": "cd x\nmake"}) == "$ cd x …"


async def test_cut_log_lines_and_output_do_not_show_a_piece_of_a_token() -> None:
    token = "ghp_" + "Zq7" * 12
    events: Events = []
    stream = LogStream(lambda ev: events.append((str(ev.type), tool_event_data(ev))), "c")
    stream.feed(("x " * (LogStream.LINE_CHARS // 2 - 8) + token + "\n").encode())  # cut at LINE_CHARS
    stream.feed(("y" * (LogStream.KEEP_BYTES - 10) + " " + token).encode())  # start of this line dropped
    stream.feed(b"z" * LogStream.KEEP_BYTES)
    stream.close()
    capture = OutputCapture(head=20, tail=20)
    capture.feed(f"ok {token} {'w ' * 100}{token} end".encode())

    shown = " ".join(d["line"] for _, d in events) + capture.text()
    assert "ghp_" not in shown and "Zq7" not in shown
