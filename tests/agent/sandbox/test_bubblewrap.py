"""Real commands in the real bubblewrap sandbox: what they cannot see, what they cannot do, what bounds them."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from agent.config import SandboxConfig
from agent.errors import ConfigError
from agent.redact import scrub_env
from agent.sandbox import CommandResult, LocalSandbox, Sandbox, open_sandbox
from agent.sandbox.bubblewrap import BWRAP_ENV, BubblewrapSandbox, find_bwrap
from agent.sandbox.local import HEAD_BYTES, TAIL_BYTES


def _unusable() -> str | None:
    if find_bwrap() is None:
        return "bubblewrap is not installed (apt-get install bubblewrap; .ci/run installs it)"
    try:
        open_sandbox(SandboxConfig(mode="bubblewrap", processes=None), workdir=Path.cwd(), headless=True)
    except ConfigError as e:
        return str(e)
    return None


_WHY = _unusable()
needs_bwrap = pytest.mark.skipif(_WHY is not None, reason=f"the sandbox cannot run here: {_WHY}")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def sandbox(ws: Path, **config: Any) -> Sandbox:
    return open_sandbox(SandboxConfig(mode="bubblewrap", **config), workdir=ws, headless=True)


async def sh(box: Sandbox, ws: Path, command: str, seconds: float = 60) -> CommandResult:
    return await box.run(command, cwd=ws, env=scrub_env(os.environ), seconds=seconds, on_output=lambda _: None)


def host_processes_with(marker: str) -> list[int]:
    """Host pids whose command line contains `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


async def gone(marker: str) -> bool:
    """Whether every host process carrying `marker` has ended (a killed sandbox takes a moment to go)."""
    for _ in range(500):
        if not host_processes_with(marker):
            return True
        await asyncio.sleep(0.01)
    return False


# ---- what commands cannot see -------------------------------------------------------------------


@needs_bwrap
async def test_files_outside_the_workspace_and_the_home_folder_are_invisible(tmp_path: Path, ws: Path) -> None:
    key = tmp_path / "id_key"
    key.write_text("PRIVATE KEY\n")
    (ws / "data.txt").write_text("workspace data\n")
    home = Path.home()
    creds = [home / ".cache/huggingface/token", home / ".aws/credentials", home / ".git-credentials", home / ".netrc"]
    checks = " ".join(f"test -e {p} && echo visible {p};" for p in [key, *creds])
    box = sandbox(ws)

    result = await sh(box, ws, f"cat data.txt; {checks} echo home=$HOME; ls -A {home} 2>/dev/null")

    assert home.is_dir() and key.is_file()  # they exist on the host
    shown = {p.relative_to(home).parts[0] for p in box.read_only if home in p.parents}  # type: ignore[attr-defined]
    lines = result.output.splitlines()
    assert lines[:2] == ["workspace data", "home=/tmp"], result.output
    assert set(lines[2:]) == shown  # of the home folder, only the way to a toolchain it shows (e.g. .pyenv)


@needs_bwrap
async def test_the_agent_environment_is_not_in_any_process(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "hf_" + secrets.token_hex(16)
    monkeypatch.setenv("HF_TOKEN", token)
    env = {**scrub_env(os.environ), "VISIBLE": "yes"}
    command = "cat /proc/1/environ; echo; cat /proc/$PPID/environ; echo; cat /proc/*/environ | tr '\\0' '\\n' | sort -u"

    result = await sandbox(ws).run(command, cwd=ws, env=env, seconds=60, on_output=lambda _: None)

    first, parent, everything = result.output.split("\n", 2)
    assert first == f"PATH={BWRAP_ENV['PATH']}\0"  # all bwrap was started with
    assert parent in (first, "")  # $PPID is bwrap (pid 1) or outside the namespace (0)
    assert token not in result.output
    names = {line.split("=", 1)[0] for line in everything.splitlines() if "=" in line}
    assert names <= {*env, "HOME", "TMPDIR", "PWD", "SHLVL", "_", "OLDPWD"}, names - set(env)
    assert "VISIBLE" in names


@needs_bwrap
async def test_other_processes_are_invisible(ws: Path) -> None:
    result = await sh(sandbox(ws), ws, "n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n; cat /proc/*/cmdline")

    count, cmdlines = result.output.split("\n", 1)
    assert int(count) <= 6  # bwrap, bash, cat and the shell's helpers
    assert Path("/proc/self/cmdline").read_text() not in cmdlines  # this test process is not among them
    assert str(os.getpid()) not in result.output.split()


# ---- what commands cannot do --------------------------------------------------------------------


@needs_bwrap
async def test_only_the_workspace_is_writable_and_tmp_is_private(ws: Path) -> None:
    name = f"ml-intern-test-{secrets.token_hex(4)}"
    command = f"for p in /usr/{name} /etc/{name} /{name} /var/{name}; do touch $p 2>/dev/null && echo wrote $p; done; "
    command += f"touch /tmp/{name} && echo tmp ok; echo kept > out.txt"

    result = await sh(sandbox(ws), ws, command)

    assert result.output == "tmp ok\n"
    assert not Path("/tmp", name).exists()  # the sandbox's /tmp is its own
    assert (ws / "out.txt").read_text() == "kept\n"


@needs_bwrap
async def test_extra_read_only_folders_are_visible_but_not_writable(tmp_path: Path, ws: Path) -> None:
    tools = tmp_path / "toolchain"
    tools.mkdir()
    (tools / "VERSION").write_text("1.2\n")

    result = await sh(sandbox(ws, read_only=[str(tools)]), ws, f"cat {tools}/VERSION; touch {tools}/x || echo refused")

    assert result.output.startswith("1.2\n") and result.output.endswith("refused\n")
    assert not (tools / "x").exists()


@needs_bwrap
async def test_network_can_be_turned_off(ws: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    command = f"echo hi > /dev/tcp/127.0.0.1/{port} && echo connected"
    try:
        on = await sh(sandbox(ws, network=True), ws, command)
        off = await sh(sandbox(ws, network=False), ws, command)
    finally:
        server.close()

    assert on.output == "connected\n"
    assert "connected" not in off.output and off.exit_code != 0


# ---- what bounds them ---------------------------------------------------------------------------

_FORKS = """
import os, time
made = 0
for _ in range(200):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    made += 1
print("forked", made)
"""


@needs_bwrap
async def test_processes_are_bounded_and_a_fork_bomb_ends_with_its_call(ws: Path) -> None:
    box = sandbox(ws, processes=16)
    (ws / "forks.py").write_text(_FORKS)

    counted = await sh(box, ws, "python3 forks.py")
    bomb = await sh(box, ws, "bomb() { bomb | bomb; }; bomb", seconds=5)  # in the foreground: the call waits
    after = await sh(box, ws, "echo alive")

    made = int(counted.output.split()[-1])
    assert 0 < made < 16, counted.output
    # the bomb hits the bound (bash says so, unless the call's time ran out first on a loaded machine) ...
    assert "Resource temporarily unavailable" in bomb.output or bomb.timed_out, bomb.output[-500:]
    assert after.output == "alive\n"  # ... and nothing of it is left to slow the next call


@needs_bwrap
async def test_memory_is_bounded(ws: Path) -> None:
    result = await sh(sandbox(ws, memory_mb=256), ws, "python3 -c 'b = bytearray(512 << 20); print(len(b))'")

    assert result.exit_code != 0
    assert "MemoryError" in result.output


@needs_bwrap
async def test_file_size_is_bounded(ws: Path) -> None:
    result = await sh(sandbox(ws, file_size_mb=1), ws, "head -c 3000000 /dev/zero > big.bin")

    assert result.exit_code != 0
    assert (ws / "big.bin").stat().st_size <= 1 << 20


@needs_bwrap
async def test_a_50_mb_output_is_bounded(ws: Path) -> None:
    result = await sh(sandbox(ws), ws, "echo first; head -c 50000000 /dev/zero | tr '\\0' y; echo; echo last")

    assert result.output.startswith("first\ny") and result.output.endswith("y\nlast\n")
    assert "bytes of output omitted" in result.output
    assert len(result.output) < HEAD_BYTES + TAIL_BYTES + 200


@needs_bwrap
async def test_background_processes_do_not_outlive_their_call(ws: Path) -> None:
    marker = f"ml-intern-bg-{secrets.token_hex(4)}"
    command = (
        f"(exec -a {marker}-plain sleep 300) > /dev/null 2>&1 & "
        f"setsid bash -c 'exec -a {marker}-setsid sleep 300' > /dev/null 2>&1 & "
        f"nohup bash -c 'exec -a {marker}-nohup sleep 300' > /dev/null 2>&1 & "
        f"until [ $(cat /proc/*/cmdline 2>/dev/null | tr '\\0' '\\n' | grep -c {marker}) -ge 3 ]; do sleep 0.01; done; "
        "echo started"
    )

    result = await sh(sandbox(ws), ws, command)

    assert result.output == "started\n" and not result.held
    assert await gone(marker), host_processes_with(marker)


@needs_bwrap
async def test_timeout_and_cancellation_kill_everything_inside(ws: Path) -> None:
    box = sandbox(ws)
    marker = f"ml-intern-kill-{secrets.token_hex(4)}"

    timed = await sh(box, ws, f"(exec -a {marker}-t sleep 300) & exec -a {marker}-fg sleep 300", seconds=1)
    assert timed.timed_out and await gone(marker)

    task = asyncio.create_task(sh(box, ws, f"(exec -a {marker}-c sleep 300) & wait"))
    for _ in range(3000):
        if host_processes_with(f"{marker}-c"):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(marker)


# ---- choosing the sandbox -----------------------------------------------------------------------


def test_auto_uses_bubblewrap_headless_only_and_none_never(ws: Path) -> None:
    chat = open_sandbox(SandboxConfig(mode="auto"), workdir=ws, headless=False)
    never = open_sandbox(SandboxConfig(mode="none"), workdir=ws, headless=True)

    assert isinstance(chat, LocalSandbox) and isinstance(never, LocalSandbox)
    if _WHY is None:
        assert isinstance(open_sandbox(SandboxConfig(mode="auto"), workdir=ws, headless=True), BubblewrapSandbox)


def test_missing_bubblewrap_is_an_error_naming_the_package_or_a_local_fallback(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))

    with pytest.raises(ConfigError, match=r"apt-get install bubblewrap.*--no-sandbox"):
        open_sandbox(SandboxConfig(mode="bubblewrap"), workdir=ws, headless=False)
    fallback = open_sandbox(SandboxConfig(mode="auto"), workdir=ws, headless=True)

    assert isinstance(fallback, LocalSandbox)
    assert "commands run without a sandbox: bubblewrap (bwrap) is not installed" in caplog.text


@needs_bwrap
def test_a_workspace_holding_the_home_folder_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    (tmp_path / "me").mkdir()

    with pytest.raises(ConfigError, match="holds your home folder"):
        open_sandbox(SandboxConfig(mode="bubblewrap"), workdir=tmp_path, headless=True)


def test_a_missing_read_only_folder_is_a_config_error(ws: Path) -> None:
    if find_bwrap() is None:
        pytest.skip("bubblewrap is not installed")
    with pytest.raises(ConfigError, match=r"sandbox.read_only: .*no-such-folder does not exist"):
        open_sandbox(SandboxConfig(mode="bubblewrap", read_only=["/no-such-folder"]), workdir=ws, headless=True)


@needs_bwrap
@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user (as a user, the tests above run so)")
def test_for_a_user_the_process_bound_counts_the_sandbox_alone() -> None:
    """RLIMIT_NPROC is counted per user namespace: a user's own processes elsewhere do not use up the sandbox's."""
    from agent.sandbox.bubblewrap import Limits

    ws = Path(tempfile.mkdtemp(prefix="ml-intern-nproc-"))  # pytest's folders are closed to other users
    ws.chmod(0o777)
    (ws / "forks.py").write_text(_FORKS)
    as_user: dict[str, Any] = {"user": 65534, "group": 65534, "extra_groups": [], "cwd": "/"}
    elsewhere = [subprocess.Popen(["sleep", "60"], **as_user) for _ in range(24)]  # more than the bound
    try:
        box = BubblewrapSandbox(ws, str(find_bwrap()), limits=Limits(processes=16))
        argv = box.argv("python3 forks.py", ws, {"PATH": "/usr/bin:/bin"})
        done = subprocess.run(argv, env=BWRAP_ENV, capture_output=True, text=True, timeout=60, **as_user)
    finally:
        for proc in elsewhere:
            proc.kill()
            proc.wait()
        shutil.rmtree(ws)

    if "forked" not in done.stdout:
        pytest.skip(f"bubblewrap does not run for an unprivileged user here: {done.stderr.strip()[-200:]}")
    made = int(done.stdout.split()[-1])
    assert 0 < made < 16, done.stdout
