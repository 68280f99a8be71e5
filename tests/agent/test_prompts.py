"""The system prompt: what it asks of the agent, its variables, and the size of what every request re-sends."""

from __future__ import annotations

import json
import re
from pathlib import Path

from agent.config import load_config
from agent.session import system_prompt
from agent.tools.families import select

FIXED_PROMPT_LIMIT = 12_000
"""System prompt plus every default tool's schema, in characters (upstream ML Intern sends ~55,000)."""


def fixed_prompt() -> tuple[str, str]:
    config = load_config(use_user_file=False)
    extra = {"repository": "octo/repo", "thread": "issue #12", "requester": "someone"}
    prompt = system_prompt(config, Path("/workspace"), True, extra)
    specs = json.dumps([t.spec() for family in select(config.tools) for t in family.tools])
    return prompt, specs


def test_system_prompt_and_all_tool_schemas_stay_under_the_limit() -> None:
    prompt, specs = fixed_prompt()
    assert len(prompt) + len(specs) < FIXED_PROMPT_LIMIT, (len(prompt), len(specs))


def test_every_tool_the_prompt_names_exists_by_default() -> None:
    prompt, _ = fixed_prompt()
    names = {t.name for family in select(load_config(use_user_file=False).tools) for t in family.tools}
    named = set(re.findall(r"\b[a-z]+_[a-z_]+\b", prompt)) | {"plan"}
    assert named <= names, named - names
    assert {"docs_search", "dataset_overview", "hub_search", "paper_search", "github_read"} <= named


def test_the_prompt_asks_for_research_tiny_tests_costs_scope_and_numbers() -> None:
    prompt, _ = fixed_prompt()
    for phrase in (
        "knowledge of ML libraries is stale",
        "tiny subset",
        "State the cost",
        "Never change the task's scope",
    ):
        assert phrase in prompt
    assert "results in numbers" in prompt


def test_the_thread_block_and_the_modes_render() -> None:
    config = load_config(use_user_file=False)
    prompt, _ = fixed_prompt()
    assert (
        "This checkout is the GitHub repository octo/repo; the request came from issue #12, written by @someone."
        in prompt
    )
    plain = system_prompt(config, Path("/w"), False)
    assert "GitHub repository" not in plain and "A person is at the terminal" in plain
    assert "This run is unattended" in prompt
