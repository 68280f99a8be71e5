"""MCP servers as tool providers, against real FastMCP servers over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import MCPServerConfig
from agent.tools.base import Effect, Tool, ToolContext
from agent.tools.mcp import MCPTools, _description

pytestmark = pytest.mark.slow  # real processes: `pytest -m "not slow"` skips them for a quick loop

SERVER = Path(__file__).parent / "mcp_servers" / "toolbox_server.py"
PNG_BYTES = 66


def stdio(**kw: object) -> MCPServerConfig:
    return MCPServerConfig(command=sys.executable, args=[str(SERVER)], **kw)  # type: ignore[arg-type]


def by_name(mcp: MCPTools) -> dict[str, Tool]:
    return {t.name: t for t in mcp.tools}


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workdir=tmp_path, session_dir=tmp_path, env={})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("http") / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, str(SERVER), "http", str(port)], stdout=err, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the HTTP MCP server exited: {log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the HTTP MCP server did not start listening")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.kill()
        proc.wait()


async def test_stdio_tools_are_listed_prefixed_and_callable(ctx: ToolContext) -> None:
    async with MCPTools({"box": stdio()}) as mcp:
        tools = by_name(mcp)
        assert mcp.failures == {}
        assert {"box__add", "box__fail", "box__slow", "box__delete_all", "box__pixel"} <= set(tools)
        add = tools["box__add"]
        assert add.description == "Add two integers."
        assert add.parameters["required"] == ["a", "b"]
        assert add.parameters["properties"]["a"]["type"] == "integer"
        assert add.args_model is None
        assert tools["box__delete_all"].parameters["properties"] == {}

        result = await add.run(ctx, {"a": 2, "b": 40})
        assert (result.output, result.is_error) == ("42", False)
        missing = await add.run(ctx, {"a": 2})
        assert missing.is_error and "b" in missing.output


async def test_effects_come_from_annotations(ctx: ToolContext) -> None:
    async with MCPTools({"box": stdio()}) as mcp:
        tools = by_name(mcp)
        assert tools["box__add"].effects == {Effect.READ}
        assert tools["box__add"].read_only
        assert tools["box__delete_all"].effects == {Effect.DESTRUCTIVE, Effect.NETWORK}
        assert tools["box__fail"].effects == {Effect.EXECUTE, Effect.NETWORK}


async def test_config_effects_and_tools_filter(ctx: ToolContext) -> None:
    servers = {
        "box": stdio(effects=[Effect.WRITE], tools=["add", "delete_all"]),
        "other": stdio(tools=["add", "no_such_tool"]),
    }
    async with MCPTools(servers) as mcp:
        tools = by_name(mcp)
        assert set(tools) == {"box__add", "box__delete_all", "other__add"}
        assert tools["box__add"].effects == tools["box__delete_all"].effects == {Effect.WRITE}
        assert set(mcp.failures) == {"other"}
        assert "no_such_tool" in mcp.failures["other"] and "add" in mcp.failures["other"]
        assert (await tools["other__add"].run(ctx, {"a": 1, "b": 1})).output == "2"


async def test_results_are_flattened_to_text(ctx: ToolContext) -> None:
    async with MCPTools({"box": stdio()}) as mcp:
        tools = by_name(mcp)
        image = await tools["box__pixel"].run(ctx, {})
        assert image.output == f"[image: image/png, {PNG_BYTES} bytes]"
        structured = await tools["box__stats"].run(ctx, {"values": [3, 1, 2]})
        assert json.loads(structured.output) == {"min": 1.0, "max": 3.0}
        assert " " not in structured.output
        docs = await tools["box__documents"].run(ctx, {})
        assert docs.output.splitlines() == [
            "remember the milk",
            "[resource: file:///weights.bin]",
            "[audio: audio/wav, 6 bytes]",
        ]


async def test_tool_errors_and_timeouts_become_error_results(ctx: ToolContext) -> None:
    async with MCPTools({"box": stdio(timeout=1)}) as mcp:
        tools = by_name(mcp)
        failed = await tools["box__fail"].run(ctx, {"message": "boom"})
        assert failed.is_error and "boom" in failed.output

        slow = await tools["box__slow"].run(ctx, {"seconds": 30})
        assert slow.is_error and "did not answer within 1s" in slow.output

        after = await tools["box__add"].run(ctx, {"a": 1, "b": 2})
        assert (after.output, after.is_error) == ("3", False)


async def test_streamable_http_server(http_url: str, ctx: ToolContext) -> None:
    servers = {"web": MCPServerConfig(url=http_url, headers={"X-Test": "yes"})}
    async with MCPTools(servers) as mcp:
        tools = by_name(mcp)
        assert mcp.failures == {}
        assert tools["web__add"].effects == {Effect.READ, Effect.NETWORK}
        assert tools["web__delete_all"].effects == {Effect.DESTRUCTIVE, Effect.NETWORK}
        assert (await tools["web__add"].run(ctx, {"a": 20, "b": 22})).output == "42"
        headers = json.loads((await tools["web__request_headers"].run(ctx, {})).output)
        assert headers["x-test"] == "yes"
        assert "authorization" not in headers


async def test_unreachable_http_server_is_reported(ctx: ToolContext) -> None:
    servers = {"web": MCPServerConfig(url=f"http://127.0.0.1:{free_port()}/mcp?token=s3cret")}
    async with MCPTools(servers) as mcp:
        assert mcp.tools == []
        assert "cannot reach http://127.0.0.1" in mcp.failures["web"]
        assert "s3cret" not in mcp.failures["web"]


async def test_broken_servers_are_reported_and_the_others_work(tmp_path: Path, ctx: ToolContext) -> None:
    servers = {
        "ghost": MCPServerConfig(command="ml-intern-no-such-mcp-server"),
        "quitter": MCPServerConfig(command=sys.executable, args=["-c", "print('bye')"]),
        "nothing": MCPServerConfig(),
        "nowhere": stdio(cwd=str(tmp_path / "missing")),
        "box": stdio(tools=["add"]),
    }
    async with MCPTools(servers, log_dir=tmp_path / "logs") as mcp:
        assert [t.name for t in mcp.tools] == ["box__add"]
        assert "ml-intern-no-such-mcp-server" in mcp.failures["ghost"]
        assert "not found" in mcp.failures["ghost"]
        assert "closed the connection during start-up" in mcp.failures["quitter"]
        assert "exactly one of `command`" in mcp.failures["nothing"]
        assert "missing' does not exist; fix mcpServers.nowhere.cwd" in mcp.failures["nowhere"]
        assert set(mcp.failures) == {"ghost", "quitter", "nothing", "nowhere"}
        assert (await mcp.tools[0].run(ctx, {"a": 1, "b": 1})).output == "2"


async def test_server_that_never_answers_is_reported() -> None:
    mute = MCPServerConfig(command=sys.executable, args=["-c", "import sys; sys.stdin.read()"])
    async with MCPTools({"mute": mute}, start_timeout=0.5) as mcp:
        assert mcp.tools == []
        assert "did not answer within 0.5s" in mcp.failures["mute"]


async def test_server_exiting_mid_session_gives_tool_errors(tmp_path: Path, ctx: ToolContext) -> None:
    async with MCPTools({"box": stdio()}, log_dir=tmp_path) as mcp:
        tools = by_name(mcp)
        crashed = await tools["box__crash"].run(ctx, {})
        assert crashed.is_error and "closed the connection" in crashed.output
        later = await tools["box__add"].run(ctx, {"a": 1, "b": 1})
        assert later.is_error and "unavailable" in later.output
    log = (tmp_path / "mcp-box.log").read_text()
    assert "toolbox server starting" in log and "crashing on purpose" in log


async def test_server_killed_while_idle_gives_tool_errors(ctx: ToolContext) -> None:
    async with MCPTools({"box": stdio()}) as mcp:
        tools = by_name(mcp)
        os.kill(int((await tools["box__pid"].run(ctx, {})).output), signal.SIGKILL)
        first, second = [await tools["box__add"].run(ctx, {"a": 1, "b": 1}) for _ in range(2)]
        assert first.is_error and "closed the connection" in first.output
        assert second.is_error and "MCP server 'box' is unavailable" in second.output


async def test_cancelling_the_start_ends_the_server(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = "import os, sys; open(sys.argv[1], 'w').write(str(os.getpid())); sys.stdin.read()"
    mute = MCPServerConfig(command=sys.executable, args=["-c", script, str(pid_file)])

    async def start() -> None:
        async with MCPTools({"mute": mute}):
            pytest.fail("a server that never answers cannot start")

    task = asyncio.create_task(start())
    while not (pid_file.exists() and pid_file.read_text()):  # noqa: ASYNC110 - waiting on another process
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gone(int(pid_file.read_text()))


async def test_close_ends_processes_even_with_calls_in_flight(ctx: ToolContext) -> None:
    async with MCPTools({"one": stdio(), "two": stdio()}) as mcp:
        tools = by_name(mcp)
        pids = [int((await tools[f"{s}__pid"].run(ctx, {})).output) for s in ("one", "two")]
        pending = asyncio.create_task(tools["one__slow"].run(ctx, {"seconds": 60}))
        await asyncio.sleep(0.2)
    result = await pending
    assert result.is_error and "unavailable" in result.output
    assert all(gone(pid) for pid in pids)


async def test_calls_from_other_tasks_and_concurrently(ctx: ToolContext) -> None:
    mcp = MCPTools({"box": stdio()})
    await asyncio.create_task(mcp.__aenter__())
    tools = by_name(mcp)
    slow = asyncio.create_task(tools["box__slow"].run(ctx, {"seconds": 0.3}))
    adds = await asyncio.gather(*(asyncio.create_task(tools["box__add"].run(ctx, {"a": i, "b": i})) for i in range(5)))
    assert [r.output for r in adds] == ["0", "2", "4", "6", "8"]
    assert (await slow).output == "woke up"
    pid = int((await tools["box__pid"].run(ctx, {})).output)
    await asyncio.create_task(mcp.aclose())
    assert gone(pid)


async def test_cancelled_call_leaves_the_server_usable(ctx: ToolContext) -> None:
    async with MCPTools({"box": stdio()}) as mcp:
        tools = by_name(mcp)
        call = asyncio.create_task(tools["box__slow"].run(ctx, {"seconds": 60}))
        await asyncio.sleep(0.2)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert (await tools["box__add"].run(ctx, {"a": 1, "b": 2})).output == "3"


async def test_server_env_is_safe_defaults_plus_config(monkeypatch: pytest.MonkeyPatch, ctx: ToolContext) -> None:
    fake_token = "hf_" + secrets.token_hex(8)
    monkeypatch.setenv("HF_TOKEN", fake_token)
    async with MCPTools({"box": stdio(env={"GREETING": "hello"})}) as mcp:
        env = by_name(mcp)["box__env"]
        assert (await env.run(ctx, {"name": "GREETING"})).output == "hello"
        assert (await env.run(ctx, {"name": "HF_TOKEN"})).output == "<unset>"
        assert (await env.run(ctx, {"name": "PATH"})).output == os.environ["PATH"]


async def test_names_are_sanitised_unique_and_short(ctx: ToolContext) -> None:
    long = "s" * 70
    async with MCPTools(
        {"my.box": stdio(tools=["add"]), "my_box": stdio(tools=["add"]), long: stdio(tools=["add"])}
    ) as mcp:
        names = [t.name for t in mcp.tools]
        assert names == ["my_box__add", "my_box__add_2", "s" * 64]
        assert [(await t.run(ctx, {"a": 1, "b": 1})).output for t in mcp.tools] == ["2", "2", "2"]


def test_importing_the_module_does_not_import_mcp() -> None:
    code = "import sys, agent.tools.mcp; print(sorted(m for m in ('mcp', 'httpx', 'anyio') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_long_descriptions_are_trimmed_and_missing_ones_filled() -> None:
    from mcp import types

    long = types.Tool(name="t", description="word " * 400, inputSchema={"type": "object"})
    assert len(_description("s", long)) <= 1_000 and _description("s", long).endswith("…")
    bare = types.Tool(name="t", inputSchema={"type": "object"})
    assert _description("s", bare) == "t from the MCP server s"
