"""Toolchains outside the system folders are shown read-only in the sandbox; credentials beside them are not."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from agent.config import SandboxConfig
from agent.redact import scrub_env
from agent.sandbox import open_sandbox
from agent.sandbox.bubblewrap import find_bwrap
from agent.sandbox.toolchains import toolchains


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_a_virtual_environment_and_the_interpreter_it_links_to(tmp_path: Path) -> None:
    real = executable(tmp_path / "opt" / "py" / "3.11" / "bin" / "python3.11")
    venv = tmp_path / "project" / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = x\n")
    (venv / "bin" / "python3").symlink_to(real)
    found = toolchains(str(venv / "bin"), workdir=tmp_path / "elsewhere")
    assert found == [venv.resolve(), (tmp_path / "opt" / "py" / "3.11").resolve()]


def test_what_the_workspace_shows_already_and_credential_folders_are_left_out(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    executable(ws / "tools" / "bin" / "python3")
    executable(tmp_path / ".ssh" / "bin" / "uv")
    search = os.pathsep.join([str(ws / "tools" / "bin"), str(tmp_path / ".ssh" / "bin")])
    assert toolchains(search, workdir=ws) == []


def test_a_prefix_right_under_home_shows_only_its_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    executable(tmp_path / ".cargo" / "bin" / "cargo")
    (tmp_path / ".cargo" / "credentials.toml").write_text("token = 'x'\n")
    assert toolchains(str(tmp_path / ".cargo" / "bin"), workdir=tmp_path / "ws") == [
        (tmp_path / ".cargo" / "bin").resolve()
    ]


@pytest.mark.skipif(find_bwrap() is None, reason="bubblewrap is not installed (apt-get install bubblewrap)")
async def test_the_running_python_works_in_the_sandbox(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    env = scrub_env(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    box = open_sandbox(SandboxConfig(mode="bubblewrap"), workdir=ws, headless=True, search_path=env["PATH"])
    done = await box.run("python3 -c 'import json; print(json.dumps(1))'", cwd=ws, env=env, seconds=60, on_output=print)
    assert (done.exit_code, done.output) == (0, "1\n")
