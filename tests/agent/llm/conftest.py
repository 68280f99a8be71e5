"""Model tests run with no real credentials and no saved Hugging Face login."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Read by huggingface_hub when it is first imported; points at a file that does not exist.
os.environ.setdefault("HF_TOKEN_PATH", str(Path(tempfile.gettempdir()) / f"ml-intern-tests-{os.getpid()}" / "token"))

CREDENTIALS = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "OPENROUTER_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HUGGINGFACE_API_KEY",
    "HF_OIDC_RESOURCE",
)


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
