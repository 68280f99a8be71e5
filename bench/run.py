"""Benchmarks of ML Intern: cold start, loop overhead, model path, prompt size, memory. Each next to a same-run
baseline.

.venv/bin/python bench/run.py [--quick] [--profile] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # this process imports litellm for the HTTP rows
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rich.console import Console  # noqa: E402

from bench import memory, model_path, overhead, startup, tokens  # noqa: E402
from bench.common import Result  # noqa: E402
from bench.overhead import HotSpot  # noqa: E402
from bench.report import Setting, markdown, table  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
PROFILE_STEPS = 200


def plan(quick: bool, tmp: Path) -> list[tuple[str, Callable[[], list[Result]]]]:
    """The measurements in order, with their repeats."""
    n = (
        {"startup": 5, "loop": 3, "http": 1, "memory": 1}
        if quick
        else {"startup": 15, "loop": 7, "http": 3, "memory": 3}
    )
    return [
        ("cold start", lambda: startup.measure(n["startup"], tmp)),
        ("loop overhead", lambda: overhead.measure(n["loop"], tmp)),
        ("model path", lambda: model_path.measure(n["http"], tmp)),
        ("prompt size", lambda: tokens.measure(tmp)),
        ("peak memory", lambda: memory.measure(n["memory"], tmp)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about a minute)")
    parser.add_argument("--profile", action="store_true", help=f"print a cProfile of a {PROFILE_STEPS}-step run")
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    start, load = time.perf_counter(), os.getloadavg()[0]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="ml-intern-bench-") as folder:
        tmp = Path(folder)
        for label, measure in plan(args.quick, tmp):
            with console.status(f"measuring {label}…"):
                results += measure()
            console.log(f"{label}: done")
        raw, spots = "", list[HotSpot]()
        if args.profile or args.write_docs:
            with console.status("profiling the loop…"):
                raw, spots = overhead.profile(PROFILE_STEPS, tmp)
    seconds = time.perf_counter() - start
    console.print(table(results))
    if args.profile:
        console.print(raw, highlight=False, markup=False)
    if args.write_docs:
        old = DOC.read_text() if DOC.exists() else None
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(
            markdown(results, Setting(args.quick, seconds, PROFILE_STEPS, (load, os.getloadavg()[0])), spots, old)
        )
        console.print(f"wrote {DOC.relative_to(ROOT)}")
    failed = [r for r in results if r.passed is False]
    console.print(f"{len(failed)} target(s) missed" if failed else "all targets met", f"in {seconds:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
