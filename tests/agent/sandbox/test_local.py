"""The local sandbox: bounded capture, the process group ended with the call, and a non-dumpable agent."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.sandbox import LocalSandbox, protect
from agent.sandbox.local import HEAD_BYTES, TAIL_BYTES, OutputCapture


def test_capture_keeps_head_and_tail_and_counts_the_middle() -> None:
    capture = OutputCapture(head=10, tail=10)
    data = b"01234 6789abcdefghijklmnopqrstu wxyz"
    for i in range(0, len(data), 3):
        capture.feed(data[i : i + 3])

    # the words cut at either edge are dropped too: they could be pieces of a token redaction cannot recognise
    assert capture.text() == "01234 …\n… [16 bytes of output omitted] …\n… wxyz"


def test_capture_memory_stays_bounded() -> None:
    capture = OutputCapture()
    chunk = b"x" * 65536
    for _ in range(1600):  # 100 MB
        capture.feed(chunk)
        assert capture.held <= HEAD_BYTES + TAIL_BYTES + len(chunk)

    assert capture.dropped + capture.held == 1600 * len(chunk)


def test_short_capture_is_returned_whole() -> None:
    capture = OutputCapture(head=4, tail=100)
    capture.feed("héllo wörld".encode())  # a multi-byte character straddles the head/tail boundary

    assert capture.text() == "héllo wörld"


async def test_runs_bash_in_cwd_with_exactly_the_given_environment(tmp_path: Path) -> None:
    chunks: list[bytes] = []

    result = await LocalSandbox().run(
        "pwd; echo $ONLY; env | wc -l; exit 4", cwd=tmp_path, env={"ONLY": "x"}, seconds=30, on_output=chunks.append
    )

    assert result.exit_code == 4 and not result.timed_out
    lines = result.output.split()
    assert lines[:2] == [str(tmp_path), "x"] and int(lines[2]) <= 4  # ONLY plus what bash itself sets
    assert b"".join(chunks).decode() == result.output


# The claim in the README: a process of the same, non-root user cannot read a non-dumpable agent's environment.
# Root can (CAP_SYS_PTRACE), so this runs the agent side as an unprivileged user when the tests run as root.
_AGENT = """
import importlib.util, subprocess, sys
spec = importlib.util.spec_from_file_location("protect", sys.argv[2])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if sys.argv[1] == "protect":
    assert module.protect_process()
print(subprocess.run(["bash", "-c", "cat /proc/$PPID/environ"], capture_output=True, text=True).stdout)
"""


def _as_unprivileged(python: str, mode: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    extra = {"user": 65534, "group": 65534, "extra_groups": []} if os.getuid() == 0 else {}
    return subprocess.run(
        [python, "-c", _AGENT, mode, protect.__file__],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        **extra,  # type: ignore[call-overload]
    )


@pytest.mark.skipif(sys.platform != "linux", reason="prctl(PR_SET_DUMPABLE) is Linux-only")
def test_a_protected_agent_hides_its_environment_from_its_commands() -> None:
    secret = "hf_" + secrets.token_hex(16)
    env = {"PATH": "/usr/bin:/bin", "HF_TOKEN": secret}
    # the agent's own interpreter may live where the unprivileged user cannot go; the module is stdlib-only
    python = sys.executable if os.getuid() != 0 else shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 for an unprivileged user to run")
    exposed = _as_unprivileged(python, "open", env)
    if exposed.returncode != 0:
        pytest.skip(f"an unprivileged user cannot run the check here: {exposed.stderr.strip()[-200:]}")
    protected = _as_unprivileged(python, "protect", env)

    assert secret in exposed.stdout  # without protection the child reads it: the test can fail
    assert protected.returncode == 0, protected.stderr
    assert secret not in protected.stdout


def test_protect_process_works_on_linux() -> None:
    code = "from agent.sandbox import protect_process; print(protect_process())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out == ("True\n" if sys.platform == "linux" else "False\n")
