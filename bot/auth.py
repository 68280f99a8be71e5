"""GitHub App authentication: the App's JWT (RS256) and cached installation tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from agent.errors import ConfigError

JWT_LIFETIME = 540
"""Seconds a JWT is valid; GitHub allows at most 600."""
JWT_BACKDATE = 60
"""Seconds `iat` is set in the past, against clock drift."""
REFRESH_MARGIN = 300
"""An installation token is re-minted this many seconds before it expires."""


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """Parse the App's PEM private key, with an error that says what is wrong."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            "the GitHub App private key is not a readable PEM key; use the .pem file GitHub generated "
            "(GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("the GitHub App private key must be an RSA key (the .pem file GitHub generated)")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class AppJWT:
    """Signs the short-lived JWTs that authenticate as the App itself."""

    def __init__(self, app_id: str, key: rsa.RSAPrivateKey, clock: Callable[[], float] = time.time) -> None:
        self.app_id = app_id
        self._key = key
        self._clock = clock
        self._cached: tuple[str, float] | None = None

    def token(self) -> str:
        """A JWT valid for at least another minute (reused until then)."""
        now = self._clock()
        if self._cached and self._cached[1] - now > 60:
            return self._cached[0]
        header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
        claims = {"iat": int(now) - JWT_BACKDATE, "exp": int(now) + JWT_LIFETIME, "iss": self.app_id}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = f"{header}.{payload}".encode()
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        jwt = f"{header}.{payload}.{_b64(signature)}"
        self._cached = (jwt, now + JWT_LIFETIME)
        return jwt

    def __repr__(self) -> str:  # never show the key
        return f"AppJWT(app_id={self.app_id!r})"


@dataclass(frozen=True, slots=True)
class InstallationToken:
    token: str
    expires_at: float

    def __repr__(self) -> str:
        return f"InstallationToken(expires_at={self.expires_at})"


def parse_expiry(text: str) -> float:
    """GitHub's `expires_at` (`2016-07-11T22:14:10Z`) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


Mint = Callable[[int], Awaitable[InstallationToken]]


class TokenCache:
    """Installation tokens per installation, minted once and refreshed before their one-hour expiry."""

    def __init__(self, mint: Mint, clock: Callable[[], float] = time.time) -> None:
        self._mint = mint
        self._clock = clock
        self._tokens: dict[int, InstallationToken] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def get(self, installation_id: int) -> str:
        cached = self._tokens.get(installation_id)
        if cached and cached.expires_at - self._clock() > REFRESH_MARGIN:
            return cached.token
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:  # one mint per installation, however many callers wait
            cached = self._tokens.get(installation_id)
            if cached and cached.expires_at - self._clock() > REFRESH_MARGIN:
                return cached.token
            fresh = await self._mint(installation_id)
            self._tokens[installation_id] = fresh
            return fresh.token

    def forget(self, installation_id: int) -> None:
        """Drop a token GitHub refused, so the next call mints a new one."""
        self._tokens.pop(installation_id, None)


__all__ = ["AppJWT", "InstallationToken", "TokenCache", "load_private_key", "parse_expiry"]
