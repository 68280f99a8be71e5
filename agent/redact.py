"""Secrets out of everything that leaves the process: tool output, events, traces, subprocess environments."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

REDACTED = "[REDACTED]"
MIN_SECRET_LEN = 8
"""Shorter values are not treated as secrets: replacing them would garble ordinary text."""

_SUFFIXES = ("API_KEY", "TOKEN", "SECRET", "PASSWORD", "SECRET_ACCESS_KEY", "PRIVATE_KEY")
_SECRET_NAME = re.compile(rf"(?:\w*_)?(?:{'|'.join(_SUFFIXES)})", re.IGNORECASE)
"""HF_TOKEN, GH_TOKEN, OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY, WEBHOOK_SECRET, DB_PASSWORD..."""

# Alternatives are joined flat and each starts with a literal or a character set, so the regex engine can
# skip most positions with one character test; word boundaries are checked by look-behind after that.
_PATTERNS = [
    r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?:[\s\S]*?-----END[A-Z ]*PRIVATE KEY-----|[A-Za-z0-9+/=\s\\:,-]*)",
    r"hf_[A-Za-z0-9]{20,}",
    r"sk-[A-Za-z0-9_-]{20,}",  # OpenAI, Anthropic (sk-ant-...)
    r"gh[pousr]_[A-Za-z0-9]{20,}",
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"A[KS]IA[A-Z0-9]{16}",
    r"xox[bap]-[A-Za-z0-9-]{10,}",
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
    r"[Bb]earer[ \t]+(?P<bearer>[A-Za-z0-9._~+/=-]{16,})",
    r"://[^\s/:@]+:(?P<url>[^\s/@]{3,})(?=@)",  # https://user:password@host
    # NAME=value / NAME: value / "NAME": "value" with an upper-case, secret-looking NAME; the name is kept.
    # The value must not be a reference (${X}, os.environ[...], getenv(...)), a PEM block or already redacted.
    r"[A-Z0-9](?<![\w][A-Z0-9])[A-Z0-9_]*"
    + "".join(["(?:", "|".join(f"(?<={s})" for s in _SUFFIXES), ")"])
    + r"""\b["']?[ \t]*[=:][ \t]*["']?(?!-----)(?P<kv>[^\s"'`$<>{}()\[\],;\\]{8,}+)(?![(\[])""",
]
_KEPT_PREFIX_GROUPS = ("kv", "bearer", "url")
"""For these, only the named group is the secret; what comes before it in the match is kept."""


def is_secret_name(name: str) -> bool:
    """Whether an environment variable name looks like it holds a secret."""
    return _SECRET_NAME.fullmatch(name) is not None


def scrub_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without secret-looking variables, for subprocesses."""
    return {k: v for k, v in environ.items() if not is_secret_name(k)}


class Redactor:
    """Replaces known secret values and common token shapes with `[REDACTED]`."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        for v in values:
            self._values.add(v.strip())
        self._compile()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Redactor:
        """A redactor that knows the values of the secret-looking variables in `environ`."""
        return cls(v for k, v in environ.items() if is_secret_name(k))

    def add(self, value: str) -> None:
        """Also redact this exact value (ignored when shorter than MIN_SECRET_LEN)."""
        value = value.strip()
        if len(value) >= MIN_SECRET_LEN and value not in self._values:
            self._values.add(value)
            self._compile()

    def _compile(self) -> None:
        self._values = {v for v in self._values if len(v) >= MIN_SECRET_LEN}
        literals = "|".join(re.escape(v) for v in sorted(self._values, key=len, reverse=True))
        self._re = re.compile("|".join([literals, *_PATTERNS] if literals else _PATTERNS))

    @staticmethod
    def _replace(m: re.Match[str]) -> str:
        for name in _KEPT_PREFIX_GROUPS:
            if m.start(name) >= 0:
                return m.string[m.start() : m.start(name)] + REDACTED
        return REDACTED

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by `[REDACTED]`."""
        return self._re.sub(self._replace, text) if text else text

    def redact_obj(self, obj: Any) -> Any:
        """A copy of `obj` with every string inside dicts, lists and tuples redacted."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact_obj(k): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.redact_obj(v) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self.redact_obj(v) for v in obj)
        return obj
