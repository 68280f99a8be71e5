"""Deployment settings of the GitHub App server, read from the environment or a `.env` file, in one place."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.errors import ConfigError

MAX_BODY_BYTES = 25 * 1024 * 1024
"""GitHub never delivers a payload over 25 MB."""
_PLACEHOLDERS = {"changeme", "change-me", "secret", "development", "development-secret", "xxx", "todo", "..."}


class Settings(BaseSettings):
    """Every deployment setting; the environment variable is the field name in upper case."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    github_app_id: str = ""
    """The App's id (or client id), from the App's settings page."""
    github_app_private_key: SecretStr | None = None
    """The App's private key, PEM text (literal `\\n` sequences are accepted)."""
    github_app_private_key_path: Path | None = None
    """A file holding the PEM private key, when the key is not given inline."""
    github_webhook_secret: SecretStr | None = None
    """The webhook secret set on the App; every delivery must be signed with it."""
    github_api_url: str = "https://api.github.com"
    """The REST API root; GitHub Enterprise Server is `https://HOST/api/v3`."""
    database_url: str = ""
    """`postgresql://user@host/db` to share runs between processes; empty: SQLite in the data folder."""
    ml_intern_public_url: str = ""
    """The server's public URL, for links in comments (optional)."""
    ml_intern_max_runs: int = Field(default=4, ge=1)
    """Runs executing at once, across every process sharing the database."""
    ml_intern_allowed_bots: str = ""
    """Comma-separated bot logins (e.g. `renovate[bot]`) whose mentions may trigger runs."""
    ml_intern_max_body_bytes: int = Field(default=MAX_BODY_BYTES, ge=1024)
    """Webhook bodies larger than this are refused with 413."""
    ml_intern_permission_ttl: float = Field(default=300.0, ge=0)
    """Seconds a user's repository permission is cached."""
    ml_intern_poll_seconds: float = Field(default=1.0, gt=0)
    """How often a worker looks for work queued by other processes."""
    ml_intern_daily_budget_usd: float | None = Field(default=None, ge=0)
    """Model and tool spend allowed per installation per UTC day across its thread runs; unset: no cap."""

    @property
    def allowed_bots(self) -> frozenset[str]:
        return frozenset(b.strip().lower() for b in self.ml_intern_allowed_bots.split(",") if b.strip())

    def webhook_secret(self) -> bytes:
        """The webhook secret, refusing to run without a real one."""
        secret = self.github_webhook_secret.get_secret_value().strip() if self.github_webhook_secret else ""
        if not secret:
            raise ConfigError("GITHUB_WEBHOOK_SECRET is not set; set it to the webhook secret of your GitHub App")
        if secret.lower() in _PLACEHOLDERS:
            raise ConfigError("GITHUB_WEBHOOK_SECRET is a placeholder; set it to the secret of your GitHub App")
        return secret.encode()

    def private_key_pem(self) -> bytes:
        """The App's private key as PEM bytes, from GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH."""
        if self.github_app_private_key is not None and self.github_app_private_key.get_secret_value().strip():
            return self.github_app_private_key.get_secret_value().replace("\\n", "\n").strip().encode()
        if self.github_app_private_key_path is not None:
            path = self.github_app_private_key_path.expanduser()
            try:
                return path.read_bytes()
            except OSError as e:
                raise ConfigError(
                    f"GITHUB_APP_PRIVATE_KEY_PATH: cannot read {path} ({e.strerror}); "
                    "point it at the .pem file downloaded from the App's settings"
                ) from None
        raise ConfigError(
            "no private key: set GITHUB_APP_PRIVATE_KEY (PEM text) or GITHUB_APP_PRIVATE_KEY_PATH (the .pem file)"
        )

    def app_id(self) -> str:
        if not self.github_app_id.strip():
            raise ConfigError("GITHUB_APP_ID is not set; copy the App ID from the App's settings page")
        return self.github_app_id.strip()

    def api_url(self) -> str:
        url = self.github_api_url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"GITHUB_API_URL must start with https:// (got {url!r})")
        return url

    def database(self, data_dir: Path) -> str:
        """The database URL: DATABASE_URL, or a SQLite file in the data folder."""
        url = self.database_url.strip()
        if not url:
            return f"sqlite:///{data_dir / 'bot.sqlite3'}"
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ConfigError("DATABASE_URL must start with postgresql:// or sqlite:/// (or be empty for SQLite)")
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()


__all__ = ["MAX_BODY_BYTES", "Settings", "get_settings"]
