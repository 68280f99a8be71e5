"""The `plan` tool: the model's task checklist, kept in session state and shown to the user."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from agent.errors import ToolError
from agent.events import PlanUpdated
from agent.tools.base import Effect, ToolContext, tool

logger = logging.getLogger(__name__)

Status = Literal["pending", "in_progress", "completed"]
_MARKS: dict[str, str] = {"completed": "[x]", "in_progress": "[~]", "pending": "[ ]"}


class PlanItem(BaseModel):
    """One step of the plan."""

    model_config = ConfigDict(extra="forbid")

    content: str
    status: Status


def render_plan(items: list[dict[str, str]]) -> str:
    """The plan as a text checklist: `[x]` done, `[~]` in progress, `[ ]` pending."""
    return "\n".join(f"{_MARKS[i['status']]} {i['content']}" for i in items)


def _summary(args: dict[str, Any]) -> str:
    todos = args.get("todos") or []
    done = sum(1 for t in todos if isinstance(t, dict) and t.get("status") == "completed")
    return f"plan: {len(todos)} items, {done} done"


@tool(effects=[Effect.READ], summarize=_summary)
async def plan(ctx: ToolContext, todos: list[PlanItem]) -> str:
    """Replace the task checklist (for multi-step work); keep the current item in_progress.

    Args:
        todos: The whole list, in order.
    """
    items = [{"content": t.content.strip(), "status": t.status} for t in todos]
    if any(not i["content"] for i in items):
        raise ToolError("every plan item needs a non-empty content")
    doing = sum(i["status"] == "in_progress" for i in items)
    if doing > 1:
        raise ToolError(f"{doing} items are in_progress; only the item you are working on may be in_progress")
    ctx.state["plan"] = items
    ctx.emit(PlanUpdated(items))
    return render_plan(items) if items else "Plan cleared."


__all__ = ["PlanItem", "plan", "render_plan"]
