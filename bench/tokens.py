"""Prompt tokens sent over a trajectory with large tool outputs, with and without output bounding and compaction."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agent.llm.scripted import ScriptedModel, Turn, call, say
from agent.messages import Message
from agent.session import system_prompt
from bench.common import Result
from bench.trajectory import bench_config, run_agent, selected_tools

STEPS = 50
OUTPUT_BYTES = 100_000
UPSTREAM_PREAMBLE_CHARS = 55_000
"""System prompt and tool schemas the upstream ML Intern sends before any work (reference figure from the brief)."""
UNBOUNDED: dict[str, Any] = {"context": {"tool_output_chars": 10**9, "compact_at": 1.0, "context_window": 10**9}}


def big_output_script(steps: int) -> Callable[[list[Message]], Turn]:
    """Each step runs bash printing ~100 KB (a different command each time, so no loop guard fires).

    A function of the history, so the summary request a compaction makes gets a summary, not the next step.
    """
    served = 0

    def reply(messages: list[Message]) -> Turn:
        nonlocal served
        if len(messages) == 1 and messages[0].role == "user":  # compaction's summary request
            return say(f"Summary: ran {served} bash commands; each printed ~100 KB of repeated log lines.")
        if served >= steps:
            return say("All steps are done.")
        served += 1
        line = f"step {served}: epoch=3 loss=0.4213 lr=3e-5 grad_norm=1.02 tokens/s=5123"
        return call("bash", command=f"yes '{line}' | head -c {OUTPUT_BYTES}")

    return reply


def prompt_tokens(model: ScriptedModel) -> int:
    """Sum of the prompt tokens of every request the model received (summary requests included)."""
    return sum(model.count_tokens(r, t) for r, t in zip(model.requests, model.tool_specs, strict=True))


async def _trajectory(tmp: Path, name: str, overrides: Mapping[str, Any]) -> tuple[int, int]:
    config = bench_config(**overrides)
    window = config.context.context_window or 128_000
    model = ScriptedModel(big_output_script(STEPS), context_window=window)
    folder = tmp / f"tokens-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "ws").mkdir(parents=True)
    run, _ = await run_agent(model, config, folder / "ws", folder / "home")
    if run.tool_calls != STEPS:
        raise RuntimeError(f"expected {STEPS} bash calls, ran {run.tool_calls}")
    return prompt_tokens(model), len(model.requests)


def preamble_chars() -> tuple[int, int]:
    """Characters of the system prompt and of the tool schemas (JSON), both re-sent with every request."""
    config = bench_config()
    prompt = system_prompt(config, Path("/workspace"), True)
    specs = [t.spec() for t in selected_tools(config)]
    return len(prompt), len(json.dumps(specs))


def measure(tmp: Path) -> list[Result]:
    bounded, calls_b = asyncio.run(_trajectory(tmp, "bounded", {}))
    unbounded, calls_u = asyncio.run(_trajectory(tmp, "unbounded", UNBOUNDED))
    prompt, tools = preamble_chars()
    group = "3. prompt size"
    return [
        Result(
            group,
            f"prompt tokens over {STEPS} steps of ~100 KB output",
            bounded,
            "tokens",
            unbounded,
            "bounding and compaction off",
            note=f"{calls_b} vs {calls_u} model calls (summaries included); ≈4 chars/token estimate",
        ),
        Result(
            group,
            "system prompt + tool schemas",
            prompt + tools,
            "chars",
            UPSTREAM_PREAMBLE_CHARS,
            "upstream ML Intern (reference)",
            note=f"prompt {prompt:,} + schemas {tools:,} chars",
        ),
    ]
