"""Secrets out of everything that leaves the process: tool output, events, traces, logs, subprocess environments."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

logger = logging.getLogger(__name__)

REDACTED = "[REDACTED]"
MIN_SECRET_LEN = 8
"""Shorter values are not treated as secrets: replacing them would garble ordinary text."""

_STRONG = (
    *("TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE"),
    *("APIKEY", "API_KEY", "PRIVATE_KEY", "DSN", "CREDENTIALS"),
)
"""Words that make a name secret wherever they stand, alone or glued: HF_TOKEN_WRITE, GITHUB_TOKEN_RO, MYAPP_APIKEY,
GHTOKEN, SENTRY_DSN, SECRET_KEY_BASE."""
_WEAK = ("KEY", "PASS", "PAT", "AUTH", "ACCESS_KEY_ID")
"""Words that make a name secret only at its end: STRIPE_KEY, GH_PAT, SMTP_PASS (not KEYBOARD, SSH_AUTH_SOCK)."""
_NOT_SECRET = ("PATH", "FILE", "DIR", "HOME", "URL", "URI", "ENDPOINT", "HOST", "NAME", "TYPE", "LIMIT", "COUNT")
"""A last word that makes the name point at or describe a secret rather than hold it: HF_TOKEN_PATH, TOKEN_URL."""
_SECRET_NAME = re.compile(rf"(?:\w*_)?(?:{'|'.join(_STRONG + _WEAK)})|\w*?(?:{'|'.join(_STRONG)})(?:_\w+)?")
"""HF_TOKEN, GH_PAT, OPENAI_API_KEY, STRIPE_KEY, AWS_ACCESS_KEY_ID, WEBHOOK_SECRET, DB_PASS, GCP_CREDENTIALS,
HF_TOKEN_WRITE, OPENAI_APIKEY, SENTRY_DSN, GHTOKEN (matched upper-cased, after the _NOT_SECRET check)."""
_POINTERS = frozenset({"GOOGLE_APPLICATION_CREDENTIALS"})
"""Secret-sounding names that hold a file path, not a secret; tools (gcloud, the SDKs) need them to work."""


def _word(start: str) -> str:
    """`start` (fixed width), not continuing a word ("risk-" is no `sk-` key); the look-behind comes after the
    literal so that the regex engine can skip most positions with one character test."""
    return f"{start}(?<![A-Za-z0-9]{start})"


_TOKENS = [  # prefixed shapes: certain enough to also drop environment variables whose value contains one
    r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?:[\s\S]*?-----END[A-Z ]*PRIVATE KEY-----|[A-Za-z0-9+/=\s\\:,-]*)",
    _word("hf_") + r"[A-Za-z0-9]{20,}",
    _word("sk-") + r"(?=[\w-]*[0-9A-Z])[\w-]{20,}",  # OpenAI (sk-proj-, sk-svcacct-), Anthropic (sk-ant-)
    _word("[sr]k_") + r"(?:live|test)_[A-Za-z0-9]{20,}",  # Stripe
    _word("gh[pousr]_") + r"[A-Za-z0-9]{20,}",
    _word("github_pat_") + r"\w{20,}",
    _word("glpat-") + r"[\w-]{20,}",
    _word("npm_") + r"[A-Za-z0-9]{30,}",
    _word("gsk_") + r"[A-Za-z0-9]{30,}",  # Groq
    _word("r8_") + r"[A-Za-z0-9]{30,}",  # Replicate
    _word("pypi-") + r"AgEIcHlwaS5vcmc[\w-]{20,}",
    _word("A[KS]IA") + r"[A-Z0-9]{16}(?![A-Za-z0-9])",
    _word("AIza") + r"[\w-]{35}(?![A-Za-z0-9])",  # Google API keys
    _word("ya29") + r"\.[\w-]{20,}",  # Google OAuth access tokens
    _word("xox") + r"[a-z]-[A-Za-z0-9-]{10,}",  # Slack bot/user/app/refresh tokens
    r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}",  # JWT
]
_SEP = r"[\"']?[ \t]*[=:][ \t]*[\"']?"
_VALUE = r"[^\s\"'`$<>{}()\[\],;\\&]"
_AUTH = (
    r"[Aa](?i:uthorization)" + _SEP + r"(?:(?i:basic|bearer|token|digest)[ \t]+(?P<auth>[\w.~+/=-]{8,})"
    r"|(?=[\w.~+/=-]*[0-9])(?P<auth2>[\w.~+/=-]{16,}))"
)
# Patterns with a named group: only that group is the secret, what comes before it in the match is kept.
_CONTEXTUAL = [
    r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<hook>[\w/-]{16,})",
    _AUTH,
    r"[XxAaPp](?<![\w-][XxAaPp])(?i:-api-key|pi-key|-auth-token|rivate-token)" + _SEP + r"(?P<hdr>[\w.~+/=-]{8,})",
    r"[Bb]earer[ \t]+(?P<bearer>[\w.~+/=-]{16,})",
    r"://[^\s/:@\"'<>\\]+:(?P<url>[^\s/@\"'<>\\]{3,})(?=@)",  # https://user:password@host
    r"machine[ \t]+\S+[ \t]+login[ \t]+\S+[ \t]+password[ \t]+(?P<netrc>\S+)",  # .netrc
    # NAME=value / NAME: value / "NAME": "value" / export NAME=value (.env files) with an upper-case, secret-looking
    # NAME (see _SECRET_NAME); the name is kept. The value must not be a reference (${X}, os.environ[...],
    # getenv(...)), a PEM block or already redacted.
    r"[A-Z0-9](?<![\w][A-Z0-9])[A-Z0-9_]*?"
    + f"(?:{'|'.join(_STRONG)})(?:_[A-Z0-9]+)*\\b"
    + "".join(f"(?<!_{w})" for w in _NOT_SECRET)
    + r"""["']?[ \t]*[=:][ \t]*["']?(?!-----)(?P<kv>[^\s"'`$<>{}()\[\],;\\]{8,}+)(?![(\[])""",
    # STRIPE_KEY=..., SMTP_PASS=...: a weaker word, so the value must mix letters and digits (CACHE_KEY=model stays)
    r"[A-Z0-9](?<![\w][A-Z0-9])[A-Z0-9_]*_(?:KEY|PASS|PAT)\b"
    + _SEP
    + f"(?!-----)(?={_VALUE}*[0-9])(?={_VALUE}*[A-Za-z])(?P<wkv>{_VALUE}{{8,}}+)(?![(\\[])",
    # password = "...", api_key: ..., ?access_token=... in lower or mixed case: the value must mix letters and
    # digits, so `pad_token = tokenizer.eos_token` and `max_new_tokens=512` stay.
    r"[PpSsTtAa](?<![A-Za-z0-9][PpSsTtAa])"
    r"(?:ass(?:wor)?d|ecret|oken|pi_?[Kk]ey|ccess_?[Kk]ey|ecret_?[Kk]ey|rivate_?[Kk]ey)\b"
    + _SEP
    + f"(?={_VALUE}*[0-9])(?={_VALUE}*[A-Za-z])(?P<lkv>{_VALUE}{{8,}}+)(?![(\\[])",
]
_PATTERNS = _TOKENS + _CONTEXTUAL
_KEPT_PREFIX_GROUPS = ("hook", "auth", "auth2", "hdr", "bearer", "url", "netrc", "kv", "wkv", "lkv")
"""For these, only the named group is the secret; what comes before it in the match is kept."""
_SECRET_VALUE = re.compile("|".join([*_TOKENS, _AUTH]))
"""Environment values that are secrets whatever the variable is called (GIT_CONFIG_VALUE_0=AUTHORIZATION: ...)."""


def is_secret_name(name: str) -> bool:
    """Whether an environment variable name looks like it holds a secret."""
    upper = name.upper()
    if upper in _POINTERS or upper.rsplit("_", 1)[-1] in _NOT_SECRET:
        return False
    return _SECRET_NAME.fullmatch(upper) is not None


def scrub_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for subprocesses: without secret-named variables or values holding a known token shape.

    Paths to credentials (GOOGLE_APPLICATION_CREDENTIALS, KUBECONFIG, HF_HOME, SSH_AUTH_SOCK, DOCKER_CONFIG)
    are kept: they are not secrets, the tools need them, and a command can read the files they name anyway.
    """
    return {k: v for k, v in environ.items() if not is_secret_name(k) and not _SECRET_VALUE.search(v)}


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
        self.spaced = max((len(v) for v in self._values if any(c.isspace() for c in v)), default=0)
        """Length of the longest known value with whitespace in it (a stream must hold that much back)."""

    @staticmethod
    def secret_start(m: re.Match[str]) -> int:
        """Where the secret starts in a match (after a kept prefix such as `Bearer ` or `HF_TOKEN=`)."""
        for name in _KEPT_PREFIX_GROUPS:
            if m.start(name) >= 0:
                return m.start(name)
        return m.start()

    def finditer(self, text: str) -> Iterable[re.Match[str]]:
        """Every secret in `text`."""
        return self._re.finditer(text)

    def _replace(self, m: re.Match[str]) -> str:
        return m.string[m.start() : self.secret_start(m)] + REDACTED

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


class StreamRedactor:
    """Redacts text that arrives in pieces (streamed model output), so a secret split across pieces is still caught.

    `feed()` returns what is safe to show now; it holds back the word being written (a secret has no whitespace),
    an unterminated private key block, and matches still growing. `flush()` returns the rest at the end.
    Already released text is kept as context, so `HF_TOKEN=` released before its value still redacts the value.
    """

    CONTEXT = 256
    MAX_HOLD = 4096
    """A run without whitespace longer than this is released, keeping its last TAIL characters back."""
    TAIL = 512
    MAX_KEY_HOLD = 65536

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._pending = ""
        self._context = ""

    def feed(self, chunk: str) -> str:
        """The redacted text that can be shown after this chunk."""
        self._pending += chunk
        return self._release(self._safe_end(self._pending))

    def flush(self) -> str:
        """The rest of the stream, redacted."""
        return self._release(len(self._pending))

    def reset(self) -> None:
        """Forget the stream (a retried model call starts a new one)."""
        self._pending = self._context = ""

    def _safe_end(self, text: str) -> int:
        end = len(text) - self._redactor.spaced
        begin = text.rfind("-----BEGIN")
        if begin != -1 and text.find("-----END", begin) == -1 and len(text) - begin < self.MAX_KEY_HOLD:
            end = min(end, begin)
        space = max(text.rfind(c, 0, max(end, 0)) for c in " \t\r\n")
        if space < 0 and len(text) > self.MAX_HOLD:
            return len(text) - self.TAIL
        return max(space, 0)

    def _release(self, safe: int) -> str:
        context, base = self._context, len(self._context)
        full, limit = context + self._pending, base + safe
        out: list[str] = []
        pos = base
        for m in self._redactor.finditer(full):
            if m.end() <= base:
                continue
            if m.end() > limit:  # still growing, or reaching past the safe point: hold it back
                limit = max(m.start(), pos)
                break
            start = max(self._redactor.secret_start(m), pos)
            out += [full[pos:start], REDACTED]
            pos = m.end()
        out.append(full[pos:limit])
        self._pending = full[limit:]
        self._context = full[:limit][-self.CONTEXT :]
        return "".join(out)


class RedactingFilter(logging.Filter):
    """A logging filter (for handlers) that redacts the message, its arguments and the exception text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def add(self, value: str) -> None:
        """Also redact this value (a secret found after logging was set up, e.g. the model's key)."""
        self._redactor.add(value)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._redactor.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text, record.exc_info = self._redactor.redact(record.exc_text), None
        if record.stack_info:
            record.stack_info = self._redactor.redact(record.stack_info)
        return True


def redact_in_logs(value: str) -> None:
    """Also redact `value` from what the root logger's handlers write, where they have a RedactingFilter: a key
    learnt from the config (`llm.api_key_env` naming a plain variable) or a saved login, not from its name."""
    for handler in logging.getLogger().handlers:
        for f in handler.filters:
            if isinstance(f, RedactingFilter):
                f.add(value)
