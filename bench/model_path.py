"""The model path end to end, against the scripted server in its own process, next to a bare loop of the same
client library in the same run.

- Step: from the server writing its answer to the server receiving the next request, the tool call excluded
  (the server logs both instants; the tool's own time is subtracted per step). At 10/50/200 steps, streamed and
  not, for the direct client (`llm.client: auto`) and for litellm (`llm.client: litellm`, the path before).
- Headless CLI, 200 steps: time from start to the first request, from the last answer to exit, peak RSS.
- Streaming one large tool argument in 6-character deltas, next to draining the same bytes with httpx.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from agent.llm import model_from_config
from agent.llm.scripted import Turn
from agent.messages import ToolCall
from bench.bare_client import bare_loop
from bench.common import VENV_BIN, Result, bench_env, median, scripted_server
from bench.overhead import note_files, read_script
from bench.trajectory import TASK, bench_config, run_agent, selected_tools

SIZES = (10, 50, 200)
STEP_TARGET_MS = 10.0
FIRST_REQUEST_TARGET_S = 1.0
RSS_TARGET_MIB = 130.0
CLIENTS = {"auto": "direct client", "litellm": "litellm"}
BARE = {"auto": "httpx", "litellm": "litellm"}
GROUP = "5. model path"

_RUN = """
import resource, subprocess, sys, time
with open(sys.argv[1], "wb") as log:
    start = time.monotonic()
    code = subprocess.run(sys.argv[2:], stdout=log, stderr=log).returncode
    end = time.monotonic()
