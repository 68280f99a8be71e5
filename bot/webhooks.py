"""Webhook intake before any parsing: the size cap, the signature over the raw bytes, then the JSON."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any


class WebhookError(Exception):
    """A delivery refused; `status` is the HTTP answer and the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Delivery:
    """One verified delivery."""

    id: str
    event: str
    payload: dict[str, Any]

    @property
    def action(self) -> str:
        return str(self.payload.get("action") or "")


async def read_capped(stream: AsyncIterator[bytes], content_length: str | None, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed `limit`, chunked or not."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise WebhookError(400, "Content-Length is not a number") from None
        if declared > limit:
            raise WebhookError(413, f"body of {declared} bytes is over the {limit}-byte limit")
    parts: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise WebhookError(413, f"body is over the {limit}-byte limit")
        parts.append(chunk)
    return b"".join(parts)


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> None:
    """Check the signature in constant time (401 if it is missing or wrong)."""
    if not header:
        raise WebhookError(401, "missing X-Hub-Signature-256")
    if not hmac.compare_digest(sign(secret, body).encode(), header.strip().encode()):
        raise WebhookError(401, "bad signature")


def parse(body: bytes, delivery_id: str | None, event: str | None) -> Delivery:
    """A verified body as a Delivery: UTF-8 JSON holding an object, with the delivery headers present."""
    if not delivery_id or not event:
        raise WebhookError(400, "missing X-GitHub-Delivery or X-GitHub-Event header")
    if len(delivery_id) > 100 or len(event) > 100:
        raise WebhookError(400, "delivery header too long")
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise WebhookError(400, "body is not UTF-8") from None
    except json.JSONDecodeError as e:
        raise WebhookError(400, f"body is not JSON: {e.msg} at position {e.pos}") from None
    except RecursionError:
        raise WebhookError(400, "body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise WebhookError(400, f"body must be a JSON object, not {type(payload).__name__}")
    return Delivery(delivery_id, event, payload)


__all__ = ["Delivery", "WebhookError", "parse", "read_capped", "sign", "verify"]
