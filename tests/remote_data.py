"""Recorded and documented API bodies (tests/data/remote) for the research tools' respx routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

DATA = Path(__file__).parent / "data" / "remote"


def load(path: str) -> Any:
    return json.loads((DATA / path).read_text())


def viewer(endpoint: str, status: int = 200, example: str | None = None) -> Any:
    """A documented body of the dataset viewer's `endpoint` for `status` (the first example unless named)."""
    examples = load(f"viewer/{endpoint}.json")["responses"][str(status)]["examples"]
    return examples[example] if example else next(iter(examples.values()))


def viewer_error(endpoint: str, status: int, example: str | None = None, code: str | None = None) -> httpx.Response:
    """A documented error response of the viewer, with its documented `X-Error-Code`."""
    entry = load(f"viewer/{endpoint}.json")["responses"][str(status)]
    example = example or next(iter(entry["examples"]))
    body = entry["examples"][example]
    body = body.get("value", body) if isinstance(body, dict) and "summary" in body else body
    codes = entry.get("headers", {}).get("X-Error-Code") or []
    headers = {"X-Error-Code": code or codes[0]} if (code or codes) else {}
    return httpx.Response(status, json=body, headers=headers)


def hub_recording(name: str) -> list[dict[str, Any]]:
    """The interactions of a recorded Hub exchange: [{request, response: {status, headers_subset, body}}]."""
    interactions: list[dict[str, Any]] = load(f"hub/{name}.json")["interactions"]
    return interactions


def github(name: str, example: str | None = None) -> Any:
    examples = load(f"github/{name}.json")["responses"]["200"]["examples"]
    return examples[example] if example else next(iter(examples.values()))
