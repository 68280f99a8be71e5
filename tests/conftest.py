"""Test-wide guards: no real network (only loopback), no real model calls, an isolated data folder."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# A developer's saved Hugging Face login must not leak into tests.
os.environ["HF_TOKEN_PATH"] = os.path.join(tempfile.mkdtemp(prefix="ml-intern-hf-"), "token")

pytest_plugins = ["tests.fixtures"]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(address: object) -> None:
    if isinstance(address, tuple):
        host = str(address[0])
        try:
            ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
        if not ok:
            raise ConnectionRefusedError(f"tests may only reach loopback addresses, not {host}")


def _connect(self: socket.socket, address: object) -> None:
    _check(address)
    _real_connect(self, address)  # type: ignore[arg-type]


def _connect_ex(self: socket.socket, address: object) -> int:
    _check(address)
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setattr(socket.socket, "connect", _connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _connect_ex)
    monkeypatch.setenv("ML_INTERN_HOME", str(tmp_path_factory.mktemp("ml-intern-home")))
    monkeypatch.setenv("ML_INTERN_CONFIG", str(tmp_path_factory.mktemp("no-user-config") / "config.yaml"))
