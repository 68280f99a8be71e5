"""Signature over the raw bytes, the size cap (declared and streamed), and parsing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.webhooks import WebhookError, parse, read_capped, sign, verify

VECTOR = json.loads((Path(__file__).parent / "fixtures" / "signature-vector.json").read_text())


def test_the_documented_test_vector() -> None:
    assert sign(VECTOR["secret"].encode(), VECTOR["payload"].encode()) == VECTOR["expected_X-Hub-Signature-256"]
    verify(VECTOR["secret"].encode(), VECTOR["payload"].encode(), VECTOR["expected_X-Hub-Signature-256"])


@pytest.mark.parametrize("header", [None, "", "sha256=" + "0" * 64, "sha1=abc", "757107ea0eb2509fc211221cce"])
def test_bad_signatures_are_401(header: str | None) -> None:
    with pytest.raises(WebhookError) as e:
        verify(VECTOR["secret"].encode(), VECTOR["payload"].encode(), header)
    assert e.value.status == 401


def test_a_tampered_body_fails() -> None:
    good = sign(b"s", b'{"a": 1}')
    with pytest.raises(WebhookError):
        verify(b"s", b'{"a": 2}', good)


async def _stream(parts: list[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def test_the_cap_refuses_a_declared_length_before_reading() -> None:
    read: list[bytes] = []

    async def never() -> AsyncIterator[bytes]:
        read.append(b"x")
        yield b"x"

    with pytest.raises(WebhookError) as e:
        await read_capped(never(), str(26 * 1024 * 1024), 25 * 1024 * 1024)
    assert e.value.status == 413 and read == []


async def test_the_cap_stops_a_chunked_body_midway() -> None:
    with pytest.raises(WebhookError) as e:
        await read_capped(_stream([b"a" * 600, b"b" * 600, b"c" * 600]), None, 1024)
    assert e.value.status == 413
    assert await read_capped(_stream([b"a" * 500, b"b" * 500]), None, 1024) == b"a" * 500 + b"b" * 500
    with pytest.raises(WebhookError):
        await read_capped(_stream([b"{}"]), "twelve", 1024)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{nope", "not JSON"),
        (b'"\xff"', "not UTF-8"),
        (b"[]", "JSON object"),
        (b"null", "JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_unparseable_bodies_are_400(body: bytes, message: str) -> None:
    with pytest.raises(WebhookError) as e:
        parse(body, "id", "issues")
    assert e.value.status == 400 and message in str(e.value)


def test_parse_needs_the_delivery_headers() -> None:
    with pytest.raises(WebhookError):
        parse(b"{}", None, "issues")
    d = parse(b'{"action": "opened"}', "guid", "issues")
    assert (d.id, d.event, d.action) == ("guid", "issues", "opened")
