"""The results as a rich table for the terminal and as docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from bench.common import Result
from bench.overhead import HotSpot

FINDINGS = re.compile(r"<!-- findings:start -->.*?<!-- findings:end -->", re.DOTALL)
KEPT_SECTIONS = re.compile(r"<!-- ([a-z-]+):start -->.*?<!-- \1:end -->", re.DOTALL)
"""Sections other benchmarks write (research, bot-bench, thread-bench, comment-bench): kept as they are."""
"""Written by bench/app_server.py; kept when this report is regenerated."""


@dataclass
class Setting:
    """Where and how the numbers were taken."""

    quick: bool
    seconds: float
    steps: int
    """Steps of the profiled trajectory."""
    load: tuple[float, float]
    """1-minute load average at the start and at the end of the run."""

    @staticmethod
    def machine() -> str:
        cpu = ""
        try:
            cpu = next(
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            )
        except (OSError, StopIteration):
            cpu = platform.processor()
        return f"{os.cpu_count()} cores ({cpu or 'unknown CPU'}), {platform.system()} {platform.machine()}"

    def lines(self) -> list[str]:
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return [
            f"- Date: {now}",
            f"- Machine: {self.machine()}",
            f"- Python {platform.python_version()}, litellm {version('litellm')}, ml-intern {version('ml-intern')}",
            f"- Mode: {'--quick' if self.quick else 'full'} ({self.seconds:.0f} s for the whole run)",
            f"- Load average (1 min) at start / end: {self.load[0]:.1f} / {self.load[1]:.1f} "
            "(other work on the machine inflates both a value and its baseline)",
        ]


def ratio(r: Result) -> str:
    value = r.ratio
    if value is None:
        return "—"
    return f"{value:.0f}×" if value >= 10 else f"{value:.2f}×"


def target(r: Result) -> str:
    return "—" if r.target is None else f"< {r.show(r.target)}"


def verdict(r: Result) -> str:
    return {None: "info", True: "pass", False: "FAIL"}[r.passed]


def table(results: list[Result]) -> Table:
    t = Table(
        title="ML Intern benchmarks (medians; baseline measured in the same run)",
        title_justify="left",
        caption=escape("Notes: " + "; ".join(f"[{i}] {r.note}" for i, r in enumerate(results, 1) if r.note)),
        caption_justify="left",
    )
    for name in ("Measurement (vs baseline)", "Value", "Baseline", "Ratio", "Target", "Result"):
        t.add_column(name, justify="left" if name.startswith(("Measurement", "Result")) else "right")
    group = ""
    for i, r in enumerate(results, 1):
        if r.group != group:
            group = r.group
            t.add_section()
        style = {"pass": "green", "FAIL": "bold red"}.get(verdict(r), "dim")
        name = escape(f"{r.group[:2]} {r.name}" + (f" [{i}]" if r.note else ""))
        if r.baseline_name:
            name += f"\n   [dim]vs {escape(r.baseline_name)}[/]"
        t.add_row(name, r.show(r.value), r.show(r.baseline), ratio(r), target(r), f"[{style}]{verdict(r)}[/]")
    return t


def markdown_table(results: list[Result]) -> list[str]:
    out = [
        "| Measurement | Value | Baseline (same run) | Ratio | Target | Result | Notes |",
        "|---|--:|---|--:|---|---|---|",
    ]
    for r in results:
        base = f"{r.show(r.baseline)} ({r.baseline_name})" if r.baseline_name else r.show(r.baseline)
        mark = {"pass": "pass", "FAIL": "**FAIL**", "info": "info"}[verdict(r)]
        cells = [f"{r.group[:2]} {r.name}", r.show(r.value), base, ratio(r), target(r), mark, r.note]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return out


def hot_spot_table(spots: list[HotSpot], steps: int) -> list[str]:
    out = ["| Function | Calls | Own time | Cumulative | Cumulative per step |", "|---|--:|--:|--:|--:|"]
    for s in spots:
        out.append(
            f"| `{s.where}` | {s.calls:,} | {s.own_ms:.1f} ms | {s.cum_ms:.1f} ms | {s.cum_ms / steps * 1000:.0f} µs |"
        )
    return out


METHOD = """\
## What each measurement means

**1. Cold start.** Wall time of fresh processes, each started `repeats` times round-robin after one warm-up:
`ml-intern --help` (the installed console script), `python -c "import agent"` and `python -c "import agent.loop"`,
next to a bare interpreter (`python -c pass`) and one that imports argparse. The difference is what our own
imports cost before a prompt is read. A separate fresh process runs `--help` and lists which heavy packages
(litellm, mcp, huggingface_hub, openai, httpx, aiohttp) ended up in `sys.modules`; it must be none.

