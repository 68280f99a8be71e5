"""Loop overhead per step: the real Agent against a bare loop, same scripted model calls and real tool calls."""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import shutil
from dataclasses import dataclass
from pathlib import Path

from agent.llm.scripted import ScriptedModel, Turn, call, say
from bench.common import ROOT, Result, median
from bench.trajectory import Run, bench_config, run_agent, run_bare

SIZES = (10, 50, 200)
TARGET_MS = 5.0
"""Overhead per step at 200 steps must stay under this."""


def note_files(workdir: Path, n: int) -> None:
    """`n` small files (20 lines each) the trajectory reads, one per step."""
    notes = workdir / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = notes / f"{i}.txt"
        if not path.exists():
            path.write_text(
                "".join(f"note {i}, line {j}: the quick brown fox jumps over the lazy dog\n" for j in range(20))
            )


def read_script(n: int) -> list[Turn | str]:
    """`n` steps, each a short remark and one `read` of a different file, then an answer."""
    steps: list[Turn | str] = [call("read", f"Reading note {i}.", path=f"notes/{i}.txt") for i in range(n)]
    return [*steps, say(f"I read {n} notes; they all describe a fox.")]


def _fresh(tmp: Path, name: str) -> tuple[Path, Path]:
    folder = tmp / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "home").mkdir(parents=True)
    return folder / "home", folder / "spill"


async def one_pair(n: int, workdir: Path, tmp: Path) -> tuple[Run, Run]:
    """The same n-step trajectory through the Agent and through the bare loop."""
    config = bench_config()
    home, _ = _fresh(tmp, f"agent-{n}")
    ours, _agent = await run_agent(ScriptedModel(read_script(n)), config, workdir, home)
    _, spill = _fresh(tmp, f"bare-{n}")
    bare = await run_bare(ScriptedModel(read_script(n)), config, workdir, spill)
    for run in (ours, bare):
        if run.tool_calls != n or run.model_calls != n + 1:
            raise RuntimeError(
                f"expected {n} tool calls and {n + 1} model calls, got {run.tool_calls}, {run.model_calls}"
            )
    return ours, bare


def measure(repeats: int, tmp: Path) -> list[Result]:
    workdir = tmp / "ws"
    note_files(workdir, max(SIZES))
    asyncio.run(one_pair(10, workdir, tmp))  # warm-up: imports, template compilation, pydantic schemas
    rows: list[Result] = []
    per_step: dict[int, float] = {}
    group = "2. loop overhead"
    for n in SIZES:
        pairs = [asyncio.run(one_pair(n, workdir, tmp)) for _ in range(repeats)]
        ours = [p[0].overhead / n * 1000 for p in pairs]
        bare = [p[1].overhead / n * 1000 for p in pairs]
        per_step[n] = median(ours)
        wall_ours = median([p[0].wall / n * 1000 for p in pairs])
        wall_bare = median([p[1].wall / n * 1000 for p in pairs])
        rows.append(
            Result(
                group,
                f"overhead per step, {n} steps",
                per_step[n],
                "ms",
                median(bare),
                "bare loop overhead",
                target=TARGET_MS if n == max(SIZES) else None,
                samples=ours,
                digits=3,
                note=f"wall {wall_ours:.2f} vs bare {wall_bare:.2f} ms/step",
            )
        )
    lo, hi = min(SIZES), max(SIZES)
    rows.append(
        Result(
            group,
            f"growth: ms/step at {hi} ÷ at {lo}",
            per_step[hi] / per_step[lo],
            "×",
            None,
            "",
            target=hi / lo,
            note=f"{hi / lo:.0f}× would be quadratic total time; ~1× is linear",
        )
    )
    return rows


DRIVERS = {"_guarded", "_turn", "_act", "_call_model", "run", "_run_one", "_run_batch", "complete", "events"}
"""Functions that wrap the model or tool call (their cumulative time includes it); left out of the hot spots."""
NOT_LOOP = ("agent/llm/scripted.py", "agent/tools/files.py")
"""The scripted model and the tool the trajectory calls: their time is not loop overhead."""


@dataclass
class HotSpot:
    """One agent function in a profile of an n-step trajectory."""

    where: str
    calls: int
    own_ms: float
    cum_ms: float


def profile(n: int, tmp: Path, top: int = 25) -> tuple[str, list[HotSpot]]:
    """cProfile of one n-step Agent trajectory: the raw top by own time, and agent functions by cumulative time."""
    workdir = tmp / "ws"
    note_files(workdir, n)
    config = bench_config()
    asyncio.run(run_agent(ScriptedModel(read_script(10)), config, workdir, _fresh(tmp, "profile-warm")[0]))
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(run_agent(ScriptedModel(read_script(n)), config, workdir, _fresh(tmp, "profile")[0]))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    spots = []
    for (filename, line, name), (_, calls, own, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        path = Path(filename)
        if not path.is_relative_to(ROOT / "agent") or name in DRIVERS:
            continue
        where = path.relative_to(ROOT).as_posix()
        if where in NOT_LOOP:
            continue
        spots.append(HotSpot(f"{where}:{line} {name}", calls, own * 1000, cum * 1000))
    spots.sort(key=lambda s: -s.cum_ms)
    return out.getvalue(), spots[:top]
