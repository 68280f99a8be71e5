"""Research tools: clients with run-time tokens and no backoff, a tool context holding them, respx routes."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import respx

from agent.tools.base import Tool, ToolContext, ToolResult
from agent.tools.deps import Deps
from agent.tools.github import GitHubHTTP
from agent.tools.remote import HubHTTP


@pytest.fixture
def hf_token() -> str:
    return "hf_" + secrets.token_hex(17)


@pytest.fixture
def gh_token() -> str:
    return "ghp_" + secrets.token_hex(18)


@pytest.fixture
async def hub(hf_token: str) -> AsyncIterator[HubHTTP]:
    client = HubHTTP.create(token=hf_token, backoff=0)
    yield client
    await client.aclose()


@pytest.fixture
async def gh(gh_token: str) -> AsyncIterator[GitHubHTTP]:
    client = GitHubHTTP.create(token=gh_token, backoff=0)
    yield client
    await client.aclose()


@pytest.fixture
def ctx(tmp_path: Path, hub: HubHTTP, gh: GitHubHTTP) -> ToolContext:
    return ToolContext(tmp_path, tmp_path, {}, deps=Deps(given=[hub, gh]))


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """Every request must match a route; nothing reaches the network."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


async def call(tool: Tool, ctx: ToolContext, **args: Any) -> ToolResult:
    return await tool.run(ctx, args)