**2. Loop overhead.** A `ScriptedModel` drives a trajectory of N steps; each step is a short remark and one real
`read` of a different small file, then a final answer. The real `Agent` runs it (session, trace file, events,
redaction, approvals, doom-loop check, output bounding), with default config, headless. Time inside the model's
`complete()` (minus the loop's own streaming callback) and inside the tool function is measured by wrappers and
subtracted from the wall time between submitting the task and receiving `turn_complete`; the rest, divided by N,
is the loop's overhead per step. Tool argument validation counts as loop work. The baseline runs the same scripted
model calls and the same tool functions in a hand-written `while` loop over a plain list (no events, trace or
checks): the cost of the loop over nothing. `read` runs in a worker thread, and the event loop may do its own
work while it runs, so single runs split tool time and overhead a little differently; the medians smooth that.
The growth row divides ms/step at 200 steps by ms/step at 10 steps:
about 1× means the per-step cost does not depend on the history; 20× would mean it grows linearly with it
(quadratic total time).


**3. Prompt size.** A 50-step trajectory where every step runs `bash` printing ~100 KB. The value is the sum of the
prompt tokens of every request the model received (the scripted model's 4-characters-a-token estimate, summary
requests included) with the default config: tool output cut at `context.tool_output_chars` (the rest spilled to
a file) and compaction at `context.compact_at` of a 128k window. The baseline is the same trajectory with bounding
effectively off (`tool_output_chars` 10⁹, `compact_at` 1.0, a 10⁹-token window). The second row is the size of
what is re-sent with every request before any work (system prompt + JSON tool schemas, 6 built-in tools), against
the ~55k characters the upstream ML Intern sends (a reference figure, not measured here).

**4. Headless run.** Peak RSS (`ru_maxrss` of a wrapper process whose only child is the command) and wall time
of a headless `ml-intern "task" --base-url … --model openai/x` run (the direct client) of ~19 steps over all six
built-in tools
against the scripted server (in its own process), next to `python -c "import litellm"` and a bare
interpreter.

**5. Model path.** Everything between the model's answer and the next request, over real HTTP, against
`python -m agent.llm.server` in its own process, which logs the instant it finished writing each answer and the
instant it had read each request (`time.monotonic()`, one clock for both processes). A step is the gap between
the two, less that step's tool time (the `read` tool, timed around its function): the client parsing the
answer, the loop (events, trace, redaction, checks), the next request being built and sent. Trajectories of
10, 50 and 200 steps (each a `read` of a small file), streamed and not, for the direct client (`llm.client:
auto`) and for litellm (`llm.client: litellm`, which is how every run went before the direct client). The
baseline is a bare loop with the same client library (`bench/bare_client.py`: httpx, or `litellm.acompletion`),
dict messages, the same system prompt and tool specs, answering each call by reading the file. The growth row
divides the median of the last 10 steps of the 200-step run by the median of its first 10. The headless rows
run `ml-intern "task" --base-url … --model scripted` for 200 steps as a fresh process (after one warm-up run,
so bytecode is cached as it is for an installed package), next to `python -m bench.bare_client` as a fresh
process: start to first request received, last answer written to process exit, peak RSS. The large-argument
rows stream one `write` call whose argument is 50 KB to 1 MB, in 6-character deltas (one SSE event each), next to
httpx draining the same stream from the same server.
"""


def write_section(doc: Path, start: str, end: str, block: str) -> None:
    """Put `block` (which begins with `start` and ends with `end`) in `doc`, in place of the section it replaces,
    or at the end the first time."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)


def markdown(results: list[Result], setting: Setting, spots: list[HotSpot], old: str | None) -> str:
    """The whole of docs/benchmarks.md; a findings block of an earlier version is kept."""
    found = FINDINGS.search(old) if old else None
    findings = found.group(0) if found else None
    parts = [
        "# Benchmarks",
        "",
        "Run them with `.venv/bin/python bench/run.py` (`--quick` for fewer repeats, `--profile` to print a profile of "
        "the loop, `--write-docs` to regenerate this file). They are not part of the test run. Every number is a "
        "median over repeats and stands next to a baseline measured in the same run, so a noisy machine shows up in "
        "both; compare ratios across machines, not absolute values.",
        "",
        "## Results",
        "",
        *setting.lines(),
        "",
        *markdown_table(results),
        "",
        METHOD,
        f"## Where the loop's time goes ({setting.steps}-step trajectory under cProfile)",
        "",
        "Agent functions by cumulative time, without the ones that wrap the model or tool call, the scripted model "
        "and the tool itself. Profiling slows everything down, so read the columns relative to each other.",
        "",
        *hot_spot_table(spots, setting.steps),
        "",
    ]
    if findings:
        parts += ["## Findings", "", findings, ""]
    for kept in KEPT_SECTIONS.finditer(old or ""):
        if kept.group(1) != "findings":
            parts += [kept.group(0), ""]
    return "\n".join(parts)
