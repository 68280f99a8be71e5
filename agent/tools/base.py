"""How a tool is declared: a typed async function, its effects, and a JSON schema built from its signature."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agent.errors import ToolError
from agent.events import ToolEvent
from agent.tools.deps import Deps

if TYPE_CHECKING:
    from agent.sandbox import Sandbox


class Effect(StrEnum):
    """What a call can do to the world; the approval policy decides per effect."""

    READ = "read"
    WRITE = "write"
    """Writes inside the workspace."""
    EXECUTE = "execute"
    NETWORK = "network"
    SPEND = "spend"
    PUBLISH = "publish"
    """Makes something visible outside the repo: a Hub push, a PR, a comment."""
    DESTRUCTIVE = "destructive"
    PROTECTED = "protected"
    """Writes a path that makes code run later: .git internals, a virtual environment, ML Intern's own code or
    config (added per call, from the arguments)."""


Emit = Callable[[ToolEvent], None]
"""Emits an event from inside a tool: `ctx.emit(ToolLog(ctx.call_id, line))`; only tool events type-check."""


def _ignore(_event: ToolEvent) -> None:
    return None


CallEffects = Callable[["ToolContext", dict[str, Any]], dict[Effect, str]]
"""Effects a call adds from its arguments, each with why, in words for the person approving."""


@dataclass
class ToolContext:
    """What a running tool may use. Built by the session; secrets stay inside the clients of `deps`."""

    workdir: Path
    session_dir: Path
    env: dict[str, str]
    """Environment for subprocesses, already scrubbed of secrets."""
    emit: Emit = _ignore
    state: dict[str, Any] = field(default_factory=dict)
    """Per-session tool state that survives between calls (e.g. the plan)."""
    call_id: str = ""
    deps: Deps = field(default_factory=Deps)
    """Clients and credentials: `ctx.deps.get(HubClients)`; built by the session from its environment snapshot."""
    sandbox: Sandbox = field(default_factory=lambda: _local_sandbox())  # looked up late: the class comes first
    """Where commands run (`bash`): local, or bubblewrap; chosen by the session from `sandbox.mode`."""


def _local_sandbox() -> Sandbox:
    from agent.sandbox import LocalSandbox

    return LocalSandbox()


@dataclass
class ToolResult:
    """A tool's answer; `output` is what the model reads."""

    output: str
    is_error: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    """Structured extras for events and front ends (exit code, paths...)."""


ToolFn = Callable[..., Awaitable["str | ToolResult"]]


@dataclass
class Tool:
    """A tool the model can call."""

    name: str
    description: str
    parameters: dict[str, Any]
    effects: frozenset[Effect]
    fn: ToolFn
    args_model: type[BaseModel] | None = None
    summarize: Callable[[dict[str, Any]], str] | None = None
    """A one-line human summary of a call, for approval prompts."""
    estimate_cost: Callable[[dict[str, Any]], float | None] | None = None
    """Estimated USD cost of a call, when it spends money."""
    call_effects: CallEffects | None = None
    """Effects added by a call's arguments (e.g. `protected` for a write to `.git/config`)."""

    def effects_of(self, ctx: ToolContext, args: dict[str, Any]) -> tuple[frozenset[Effect], list[str]]:
        """The effects of one call (the tool's own and those its arguments add), and why the added ones apply."""
        added = self.call_effects(ctx, args) if self.call_effects is not None else {}
        return self.effects | added.keys(), list(added.values())

    @property
    def read_only(self) -> bool:
        return self.effects <= {Effect.READ}

    def spec(self) -> dict[str, Any]:
        """The OpenAI function-tool spec sent to the model."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def validate(self, args: dict[str, Any]) -> dict[str, Any]:
        """Check arguments against the schema; raises ToolError with a readable list of problems."""
        if self.args_model is None:
            missing = [k for k in self.parameters.get("required", []) if k not in args]
            if missing:
                raise ToolError(f"missing required argument(s): {', '.join(missing)}")
            return args
        try:
            model = self.args_model.model_validate(args)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in e.errors()
            )
            raise ToolError(f"invalid arguments for {self.name}: {problems}") from None
        return {k: getattr(model, k) for k in type(model).model_fields}

    def describe_call(self, args: dict[str, Any]) -> str:
        if self.summarize is not None:
            return self.summarize(args)
        shown = json.dumps(args, ensure_ascii=False)
        return f"{self.name}({shown[:200]}{'…' if len(shown) > 200 else ''})"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        """Validate and call; a ToolError becomes an error result, anything else propagates."""
        try:
            out = await self.fn(ctx, **self.validate(args))
        except ToolError as e:
            return ToolResult(str(e), is_error=True)
        return out if isinstance(out, ToolResult) else ToolResult(str(out))


_ARG_LINE = re.compile(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (description, {arg: description})."""
    desc: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    arg_indent: int | None = None
    current: str | None = None
    for line in inspect.cleandoc(doc).splitlines():
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if indent == 0 and stripped.endswith(":") and " " not in stripped:
            section, arg_indent, current = stripped[:-1], None, None
            continue
        if section is None:
            desc.append(line)
        elif section in ("Args", "Arguments", "Parameters") and stripped:
            arg_indent = indent if arg_indent is None else arg_indent
            m = _ARG_LINE.match(stripped)
            if indent == arg_indent and m:
                current = m.group(1)
                args[current] = m.group(2).strip()
            elif current is not None:
                args[current] = f"{args[current]} {stripped}".strip()
    return "\n".join(desc).strip(), args


def lean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline `$ref`s and drop titles: a flat, short schema every provider accepts (it is sent every step)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            merged = {**defs[ref.rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}}
            return walk(merged)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title" and isinstance(value, str):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: walk(sub) for name, sub in value.items()}
            else:
                out[key] = walk(value)
        return out

    return walk(schema)  # type: ignore[no-any-return]


def tool(
    *,
    effects: Iterable[Effect | str],
    name: str | None = None,
    summarize: Callable[[dict[str, Any]], str] | None = None,
    estimate_cost: Callable[[dict[str, Any]], float | None] | None = None,
    call_effects: CallEffects | None = None,
) -> Callable[[ToolFn], Tool]:
    """Declare a tool from an async function whose first parameter is the ToolContext.

    The function's docstring summary becomes the description and its `Args:` block the
    parameter descriptions; type hints and defaults become the JSON schema.
    """

    def wrap(fn: ToolFn) -> Tool:
        description, arg_docs = _parse_docstring(fn.__doc__ or "")
        hints = get_type_hints(fn, include_extras=True)
        params = list(inspect.signature(fn).parameters.values())[1:]  # drop ctx
        fields: dict[str, Any] = {}
        for p in params:
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (hints.get(p.name, Any), Field(default, description=arg_docs.get(p.name)))
        model = create_model(f"{fn.__name__}_args", __config__=ConfigDict(extra="forbid"), **fields)
        return Tool(
            name=name or fn.__name__,
            description=description,
            parameters=lean_schema(model.model_json_schema()),
            effects=frozenset(Effect(e) for e in effects),
            fn=fn,
            args_model=model,
            summarize=summarize,
            estimate_cost=estimate_cost,
            call_effects=call_effects,
        )

    return wrap


class Toolbox:
    """The tools of one session, by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool) -> None:
        if t.name in self._tools:
            raise ValueError(f"two tools are named {t.name!r}")
        self._tools[t.name] = t

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        return [t.spec() for t in self._tools.values()]

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._tools.values())
