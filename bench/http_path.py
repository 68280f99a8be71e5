"""One trajectory over litellm's real HTTP path: the Agent with LiteLLMModel against a bare acompletion loop."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

from agent.llm.litellm_model import model_from_config
from agent.tools import workspace_tools
from agent.tools.base import ToolContext
from bench.common import Result, bench_env, median, scripted_server
from bench.overhead import note_files, read_script
from bench.trajectory import TASK, bench_config, run_agent

STEPS = 20
MODEL = "openai/scripted"


async def ours(base_url: str, workdir: Path, home: Path) -> float:
    """Wall seconds of the Agent driving LiteLLMModel (streaming, retries, usage, cost) through the server."""
    config = bench_config(model=MODEL, base_url=base_url)
    run, _ = await run_agent(model_from_config(config), config, workdir, home)
    if run.model_calls != STEPS + 1:
        raise RuntimeError(f"expected {STEPS + 1} model calls over HTTP, got {run.model_calls}")
    return run.wall


async def bare(base_url: str, workdir: Path) -> float:
    """Wall seconds of plain `litellm.acompletion` calls (streamed, as ours) and direct tool calls, dict messages.

    `_skip_mcp_handler` as in LiteLLMModel: with tools, litellm 1.106 otherwise imports its MCP gateway, which
    fails under the mcp 1.x the project pins.
    """
    import litellm

    litellm.suppress_debug_info = True
    config = bench_config()
    tools = {t.name: t for t in workspace_tools(config.tools)}
    specs = [t.spec() for t in tools.values()]
    ctx = ToolContext(workdir, workdir, {})
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a benchmark."},
        {"role": "user", "content": TASK},
    ]
    start = time.perf_counter()
    for _ in range(STEPS + 1):
        response = await litellm.acompletion(
            model=MODEL,
            api_base=base_url,
            api_key="sk-no-key",
            messages=messages,
            tools=specs,
            stream=True,
            stream_options={"include_usage": True},
            num_retries=0,
            max_retries=0,
            _skip_mcp_handler=True,
        )
        text, calls = "", dict[int, dict[str, str]]()
        async for chunk in response:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for f in choice.delta.tool_calls or []:
                    c = calls.setdefault(f.index, {"id": f.id, "name": "", "arguments": ""})
                    c["name"] += f.function.name or ""
                    c["arguments"] += f.function.arguments or ""
        if not calls:
            break
        messages.append(
            {
                "role": "assistant",
                "content": text or None,
                "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in calls.values()
                ],
            }
        )
        for c in calls.values():
            out = await tools[c["name"]].fn(ctx, **json.loads(c["arguments"]))
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": str(out)})
    else:
        raise RuntimeError(f"the bare loop did not get an answer after {STEPS + 1} calls")
    return time.perf_counter() - start


def _one(kind: str, workdir: Path, tmp: Path) -> float:
    env = bench_env(tmp)
    with scripted_server(read_script(STEPS), tmp / f"server-{kind}", env) as base_url:
        if kind == "bare":
            return asyncio.run(bare(base_url, workdir))
        home = tmp / "http-home"
        shutil.rmtree(home, ignore_errors=True)
        return asyncio.run(ours(base_url, workdir, home))


def measure(repeats: int, tmp: Path) -> list[Result]:
    workdir = tmp / "ws"
    note_files(workdir, STEPS)
    _one("ours", workdir, tmp)  # warm-up: litellm import, its lazy provider modules, the HTTP client
    _one("bare", workdir, tmp)
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    for _ in range(repeats):
        for kind in times:
            times[kind].append(_one(kind, workdir, tmp))
    ms = {k: median(v) / STEPS * 1000 for k, v in times.items()}
    return [
        Result(
            "2. loop overhead",
            f"litellm HTTP path, {STEPS} steps, wall per step",
            ms["ours"],
            "ms",
            ms["bare"],
            "bare litellm.acompletion loop",
            samples=times["ours"],
            note="streamed; includes our chunk assembly, usage, cost, events, trace",
        )
    ]
