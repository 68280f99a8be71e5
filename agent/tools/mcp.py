"""MCP servers as tool providers: every tool of every configured server becomes an agent tool."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from agent.config import MCPServerConfig
from agent.errors import ToolError
from agent.tools.base import Effect, Tool, ToolContext, ToolResult

if TYPE_CHECKING:
    import httpx
    from mcp import ClientSession
    from mcp import types as mcp_types

logger = logging.getLogger(__name__)

MAX_NAME = 64
MAX_DESCRIPTION = 1_000
MAX_PAGES = 100
CLOSE_TIMEOUT = 10.0
"""Seconds one server may take to shut down before its task is cancelled."""
CONNECTION_CLOSED = -32000
"""The JSON-RPC code the SDK uses when the transport closes under a pending request."""


class _Unavailable(Exception):
    """A server cannot be used; the message says why, for a human."""


@dataclass
class _Request:
    tool: str
    arguments: dict[str, Any]
    future: asyncio.Future[ToolResult]


class _Connection:
    """One server, driven by a task that owns the SDK's context managers and answers calls from any task."""

    def __init__(self, name: str, config: MCPServerConfig, log_dir: Path | None, start_timeout: float) -> None:
        self.name = name
        self.config = config
        self.start_timeout = start_timeout
        self.log_path = log_dir / f"mcp-{_sanitise(name)}.log" if log_dir and config.command else None
        self.failure: str | None = None
        self._requests: asyncio.Queue[_Request | None] = asyncio.Queue()
        self._pending: set[asyncio.Future[ToolResult]] = set()
        self._task: asyncio.Task[None] | None = None
        self._serving = False

    async def open(self) -> list[mcp_types.Tool]:
        """Start the server's task and wait until its tools are listed; raises _Unavailable."""
        ready: asyncio.Future[list[mcp_types.Tool]] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(ready), name=f"mcp-server-{self.name}")
        return await ready

    async def call(self, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """Ask the server's task to call `tool`; safe from any task of the loop."""
        if self.failure is not None or self._task is None or self._task.done():
            raise ToolError(f"MCP server {self.name!r} is unavailable: {self.failure or 'it is not running'}")
        future: asyncio.Future[ToolResult] = asyncio.get_running_loop().create_future()
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        self._requests.put_nowait(_Request(tool, arguments, future))
        return await future

    async def close(self) -> None:
        """Stop serving, close the session and end the server process."""
        task = self._task
        if task is None or task.done():
            return
        if self._serving:
            self._requests.put_nowait(None)
        else:  # still starting: nothing reads the queue yet
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=CLOSE_TIMEOUT)
        if not done:
            logger.warning("MCP server %r did not shut down within %gs; cancelling it", self.name, CLOSE_TIMEOUT)
            task.cancel()
            await asyncio.wait({task}, timeout=CLOSE_TIMEOUT)

    async def _run(self, ready: asyncio.Future[list[mcp_types.Tool]]) -> None:
        import anyio

        try:
            async with AsyncExitStack() as stack:
                session = await self._connect(stack)
                with anyio.fail_after(self.start_timeout):
                    await session.initialize()
                    tools = await _list_tools(session)
                if ready.done():  # the opener gave up waiting
                    return
                ready.set_result(tools)
                self._serving = True
                await self._serve(session)
        except Exception as e:  # the boundary: a broken server must not take the agent down
            self.failure = self.failure or self._explain(e, started=ready.done())
            if ready.done():
                logger.warning("MCP server %r stopped: %s", self.name, self.failure)
            logger.debug("MCP server %r error", self.name, exc_info=e)
        finally:
            self.failure = self.failure or "the connection is closed"
            for future in list(self._pending):
                if not future.done():
                    future.set_exception(ToolError(f"MCP server {self.name!r} is unavailable: {self.failure}"))
            if not ready.done():
                ready.set_exception(_Unavailable(self.failure))

    async def _connect(self, stack: AsyncExitStack) -> ClientSession:
        from mcp import ClientSession

        cfg = self.config
        if cfg.command and not cfg.url:
            transport = _stdio(cfg, self._errlog(stack))
        elif cfg.url and not cfg.command:
            transport = _http(cfg, await stack.enter_async_context(_http_client(cfg)))
        else:
            raise _Unavailable("set exactly one of `command` (a stdio server) or `url` (an HTTP server)")
        streams = await stack.enter_async_context(transport)  # stdio yields 2 streams, HTTP 3
        return await stack.enter_async_context(ClientSession(streams[0], streams[1]))

    def _errlog(self, stack: AsyncExitStack) -> TextIO:
        """Where the server's stderr goes: its log file, or nowhere; never our terminal."""
        if self.log_path is None:
            return stack.enter_context(open(os.devnull, "w"))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return stack.enter_context(self.log_path.open("a", encoding="utf-8"))

    async def _serve(self, session: ClientSession) -> None:
        import anyio

        async with anyio.create_task_group() as tg:
            while (request := await self._requests.get()) is not None:
                tg.start_soon(self._answer, session, request)
            tg.cancel_scope.cancel()

    async def _answer(self, session: ClientSession, request: _Request) -> None:
        import anyio
        from mcp import McpError

        future = request.future
        outcome: ToolResult | ToolError | None = None
        with anyio.CancelScope() as scope:

            def on_done(f: asyncio.Future[ToolResult]) -> None:
                if f.cancelled():  # the caller was interrupted: stop waiting for the server
                    scope.cancel()

            future.add_done_callback(on_done)
            try:
                with anyio.fail_after(self.config.timeout):
                    outcome = _flatten(await session.call_tool(request.tool, request.arguments))
            except TimeoutError:
                outcome = ToolError(
                    f"{request.tool} (MCP server {self.name!r}) did not answer within {self.config.timeout:g}s"
                )
            except Exception as e:  # a misbehaving server becomes an observation, not a crash
                reason = self._explain(e, started=True)
                if _disconnected(e):
                    self._mark_dead(reason)
                elif not isinstance(e, McpError):
                    logger.warning("MCP call %s/%s failed", self.name, request.tool, exc_info=e)
                outcome = ToolError(f"{request.tool} (MCP server {self.name!r}) failed: {reason}")
            finally:
                future.remove_done_callback(on_done)
        if future.done() or outcome is None:
            return
        if isinstance(outcome, ToolError):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    def _mark_dead(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            logger.warning("MCP server %r stopped: %s", self.name, reason)
            self._requests.put_nowait(None)

    def _explain(self, e: BaseException, started: bool) -> str:
        """A readable reason for a failure, naming what to fix."""
        import httpx
        from mcp import McpError

        while isinstance(e, BaseExceptionGroup) and e.exceptions:
            e = e.exceptions[0]
        cfg, key = self.config, f"mcpServers.{self.name}"
        log = f" (see its log: {self.log_path})" if self.log_path else ""
        if isinstance(e, _Unavailable):
            return str(e)
        if isinstance(e, TimeoutError):  # before OSError, its base class
            return f"it did not answer within {self.start_timeout:g}s of starting{log}"
        if isinstance(e, FileNotFoundError) and not started:
            if cfg.cwd and not Path(cfg.cwd).expanduser().is_dir():
                return f"working directory {cfg.cwd!r} does not exist; fix {key}.cwd"
            return f"command {cfg.command!r} was not found; install it or fix {key}.command"
        if isinstance(e, OSError) and not started and not isinstance(e, BrokenPipeError):
            return f"cannot start {cfg.command!r}: {e.strerror or e}; check {key}.command"
        if _disconnected(e):
            when = "" if started else " during start-up"
            return f"the server closed the connection{when} (it exited or crashed){log}"
        if isinstance(e, McpError):
            hint = f"; check {key}.url" if cfg.url and not started else ""
            return f"the server answered with an error: {e.error.message}{hint}"
        if isinstance(e, httpx.HTTPStatusError):
            return f"{_display_url(cfg.url)} answered HTTP {e.response.status_code}; check {key}.url and headers"
        if isinstance(e, httpx.TransportError):
            return f"cannot reach {_display_url(cfg.url)} ({type(e).__name__}); is the server running?"
        return f"{type(e).__name__}: {e}{log}"


def _disconnected(e: BaseException) -> bool:
    """Whether an error means the server is gone (exited, crashed, or closed the transport)."""
    import anyio
    from mcp import McpError

    if isinstance(e, McpError):
        return e.error.code == CONNECTION_CLOSED
    return isinstance(e, anyio.BrokenResourceError | anyio.ClosedResourceError | anyio.EndOfStream | BrokenPipeError)


def _stdio(cfg: MCPServerConfig, errlog: TextIO) -> AbstractAsyncContextManager[Any]:
    from mcp import StdioServerParameters
    from mcp.client.stdio import get_default_environment, stdio_client

    assert cfg.command is not None
    params = StdioServerParameters(
        command=cfg.command,
        args=cfg.args,
        env={**get_default_environment(), **cfg.env},  # only safe defaults plus what the user configured
        cwd=Path(cfg.cwd).expanduser() if cfg.cwd else None,
    )
    return stdio_client(params, errlog=errlog)


def _http_client(cfg: MCPServerConfig) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(headers=cfg.headers, timeout=httpx.Timeout(30.0, read=300.0))


def _http(cfg: MCPServerConfig, client: httpx.AsyncClient) -> AbstractAsyncContextManager[Any]:
    from mcp.client.streamable_http import streamable_http_client

    assert cfg.url is not None
    return streamable_http_client(cfg.url, http_client=client)


async def _list_tools(session: ClientSession) -> list[mcp_types.Tool]:
    from mcp import types

    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools.extend(page.tools)
        cursor = page.nextCursor
        if not cursor:
            break
    return tools


def _flatten(result: mcp_types.CallToolResult) -> ToolResult:
    """The text the model reads: text as is, binary content described, structured content as compact JSON."""
    from mcp import types

    parts = [_block_text(block) for block in result.content]
    has_text = any(isinstance(b, types.TextContent) for b in result.content)
    if not has_text and result.structuredContent is not None:
        parts.append(json.dumps(result.structuredContent, ensure_ascii=False, separators=(",", ":")))
    output = "\n".join(p for p in parts if p)
    if not output:
        output = "(the tool reported an error without a message)" if result.isError else "(no output)"
    return ToolResult(output, is_error=result.isError)


def _block_text(block: mcp_types.ContentBlock) -> str:
    from mcp import types

    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent | types.AudioContent):
        return f"[{block.type}: {block.mimeType}, {_decoded_size(block.data)} bytes]"
    if isinstance(block, types.EmbeddedResource):
        resource = block.resource
        return resource.text if isinstance(resource, types.TextResourceContents) else f"[resource: {resource.uri}]"
    if isinstance(block, types.ResourceLink):
        return f"[resource link: {block.uri}]"
    return f"[{getattr(block, 'type', 'unknown')} content]"


