"""The default executor: the agent answers in text with only the plan tool, and failures say why."""

from __future__ import annotations

from pathlib import Path

from agent.config import load_config
from agent.errors import LLMError
from agent.llm.scripted import ScriptedModel, call, say
from bot.executor import AgentExecutor
from bot.github import Target
from bot.models import Run


def run() -> Run:
    return Run(7, 1, "o/r", 3, True, "alice", Target("issue_comment", 9), "what does `train.py` do?", "running")


async def test_the_agent_answers_with_only_the_plan_tool(tmp_path: Path) -> None:
    model = ScriptedModel([call("plan", todos=[{"content": "read", "status": "completed"}]), say("It trains BERT.")])
    config = load_config(overrides={"tools": ["bash", "read", "plan"]}, use_user_file=False)
    outcome = await AgentExecutor(config, tmp_path, model_factory=lambda: model).execute(run())
    assert outcome.ok and outcome.text == "It trains BERT." and outcome.session_id
    assert [t["function"]["name"] for t in model.tool_specs[0]] == ["plan"]
    prompt = model.requests[0][-1].content or ""
    assert "pull request #3 of o/r" in prompt and "<request>\nwhat does `train.py` do?\n</request>" in prompt
    assert not (tmp_path / "runs" / "7").exists()
    assert (tmp_path / "sessions" / outcome.session_id / "trace.jsonl").is_file()


async def test_a_model_failure_is_an_outcome_not_a_crash(tmp_path: Path) -> None:
    model = ScriptedModel([LLMError("rate limited for too long", kind="bad_request")])
    config = load_config(use_user_file=False)
    outcome = await AgentExecutor(config, tmp_path, model_factory=lambda: model).execute(run())
    assert not outcome.ok and "rate limited for too long" in outcome.text