print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, start, end)
"""
"""Runs a command as its only child; prints its exit code, peak RSS (KiB) and its start and end (monotonic)."""


def _timings(path: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def step_ms(path: Path, tool_laps: list[float]) -> list[float]:
    """Per step: the server's answer → the next request it received, less that step's tool time, in ms."""
    rows = _timings(path)
    if len(rows) != len(tool_laps) + 1:
        raise RuntimeError(f"{len(rows)} requests for {len(tool_laps)} tool calls")
    return [(rows[i + 1]["received"] - rows[i]["answered"] - tool_laps[i]) * 1000 for i in range(len(tool_laps))]


def _prompt(folder: Path, workdir: Path) -> Path:
    """The system prompt and tool specs the agent sends, for the bare loop to send the same."""
    from agent.session import system_prompt

    config = bench_config()
    messages = [{"role": "system", "content": system_prompt(config, workdir, True)}, {"role": "user", "content": TASK}]
    path = folder / "prompt.json"
    path.write_text(json.dumps({"messages": messages, "tools": [t.spec() for t in selected_tools(config)]}))
    return path


async def _ours(client: str, base_url: str, stream: bool, workdir: Path, home: Path) -> list[float]:
    config = bench_config(model="scripted", base_url=base_url, stream=stream, llm={"client": client})
    run, _ = await run_agent(model_from_config(config), config, workdir, home)
    return run.tool_laps


def one_run(kind: str, client: str, n: int, stream: bool, tmp: Path, workdir: Path) -> list[float]:
    """Per-step ms of one n-step trajectory, through the agent (`ours`) or the bare loop."""
    folder = tmp / f"path-{kind}-{client}-{n}-{stream}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    timings = folder / "timings.jsonl"
    with scripted_server(read_script(n), folder / "server", bench_env(folder), timings=timings) as base_url:
        if kind == "ours":
            laps = asyncio.run(_ours(client, base_url, stream, workdir, folder / "home"))
        else:
            prompt = json.loads(_prompt(folder, workdir).read_text())
            laps = asyncio.run(bare_loop(BARE[client], base_url, prompt, workdir, stream))
    return step_ms(timings, laps)


def steps(repeats: int, tmp: Path, workdir: Path) -> list[Result]:
    rows: list[Result] = []
    for client in CLIENTS:
        for stream in (True, False):
            how = f"{CLIENTS[client]}, {'streamed' if stream else 'not streamed'}"
            ours: dict[int, list[list[float]]] = {n: [] for n in SIZES}
            bare: dict[int, list[list[float]]] = {n: [] for n in SIZES}
            one_run("ours", client, 10, stream, tmp, workdir)  # warm-up: lazy imports, first connection
            for _ in range(repeats):
                for n in SIZES:
                    ours[n].append(one_run("ours", client, n, stream, tmp, workdir))
                    bare[n].append(one_run("bare", client, n, stream, tmp, workdir))
            for n in SIZES:
                value = median([median(r) for r in ours[n]])
                rows.append(
                    Result(
                        GROUP,
                        f"step, {n} steps, {how}",
                        value,
                        "ms",
                        median([median(r) for r in bare[n]]),
                        f"bare {BARE[client]} loop",
                        target=STEP_TARGET_MS if client == "auto" and n == max(SIZES) else None,
                        digits=2,
                    )
                )
            first = median([median(r[:10]) for r in ours[max(SIZES)]])
            last = median([median(r[-10:]) for r in ours[max(SIZES)]])
            bare_growth = median([median(r[-10:]) / median(r[:10]) for r in bare[max(SIZES)]])
            rows.append(
                Result(
                    GROUP,
                    f"growth: last 10 ÷ first 10 of {max(SIZES)} steps, {how}",
                    last / first,
                    "×",
                    bare_growth,
                    f"bare {BARE[client]} loop",
                    target=1.5 if client == "auto" else None,
                    note=f"first 10 {first:.2f} ms, last 10 {last:.2f} ms per step",
                )
            )
    return rows


def _measured(argv: list[str], folder: Path, env: dict[str, str], timings: Path) -> tuple[float, float, float]:
    """Start → first request (s), last answer → exit (s), peak RSS (MiB) of one process."""
    log = folder / "run.log"
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(log), *argv], env=env, cwd=folder, capture_output=True, text=True, check=True
    )
    code, kib, start, end = done.stdout.split()
    if code != "0":
        raise RuntimeError(f"{' '.join(argv[:3])} exited {code}:\n{log.read_text(errors='replace')[-1500:]}")
    rows = _timings(timings)
    return rows[0]["received"] - float(start), float(end) - rows[-1]["answered"], int(kib) / 1024


def cli_run(kind: str, client: str, n: int, tmp: Path, workdir: Path) -> tuple[float, float, float]:
    folder = tmp / f"cli-{kind}-{client}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env, timings = bench_env(folder), folder / "timings.jsonl"
    with scripted_server(read_script(n), folder / "server", env, timings=timings) as base_url:
        if kind == "ours":
            argv = [str(VENV_BIN / "ml-intern"), TASK, "--base-url", base_url, "--model", "scripted"]
            argv += ["--workdir", str(workdir), "-c", f"llm.client={client}"]
        else:
            prompt = _prompt(folder, workdir)
            argv = [sys.executable, "-m", "bench.bare_client", "--client", BARE[client], "--base-url", base_url]
            argv += ["--prompt", str(prompt), "--workdir", str(workdir)]
        return _measured(argv, folder, env, timings)


def headless(repeats: int, tmp: Path, workdir: Path) -> list[Result]:
    n, rows = max(SIZES), []
    for client in CLIENTS:
        runs: dict[str, list[tuple[float, float, float]]] = {"ours": [], "bare": []}
        cli_run("ours", client, 10, tmp, workdir)  # warm-up: bytecode caches, page cache
        cli_run("bare", client, 10, tmp, workdir)
        for _ in range(repeats):
            for kind in runs:
                runs[kind].append(cli_run(kind, client, n, tmp, workdir))
        base = f"python -m bench.bare_client --client {BARE[client]}"
        what = (("start → first request", "s", FIRST_REQUEST_TARGET_S), ("last answer → exit", "s", None))
        for i, (name, unit, target) in enumerate((*what, ("peak RSS", "MiB", RSS_TARGET_MIB))):
            rows.append(
                Result(
                    GROUP,
                    f"headless {n} steps, {CLIENTS[client]}: {name}",
                    median([r[i] for r in runs["ours"]]),
                    unit,
                    median([r[i] for r in runs["bare"]]),
                    base,
                    target=target if client == "auto" else None,
                    digits=1 if unit == "MiB" else 3,
                    samples=[r[i] for r in runs["ours"]],
                )
            )
    return rows


async def _drain(base_url: str) -> None:
    import httpx

    body = {"model": "scripted", "messages": [{"role": "user", "content": "go"}], "stream": True}
    async with (
        httpx.AsyncClient(timeout=600) as client,
        client.stream("POST", base_url + "/chat/completions", json=body) as r,
    ):
        async for _ in r.aiter_bytes():
            pass


async def _complete(client: str, base_url: str) -> int:
    from agent.messages import Message

    config = bench_config(model="scripted", base_url=base_url, llm={"client": client, "timeout": 600})
    model = model_from_config(config)
    try:
        reply = await model.complete([Message.user("go")], [], stream=True)
    finally:
        await model.aclose()  # type: ignore[attr-defined]
    return len(reply.message.tool_calls[0].arguments)


def big_argument(repeats: int, tmp: Path) -> list[Result]:
    """One tool argument streamed in 6-character deltas: the client's time against httpx draining the stream."""
    rows = []
    for client, size in (("auto", 200_000), ("auto", 1_000_000), ("litellm", 50_000)):
        arguments = json.dumps({"content": "x" * size})
        turn = Turn(tool_calls=[ToolCall("call_big", "write", arguments)])
        times: dict[str, list[float]] = {"ours": [], "drain": []}
        folder = tmp / f"big-{client}-{size}"
        with scripted_server([turn] * (2 * repeats + 1), folder, bench_env(folder)) as base_url:
            asyncio.run(_complete(client, base_url))  # warm-up
            for _ in range(repeats):
                start = time.perf_counter()
                if asyncio.run(_complete(client, base_url)) != len(arguments):
                    raise RuntimeError("the large argument arrived cut")
                times["ours"].append(time.perf_counter() - start)
                start = time.perf_counter()
                asyncio.run(_drain(base_url))
                times["drain"].append(time.perf_counter() - start)
        rows.append(
            Result(
                GROUP,
                f"{size // 1000} KB tool argument in {size // 6:,} deltas, {CLIENTS[client]}",
                median(times["ours"]),
                "s",
                median(times["drain"]),
                "httpx draining the same stream",
                samples=times["ours"],
            )
        )
    return rows


def measure(repeats: int, tmp: Path) -> list[Result]:
    workdir = tmp / "ws"
    note_files(workdir, max(SIZES))
    return [*steps(repeats, tmp, workdir), *headless(repeats, tmp, workdir), *big_argument(repeats, tmp)]


def main() -> None:
    """Run just this benchmark: python -m bench.model_path [repeats]."""
    import tempfile

    from rich.console import Console

    from bench.report import table

    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    with tempfile.TemporaryDirectory(prefix="ml-intern-bench-") as folder:
        Console(width=160).print(table(measure(repeats, Path(folder))))


if __name__ == "__main__":
    main()