def _decoded_size(b64: str) -> int:
    return len(b64.rstrip("=")) * 3 // 4


def _effects(config: MCPServerConfig, spec: mcp_types.Tool) -> frozenset[Effect]:
    """From the config when set; else from the tool's annotations (an unannotated tool may do anything)."""
    if config.effects is not None:
        return frozenset(config.effects)
    hints = spec.annotations
    if hints is not None and hints.readOnlyHint:
        return frozenset({Effect.READ, Effect.NETWORK} if config.url else {Effect.READ})
    if hints is not None and hints.destructiveHint:
        return frozenset({Effect.DESTRUCTIVE, Effect.NETWORK})
    return frozenset({Effect.EXECUTE, Effect.NETWORK})


def _sanitise(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _unique_name(server: str, tool: str, taken: set[str]) -> str:
    base = _sanitise(f"{server}__{tool}")[:MAX_NAME]
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base[: MAX_NAME - len(str(n)) - 1]}_{n}"
    taken.add(name)
    return name


def _description(server: str, spec: mcp_types.Tool) -> str:
    text = (spec.description or spec.title or f"{spec.name} from the MCP server {server}").strip()
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1].rstrip() + "…"


def _display_url(url: str | None) -> str:
    """Scheme, host and path only: a query string or user info may carry a token."""
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _make_tool(conn: _Connection, spec: mcp_types.Tool, taken: set[str]) -> Tool:
    async def call(_ctx: ToolContext, /, **arguments: Any) -> ToolResult:
        return await conn.call(spec.name, arguments)

    return Tool(
        name=_unique_name(conn.name, spec.name, taken),
        description=_description(conn.name, spec),
        parameters=spec.inputSchema or {"type": "object", "properties": {}},
        effects=_effects(conn.config, spec),
        fn=call,
    )


