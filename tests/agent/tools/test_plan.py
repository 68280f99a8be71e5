import os
from pathlib import Path
from typing import Any

import pytest

from agent.events import tool_event_data
from agent.redact import scrub_env
from agent.tools.base import Effect, ToolContext
from agent.tools.plan import plan

Events = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def events() -> Events:
    return []


@pytest.fixture
def ctx(tmp_path: Path, events: Events) -> ToolContext:
    (tmp_path / "ws").mkdir()
    (tmp_path / "session").mkdir()
    return ToolContext(
        workdir=tmp_path / "ws",
        session_dir=tmp_path / "session",
        env=scrub_env(os.environ),
        emit=lambda ev: events.append((str(ev.type), tool_event_data(ev))),
    )


TODOS = [
    {"content": "load imdb", "status": "completed"},
    {"content": "fine-tune distilbert", "status": "in_progress"},
    {"content": "push to the Hub", "status": "pending"},
]


async def test_plan_renders_stores_and_emits(ctx: ToolContext, events: Events) -> None:
    result = await plan.run(ctx, {"todos": TODOS})

    assert not result.is_error
    assert result.output == "[x] load imdb\n[~] fine-tune distilbert\n[ ] push to the Hub"
    assert ctx.state["plan"] == TODOS
    assert events == [("plan_updated", {"plan": TODOS})]


async def test_plan_replaces_the_whole_list(ctx: ToolContext, events: Events) -> None:
    await plan.run(ctx, {"todos": TODOS})

    result = await plan.run(ctx, {"todos": [{"content": "  write report ", "status": "pending"}]})

    assert result.output == "[ ] write report"
    assert ctx.state["plan"] == [{"content": "write report", "status": "pending"}]
    assert events[-1] == ("plan_updated", {"plan": ctx.state["plan"]})


async def test_empty_plan_clears_it(ctx: ToolContext, events: Events) -> None:
    await plan.run(ctx, {"todos": TODOS})

    result = await plan.run(ctx, {"todos": []})

    assert result.output == "Plan cleared."
    assert ctx.state["plan"] == []
    assert events[-1] == ("plan_updated", {"plan": []})


async def test_more_than_one_in_progress_is_refused(ctx: ToolContext, events: Events) -> None:
    todos = [{"content": "a", "status": "in_progress"}, {"content": "b", "status": "in_progress"}]

    result = await plan.run(ctx, {"todos": todos})

    assert result.is_error
    assert "2 items are in_progress" in result.output
    assert "plan" not in ctx.state and events == []


async def test_bad_status_fails_schema_validation(ctx: ToolContext, events: Events) -> None:
    result = await plan.run(ctx, {"todos": [{"content": "a", "status": "done"}]})

    assert result.is_error
    assert result.output == (
        "invalid arguments for plan: todos.0.status: Input should be 'pending', 'in_progress' or 'completed'"
    )
    assert events == []


@pytest.mark.parametrize(
    ("todos", "problem"),
    [
        ([{"content": "a"}], "todos.0.status: Field required"),
        ([{"content": "a", "status": "pending", "owner": "me"}], "todos.0.owner: Extra inputs are not permitted"),
        ("not a list", "todos: Input should be a valid list"),
    ],
)
async def test_malformed_items_fail_validation(ctx: ToolContext, todos: Any, problem: str) -> None:
    result = await plan.run(ctx, {"todos": todos})

    assert result.is_error and problem in result.output


async def test_blank_content_is_refused(ctx: ToolContext) -> None:
    result = await plan.run(ctx, {"todos": [{"content": "  ", "status": "pending"}]})

    assert result.is_error and "non-empty content" in result.output


def test_plan_is_read_only_and_its_schema_lists_the_statuses() -> None:
    assert plan.effects == {Effect.READ}
    item = plan.parameters["properties"]["todos"]["items"]
    assert item["properties"]["status"]["enum"] == ["pending", "in_progress", "completed"]
    assert item["required"] == ["content", "status"]
