"""Deployment settings: the documented names, from the environment or a .env file, and refusals that say what to set."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.errors import ConfigError
from bot.settings import MAX_BODY_BYTES, Settings


def test_names_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "GITHUB_APP_ID": "123",
        "GITHUB_WEBHOOK_SECRET": "s3cr3t-from-env",
        "GITHUB_API_URL": "https://ghe.example.com/api/v3/",
        "DATABASE_URL": "postgresql://db/ml",
        "ML_INTERN_PUBLIC_URL": "https://bot.example.com",
        "ML_INTERN_MAX_RUNS": "2",
        "ML_INTERN_ALLOWED_BOTS": "Renovate[bot], ",
    }.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert s.app_id() == "123" and s.webhook_secret() == b"s3cr3t-from-env"
    assert s.api_url() == "https://ghe.example.com/api/v3"
    assert s.database(tmp_path) == "postgresql://db/ml"
    assert s.ml_intern_max_runs == 2 and s.allowed_bots == frozenset({"renovate[bot]"})
    assert s.ml_intern_max_body_bytes == MAX_BODY_BYTES
    assert "s3cr3t" not in repr(s)


def test_a_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_APP_ID", raising=False)
    (tmp_path / ".env").write_text("GITHUB_APP_ID=77\nGITHUB_WEBHOOK_SECRET=from-dotenv-file\n")
    s = Settings()
    assert s.app_id() == "77" and s.webhook_secret() == b"from-dotenv-file"
    assert s.database(tmp_path) == f"sqlite:///{tmp_path / 'bot.sqlite3'}"


def test_the_private_key_inline_with_escaped_newlines_or_from_a_file(
    tmp_path: Path, app_key: tuple[rsa.RSAPrivateKey, str]
) -> None:
    pem = app_key[1]
    inline = Settings(_env_file=None, github_app_private_key=pem.replace("\n", "\\n"))  # type: ignore[call-arg]
    assert inline.private_key_pem() == pem.strip().encode()
    (tmp_path / "app.pem").write_text(pem)
    from_file = Settings(_env_file=None, github_app_private_key_path=tmp_path / "app.pem")  # type: ignore[call-arg]
    assert from_file.private_key_pem() == pem.encode()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "GITHUB_WEBHOOK_SECRET is not set"),
        ({"github_webhook_secret": "changeme"}, "placeholder"),
    ],
)
def test_a_missing_or_placeholder_secret_is_refused(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings(_env_file=None, **values).webhook_secret()  # type: ignore[arg-type]


def test_other_refusals_name_what_to_set(tmp_path: Path) -> None:
    empty = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="GITHUB_APP_PRIVATE_KEY"):
        empty.private_key_pem()
    with pytest.raises(ConfigError, match="GITHUB_APP_ID"):
        empty.app_id()
    missing = Settings(_env_file=None, github_app_private_key_path=tmp_path / "nope.pem")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="GITHUB_APP_PRIVATE_KEY_PATH: cannot read"):
        missing.private_key_pem()
    with pytest.raises(ConfigError, match="GITHUB_API_URL"):
        Settings(_env_file=None, github_api_url="api.github.com").api_url()  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings(_env_file=None, database_url="mysql://x").database(tmp_path)  # type: ignore[call-arg]