class MCPTools:
    """The tools of the configured MCP servers, usable for the lifetime of an `async with` block.

    `tools` are ordinary agent tools named `<server>__<tool>`; `failures` maps each server that
    could not be used (or whose `tools` filter names unknown tools) to a readable reason.
    """

    def __init__(
        self, servers: dict[str, MCPServerConfig], *, log_dir: Path | None = None, start_timeout: float = 60.0
    ) -> None:
        self.servers = servers
        self.log_dir = log_dir
        self.start_timeout = start_timeout
        """Seconds a server may take to start and list its tools (a first `npx` run downloads)."""
        self.tools: list[Tool] = []
        self.failures: dict[str, str] = {}
        self._connections: list[_Connection] = []

    async def __aenter__(self) -> MCPTools:
        self._connections = [
            _Connection(name, cfg, self.log_dir, self.start_timeout) for name, cfg in self.servers.items()
        ]
        try:
            listed = await asyncio.gather(*(c.open() for c in self._connections), return_exceptions=True)
        except BaseException:
            await self.aclose()
            raise
        taken: set[str] = set()
        for conn, result in zip(self._connections, listed, strict=True):
            if isinstance(result, BaseException):
                self._fail(conn.name, str(result) or type(result).__name__)
                continue
            self.tools.extend(_make_tool(conn, spec, taken) for spec in self._select(conn, result))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every session and end every server process."""
        await asyncio.gather(*(c.close() for c in self._connections))

    def _select(self, conn: _Connection, specs: list[mcp_types.Tool]) -> list[mcp_types.Tool]:
        wanted = conn.config.tools
        if wanted is None:
            return specs
        offered = {spec.name for spec in specs}
        unknown = [name for name in wanted if name not in offered]
        if unknown:
            self._fail(
                conn.name,
                f"mcpServers.{conn.name}.tools names {', '.join(unknown)}, which the server does not offer "
                f"(it offers: {', '.join(sorted(offered)) or 'nothing'})",
            )
        return [spec for spec in specs if spec.name in wanted]

    def _fail(self, server: str, reason: str) -> None:
        self.failures[server] = reason  # front ends show these (the `ready` event); the log is for -v
        logger.info("MCP server %r: %s", server, reason)


__all__ = ["MCPTools"]
