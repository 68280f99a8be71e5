"""`ml-intern serve` as a real subprocess, for restart and multi-process tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(tmp_path: Path, values: dict[str, str]) -> dict[str, str]:
    """A clean environment: no real credentials, an empty data home, the bot's settings."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN", "_KEY", "_SECRET"))}
    env.update(
        ML_INTERN_HOME=str(tmp_path / "home"),
        ML_INTERN_CONFIG=str(tmp_path / "no-config.yaml"),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
    )
    env.update(values)
    return env


class ServerProcess:
    """A running `python -m agent serve`; its stderr goes to a file so a failure can be shown."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"server-{self.port}.log"
        self._out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "serve", "--port", str(self.port), *args],
            env=env,
            cwd=cwd,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready:\n{self.log.read_text()}")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self._out.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self._out.close()
        return self.proc.returncode
