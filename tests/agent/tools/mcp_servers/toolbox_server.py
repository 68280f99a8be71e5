"""A small FastMCP server for the MCP client tests: `python toolbox_server.py [stdio | http PORT]`."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from mcp.server.fastmcp import Context, FastMCP, Image
from mcp.types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    TextResourceContents,
    ToolAnnotations,
)
from pydantic import AnyUrl

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

server = FastMCP("toolbox")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


@server.tool()
def fail(message: str) -> str:
    """Always raise."""
    raise ValueError(message)


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "woke up"


@server.tool(annotations=ToolAnnotations(destructiveHint=True, readOnlyHint=False))
def delete_all() -> str:
    """Pretend to delete everything."""
    return "deleted"


@server.tool()
def pixel() -> Image:
    """Return a 1x1 PNG."""
    return Image(data=PNG, format="png")


@server.tool()
def stats(values: list[float]) -> CallToolResult:
    """Summary statistics, as structured content only."""
    return CallToolResult(content=[], structuredContent={"min": min(values), "max": max(values)})


@server.tool()
def documents() -> CallToolResult:
    """Embedded resources (text and binary) and an audio clip."""
    text = TextResourceContents(uri=AnyUrl("file:///notes.txt"), text="remember the milk")
    blob = BlobResourceContents(uri=AnyUrl("file:///weights.bin"), blob="AAAA")
    return CallToolResult(
        content=[
            EmbeddedResource(type="resource", resource=text),
            EmbeddedResource(type="resource", resource=blob),
            AudioContent(type="audio", data="AAAAAAAA", mimeType="audio/wav"),
        ]
    )


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def env(name: str) -> str:
    """Read one environment variable of the server process."""
    return os.environ.get(name, "<unset>")


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def pid() -> str:
    """The server's process id."""
    return str(os.getpid())


@server.tool(annotations=ToolAnnotations(readOnlyHint=True))
def request_headers(ctx: Context) -> str:  # type: ignore[type-arg]
    """The HTTP headers of this request (an empty object over stdio)."""
    request = ctx.request_context.request
    return json.dumps(dict(request.headers) if request is not None else {})


@server.tool()
def crash() -> str:
    """Exit the server process without answering."""
    print("crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


if __name__ == "__main__":
    print("toolbox server starting", file=sys.stderr, flush=True)
    if sys.argv[1:2] == ["http"]:
        server.settings.port = int(sys.argv[2])
        server.settings.log_level = "WARNING"
        server.run(transport="streamable-http")
    else:
        server.run(transport="stdio")
