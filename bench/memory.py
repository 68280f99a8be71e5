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
import resource, subprocess, sys
with open(sys.argv[1], "wb") as log:
    code = subprocess.run(sys.argv[2:], stdout=log, stderr=log).returncode
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
"""Runs a command as its only child (output to the log file argv[1]); prints its exit code and peak RSS in KiB."""


def headless_script() -> list[Turn]:
    """~20 steps over the file, search and bash tools, then an answer.

    `plan` is left out: at the time of writing a plan call ends the turn with an internal error (its validated
    arguments hold pydantic objects that Tool.describe_call cannot JSON-encode); see docs/benchmarks.md.
    """
    steps: list[Turn] = [call("bash", "Looking around.", command="ls -la")]
    for i in range(4):
        steps.append(call("write", path=f"src/mod{i}.py", content=f"def f{i}(x):\n    return x * {i}\n"))
        steps.append(call("read", path=f"src/mod{i}.py"))
        steps.append(call("edit", path=f"src/mod{i}.py", old=f"x * {i}", new=f"x + {i}"))
    steps.append(calls(("search", {"pattern": "def f", "path": "src"}), ("bash", {"command": "ls src | wc -l"})))
    steps.append(call("bash", command="python3 -c 'print(sum(range(10**6)))'"))
    steps.append(call("bash", command="for i in 1 2 3; do echo line $i; done"))
    steps.append(call("search", glob="src/*.py"))
    steps.append(say("Done: four modules written, edited and checked."))
    return steps


def peak_rss(argv: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    """Peak resident memory of `argv` (and any children it waited for), in MiB."""
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
    code, kib = done.stdout.split()
    if code != "0":
        raise RuntimeError(f"{' '.join(argv)} exited {code}:\n{log.read_text(errors='replace')[-1500:]}")
    return int(kib) / 1024


def headless_peak(tmp: Path, n: int) -> float:
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
    group = "4. memory"
    steps = len(headless_script()) - 1
    return [
        Result(
            group,
            f"peak RSS, headless run ({steps} steps)",
            median(runs),
            "MiB",
            median(litellm),
            "python -c 'import litellm'",
            target=TARGET_MIB,
            samples=runs,
            digits=1,
        ),
        Result(
            group,
            "peak RSS, python -c 'import litellm'",
            median(litellm),
            "MiB",
            median(bare),
            "python -c pass",
            samples=litellm,
            digits=1,
        ),
    ]
