"""Peak memory of a headless `ml-intern "task"` run against the scripted server, next to `import litellm`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from agent.llm.scripted import Turn, call, calls, say
from bench.common import VENV_BIN, Result, bench_env, median, scripted_server

TARGET_MIB = 130.0
_PEAK = """
import resource, subprocess, sys, time
with open(sys.argv[1], "wb") as log:
    start = time.perf_counter()
    code = subprocess.run(sys.argv[2:], stdout=log, stderr=log).returncode
    seconds = time.perf_counter() - start
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, seconds)
"""
"""Runs a command as its only child (output to the log file argv[1]); prints its exit code, peak RSS in KiB and
wall seconds."""


def headless_script() -> list[Turn]:
    """~20 steps touching every built-in tool (plan, bash, write, read, edit, search), then an answer."""
    todo = [{"content": "write the modules", "status": "in_progress"}, {"content": "check them", "status": "pending"}]
    steps = [call("plan", "Planning.", todos=todo), call("bash", command="ls -la")]
    for i in range(4):
        steps.append(call("write", path=f"src/mod{i}.py", content=f"def f{i}(x):\n    return x * {i}\n"))
        steps.append(call("read", path=f"src/mod{i}.py"))
        steps.append(call("edit", path=f"src/mod{i}.py", old=f"x * {i}", new=f"x + {i}"))
    steps.append(calls(("search", {"pattern": "def f", "path": "src"}), ("bash", {"command": "ls src | wc -l"})))
    steps.append(call("bash", command="python3 -c 'print(sum(range(10**6)))'"))
    steps.append(call("bash", command="for i in 1 2 3; do echo line $i; done"))
    steps.append(call("search", glob="src/*.py"))
    steps.append(call("plan", todos=[{**t, "status": "completed"} for t in todo]))
    steps.append(say("Done: four modules written, edited and checked."))
    return steps


def peak_rss(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Peak resident memory of `argv` (and any children it waited for) in MiB, and its wall seconds."""
    log = cwd / "peak.log"
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(log), *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    code, kib, seconds = done.stdout.split()
    if code != "0":
        raise RuntimeError(f"{' '.join(argv)} exited {code}:\n{log.read_text(errors='replace')[-1500:]}")
    return int(kib) / 1024, float(seconds)


def headless_peak(tmp: Path, n: int) -> tuple[float, float]:
    """Peak RSS (MiB) and wall seconds of one headless run; the server has TCP_NODELAY so its wall is the CLI's."""
    folder = tmp / f"memory-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "ws").mkdir(parents=True)
    env = bench_env(folder)
    with scripted_server(headless_script(), folder / "server", env) as base_url:
        argv = [
            str(VENV_BIN / "ml-intern"),
            "Write four small modules and check them.",
            "--base-url",
            base_url,
            "--model",
            "openai/x",
            "--workdir",
            str(folder / "ws"),
        ]
        return peak_rss(argv, env, folder)


def measure(repeats: int, tmp: Path) -> list[Result]:
    env = bench_env(tmp)
    runs, litellm, bare = [], [], []
    for i in range(repeats):
        runs.append(headless_peak(tmp, i))
        litellm.append(peak_rss([sys.executable, "-c", "import litellm"], env, tmp))
        bare.append(peak_rss([sys.executable, "-c", "pass"], env, tmp))
    group = "4. headless run"
    steps = len(headless_script()) - 1
    rss = {k: median([r[0] for r in v]) for k, v in (("run", runs), ("litellm", litellm), ("bare", bare))}
    wall = {k: median([r[1] for r in v]) for k, v in (("run", runs), ("litellm", litellm))}
    return [
        Result(
            group,
            f"peak RSS, ml-intern headless, {steps} steps",
            rss["run"],
            "MiB",
            rss["litellm"],
            "python -c 'import litellm'",
            target=TARGET_MIB,
            samples=[r[0] for r in runs],
            digits=1,
        ),
        Result(
            group,
            "peak RSS, python -c 'import litellm'",
            rss["litellm"],
            "MiB",
            rss["bare"],
            "python -c pass",
            samples=[r[0] for r in litellm],
            digits=1,
        ),
        Result(
            group,
            f"wall, ml-intern headless, {steps} steps",
            wall["run"],
            "s",
            wall["litellm"],
            "python -c 'import litellm'",
            samples=[r[1] for r in runs],
            note="start-up included",
        ),
    ]
