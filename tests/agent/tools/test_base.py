"""Declaring tools: schemas from signatures and docstrings, validation, the toolbox."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from agent.errors import ToolError
from agent.tools.base import Effect, Tool, Toolbox, ToolContext, ToolResult, lean_schema, tool


class Step(BaseModel):
    title: str
    kind: Literal["a", "b"] = "a"


@tool(effects=[Effect.EXECUTE, "network"], summarize=lambda a: f"run {a['command']}")
async def run(
    ctx: ToolContext,
    command: str,
    steps: list[Step],
    retries: Annotated[int, Field(ge=0, le=5)] = 1,
    cwd: str | None = None,
) -> str:
    """Run a command.

    More detail that stays in the description.

    Args:
        command: The command line,
            continued on a second line.
        steps: What to do.
        retries: How often to retry.
        cwd (str): Folder.

    Returns:
        Not part of any description.
    """
    return f"{command} {len(steps)} {retries}"


def test_schema_comes_from_signature_and_docstring():
    spec = run.spec()["function"]
    assert spec["name"] == "run"
    assert spec["description"] == "Run a command.\n\nMore detail that stays in the description."
    props = spec["parameters"]["properties"]
    assert props["command"] == {"description": "The command line, continued on a second line.", "type": "string"}
    assert props["retries"]["maximum"] == 5 and props["retries"]["default"] == 1
    assert props["cwd"]["description"] == "Folder."
    assert spec["parameters"]["required"] == ["command", "steps"]
    assert spec["parameters"]["additionalProperties"] is False
    assert run.effects == {Effect.EXECUTE, Effect.NETWORK} and not run.read_only


def test_nested_models_are_inlined_without_titles():
    params = run.parameters
    assert "$defs" not in params and "$ref" not in str(params)
    item = params["properties"]["steps"]["items"]
    assert item["properties"]["title"] == {"type": "string"}  # a field named "title" survives
    assert item["properties"]["kind"]["enum"] == ["a", "b"]
    assert "title" not in item


def test_lean_schema_keeps_sibling_keys_of_a_ref():
    schema = {
        "$defs": {"X": {"type": "object", "title": "X"}},
        "properties": {"x": {"$ref": "#/$defs/X", "description": "an x"}},
    }
    assert lean_schema(schema) == {"properties": {"x": {"type": "object", "description": "an x"}}}


async def test_validation_errors_name_every_problem():
    with pytest.raises(ToolError) as err:
        run.validate({"command": 3, "steps": [{"title": "t", "kind": "c"}], "retries": 9, "extra": 1})
    text = str(err.value)
    for needle in (
        "command: Input should be a valid string",
        "steps.0.kind",
        "retries: Input should be less",
        "extra: Extra inputs are not permitted",
    ):
        assert needle in text
    result = await run.run(ToolContext(workdir=None, session_dir=None, env={}), {"command": "x"})  # type: ignore[arg-type]
    assert result.is_error and "steps: Field required" in result.output


async def test_run_returns_a_tool_result_and_describe_uses_the_summary():
    ctx = ToolContext(workdir=None, session_dir=None, env={})  # type: ignore[arg-type]
    assert await run.run(ctx, {"command": "ls", "steps": [{"title": "t"}]}) == ToolResult("ls 1 1")
    assert run.describe_call({"command": "ls"}) == "run ls"


def test_tools_without_a_model_check_required_keys():
    async def fn(ctx: ToolContext, **kw: object) -> str:
        return "ok"

    t = Tool("ext", "external", {"type": "object", "required": ["a"]}, frozenset({Effect.READ}), fn)
    with pytest.raises(ToolError, match="missing required argument"):
        t.validate({})
    assert t.validate({"a": 1}) == {"a": 1}
    assert t.describe_call({"a": "x" * 300}).endswith("…)")


def test_toolbox_refuses_duplicate_names():
    box = Toolbox([run])
    with pytest.raises(ValueError, match="two tools are named 'run'"):
        box.add(run)
    assert box.names() == ["run"] and box.get("nope") is None and len(box.specs()) == 1
