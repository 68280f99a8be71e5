"""Request latency of the scripted server as shipped, against the same server with TCP_NODELAY."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

from agent.llm.scripted import say
from bench.common import Result, bench_env, median, scripted_server

REQUESTS = 12


def _latencies(base_url: str) -> list[float]:
    """Seconds per request, all on one keep-alive connection (as an HTTP client pool uses it)."""
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    body = json.dumps({"model": "x", "messages": [{"role": "user", "content": "hi"}]})
    out = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        conn.request("POST", f"{url.path}/chat/completions", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        out.append(time.perf_counter() - start)
        if response.status != 200:
            raise RuntimeError(f"the scripted server answered {response.status}")
    conn.close()
    return out


def measure(tmp: Path) -> list[Result]:
    env, items = bench_env(tmp), [say("Hello from the scripted server.")] * REQUESTS
    with scripted_server(items, tmp / "latency-shipped", env) as url:
        shipped = _latencies(url)
    with scripted_server(items, tmp / "latency-nodelay", env, nodelay=True) as url:
        nodelay = _latencies(url)
    return [
        Result(
            "2. loop overhead",
            "scripted server request, keep-alive (as shipped)",
            median(shipped[1:]) * 1000,
            "ms",
            median(nodelay[1:]) * 1000,
            "same server with TCP_NODELAY",
            samples=shipped,
            note=f"first request {shipped[0] * 1000:.1f} ms; test harness, not the agent",
        )
    ]
