"""What every benchmark shares: the result row, medians, subprocess timing and a clean environment."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
"""The interpreter running the benchmarks is the project's venv python; ml-intern sits next to it."""


@dataclass
class Result:
    """One row of the table: a measurement next to a baseline taken in the same run."""

    group: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: float | None = None
    """Upper bound on `value` (same unit); None when the row is informational."""
    note: str = ""
    samples: list[float] = field(default_factory=list)
    digits: int = 2

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.value < self.target

    def show(self, value: float | None) -> str:
        if value is None:
            return "—"
        if not self.unit:
            return f"{value:.{self.digits}f}"
        if self.unit in ("tokens", "chars"):
            return f"{value:,.0f} {self.unit}"
        return f"{value:.{self.digits}f} {self.unit}"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def bench_env(home: Path) -> dict[str, str]:
    """A child environment: no credentials, an empty data home, no user config, nothing that reaches the network."""
    secret = ("_API_KEY", "_TOKEN", "_KEY", "_SECRET", "_PASSWORD")
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith(secret)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure start-up as installed: imports from cached bytecode
    env.update(
        ML_INTERN_HOME=str(home / "home"),
        ML_INTERN_CONFIG=str(home / "no-config.yaml"),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_COLOR="1",
        COLUMNS="100",
    )
    return env


def run_quiet(argv: Sequence[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> float:
    """Run a command to completion, output discarded; returns wall seconds. Fails loudly on a non-zero exit."""
    start = time.perf_counter()
    done = subprocess.run(
        list(argv), env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')[-800:]}")
    return seconds


def interleaved(
    commands: Mapping[str, Sequence[str]], repeats: int, env: dict[str, str], cwd: Path
) -> dict[str, list[float]]:
    """Time each command `repeats` times, round-robin, so drift on a noisy machine hits them all alike."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # one warm-up each: page cache, .pyc files
        run_quiet(argv, env, cwd)
    for _ in range(repeats):
        for name, argv in commands.items():
            times[name].append(run_quiet(argv, env, cwd))
    return times


@contextlib.contextmanager
def scripted_server(
    items: Sequence[Any], folder: Path, env: dict[str, str], *, timings: Path | None = None, chunk_chars: int = 6
) -> Iterator[str]:
    """`python -m agent.llm.server` serving `items` in its own process; yields the base URL. With `timings`, the
    server appends when it received and answered each completion (time.monotonic())."""
    folder.mkdir(parents=True, exist_ok=True)
    script, port_file = folder / "script.json", folder / "port"
    port_file.unlink(missing_ok=True)
    script.write_text(json.dumps([i.to_dict() if hasattr(i, "to_dict") else i for i in items]))
    args = ["--script", str(script), "--port-file", str(port_file), "--chunk-chars", str(chunk_chars)]
    if timings is not None:
        args += ["--timings", str(timings)]
    argv = [sys.executable, "-m", "agent.llm.server", *args]
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen(argv, env=env, cwd=folder, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (folder / "server.log").read_text(errors="replace")[-800:]
                raise RuntimeError(f"the scripted server did not start: {tail}")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{int(port_file.read_text())}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
