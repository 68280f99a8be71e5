"""The process environment, read once: the session, the redactor, the model routing and the tools' clients get
this snapshot instead of reading `os.environ` themselves."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from types import MappingProxyType


class EnvSnapshot(Mapping[str, str]):
    """A read-only copy of the environment taken at one moment. Nothing in the agent writes to `os.environ`."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._data: Mapping[str, str] = MappingProxyType(dict(values or {}))

    @classmethod
    def capture(cls, environ: Mapping[str, str] | None = None) -> EnvSnapshot:
        """Snapshot `environ` (the process environment by default)."""
        return cls(os.environ if environ is None else environ)

    def __getitem__(self, name: str) -> str:
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:  # never the values: they hold secrets
        return f"EnvSnapshot({len(self._data)} variables)"

    def first(self, *names: str) -> str | None:
        """The value of the first of `names` that is set and not empty."""
        for name in names:
            if value := self._data.get(name):
                return value
        return None

    def scrubbed(self) -> dict[str, str]:
        """The environment for subprocesses: secret-named variables and token-shaped values removed."""
        from agent.redact import scrub_env

        return scrub_env(self._data)


__all__ = ["EnvSnapshot"]
