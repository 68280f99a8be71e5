"""The App JWT and the installation-token cache."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from agent.errors import ConfigError
from bot.auth import REFRESH_MARGIN, AppJWT, InstallationToken, TokenCache, load_private_key, parse_expiry


def _part(text: str) -> dict:  # type: ignore[type-arg]
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def test_the_jwt_is_rs256_with_the_documented_claims(app_key: tuple[rsa.RSAPrivateKey, str]) -> None:
    key, pem = app_key
    jwt = AppJWT("4242", load_private_key(pem.encode()), clock=lambda: 1_000_000.0)
    token = jwt.token()
    head, claims, sig = token.split(".")
    assert _part(head) == {"alg": "RS256", "typ": "JWT"}
    assert _part(claims) == {"iat": 1_000_000 - 60, "exp": 1_000_000 + 540, "iss": "4242"}
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    key.public_key().verify(raw, f"{head}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert "BEGIN" not in repr(jwt)


def test_the_jwt_is_reused_then_renewed(app_key: tuple[rsa.RSAPrivateKey, str]) -> None:
    now = [1_000_000.0]
    jwt = AppJWT("1", load_private_key(app_key[1].encode()), clock=lambda: now[0])
    first = jwt.token()
    now[0] += 400
    assert jwt.token() == first
    now[0] += 100
    assert jwt.token() != first


NOT_A_KEY = b"-----BEGIN " + b"PRIVATE KEY-----\nAAAA\n-----END " + b"PRIVATE KEY-----\n"  # the shape, no key


@pytest.mark.parametrize("pem", [b"", b"not a key", NOT_A_KEY])
def test_unreadable_keys_are_config_errors(pem: bytes) -> None:
    with pytest.raises(ConfigError, match="PEM"):
        load_private_key(pem)


def test_a_non_rsa_key_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigError, match="RSA"):
        load_private_key(pem)


async def test_tokens_are_minted_once_and_refreshed_before_expiry() -> None:
    now = [0.0]
    minted: list[int] = []

    async def mint(installation: int) -> InstallationToken:
        minted.append(installation)
        await asyncio.sleep(0)
        return InstallationToken(f"ghs_{len(minted)}", now[0] + 3600)

    cache = TokenCache(mint, clock=lambda: now[0])
    assert await asyncio.gather(*(cache.get(7) for _ in range(10))) == ["ghs_1"] * 10
    now[0] = 3600 - REFRESH_MARGIN - 1
    assert await cache.get(7) == "ghs_1"
    now[0] = 3600 - REFRESH_MARGIN + 1
    assert await cache.get(7) == "ghs_2"
    cache.forget(7)
    assert await cache.get(7) == "ghs_3"
    assert await cache.get(8) == "ghs_4"
    assert minted == [7, 7, 7, 8]
    assert "ghs" not in repr(InstallationToken("ghs_secret", 1.0))


def test_expiry_parsing() -> None:
    assert parse_expiry("1970-01-01T01:00:00Z") == 3600.0
