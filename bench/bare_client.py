"""The baseline of the model path: a bare loop calling the scripted server with a client library and nothing else.

Dict messages, the same system prompt and tool specs as the agent (from a JSON file), the tool call answered by
reading the file it names. Runs in-process (`bare_loop`) or as its own process, so its start-up, exit and peak
memory are the client library's alone:

    python -m bench.bare_client --client httpx|litellm --base-url URL --prompt FILE --workdir DIR [--no-stream]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any


async def _httpx_turn(client: Any, url: str, body: dict[str, Any]) -> dict[str, Any]:
    if not body.get("stream"):
        response = await client.post(url, json=body)
        response.raise_for_status()
        return dict(response.json()["choices"][0]["message"])
    text, calls = [], dict[int, dict[str, Any]]()
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[6:]).get("choices") or []:
                delta = choice["delta"]
                text.append(delta.get("content") or "")
                for f in delta.get("tool_calls") or []:
                    c = calls.setdefault(f["index"], {"id": f.get("id"), "name": "", "arguments": []})
                    c["name"] += f["function"].get("name") or ""
                    c["arguments"].append(f["function"].get("arguments") or "")
    return _message("".join(text), [(c["id"], c["name"], "".join(c["arguments"])) for c in calls.values()])


async def _litellm_turn(litellm: Any, base_url: str, body: dict[str, Any]) -> dict[str, Any]:
    # _skip_mcp_handler as in LiteLLMModel: with tools, litellm 1.106 otherwise imports its MCP gateway (mcp>=2.2)
    kw = {**body, "model": "openai/" + body["model"], "api_base": base_url, "api_key": "sk-no-key"}
    response = await litellm.acompletion(**kw, num_retries=0, max_retries=0, _skip_mcp_handler=True)
    if not body.get("stream"):
        m = response.choices[0].message
        calls = [(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or []]
        return _message(m.content or "", calls)
    text, calls_by_index = [], dict[int, dict[str, Any]]()
    async for chunk in response:
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            for f in choice.delta.tool_calls or []:
                c = calls_by_index.setdefault(f.index, {"id": f.id, "name": "", "arguments": []})
                c["name"] += f.function.name or ""
                c["arguments"].append(f.function.arguments or "")
    return _message("".join(text), [(c["id"], c["name"], "".join(c["arguments"])) for c in calls_by_index.values()])


def _message(text: str, calls: list[tuple[str, str, str]]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in calls
        ]
    return message


async def bare_loop(kind: str, base_url: str, prompt: dict[str, Any], workdir: Path, stream: bool) -> list[float]:
    """Run the scripted trajectory to its answer; returns the seconds each tool call took."""
    body: dict[str, Any] = {"model": "scripted", "messages": list(prompt["messages"]), "tools": prompt["tools"]}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    laps: list[float] = []
    if kind == "httpx":
        import httpx

        client = httpx.AsyncClient(timeout=60)
        turn = lambda b: _httpx_turn(client, base_url + "/chat/completions", b)  # noqa: E731
    else:
        import litellm

        litellm.suppress_debug_info = True
        turn = lambda b: _litellm_turn(litellm, base_url, b)  # noqa: E731
    try:
        while True:
            message = await turn(body)
            body["messages"].append(message)
            if not message.get("tool_calls"):
                return laps
            for call in message["tool_calls"]:
                start = time.perf_counter()
                path = json.loads(call["function"]["arguments"])["path"]
                output = (workdir / path).read_text()
                laps.append(time.perf_counter() - start)
                body["messages"].append({"role": "tool", "tool_call_id": call["id"], "content": output})
    finally:
        if kind == "httpx":
            await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", choices=["httpx", "litellm"], required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--prompt", type=Path, required=True, help="JSON: {messages, tools}")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--no-stream", action="store_true")
    args = parser.parse_args()
    prompt = json.loads(args.prompt.read_text())
    asyncio.run(bare_loop(args.client, args.base_url, prompt, args.workdir, not args.no_stream))


if __name__ == "__main__":
    main()
