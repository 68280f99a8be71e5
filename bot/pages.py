"""Run pages: each run's trace readable at `/runs/{id}?token=…`, the token unguessable and stored only hashed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.services import Services


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def page_link(s: Services, run_id: int) -> str:
    """A new page token for the run (replacing any earlier one) and the page's URL; "" without a public URL."""
    if not s.public_url:
        return ""
    token = secrets.token_urlsafe(24)
    await s.store.set_page_token(run_id, _hash(token))
    return f"{s.public_url.rstrip('/')}/runs/{run_id}?token={token}"


async def token_ok(s: Services, run_id: int, token: str | None) -> bool:
    """Whether `token` opens the run's page (compared in constant time)."""
    stored = await s.store.page_token_hash(run_id)
    return bool(stored and token) and hmac.compare_digest(stored or "", _hash(token or ""))


__all__ = ["page_link", "token_ok"]
