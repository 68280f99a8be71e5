"""What tools reach beyond their arguments: clients and credentials, built per session from the environment."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol, Self, TypeVar, cast

from agent.env import EnvSnapshot

logger = logging.getLogger(__name__)


class Dependency(Protocol):
    """Clients (and the credentials inside them) that the tools of a family share for a session.

    Built from the session's environment snapshot on first use, so a session that never calls a Hub tool never
    builds a Hub client; tests inject ready-made instances instead. Credentials stay inside the client: the
    model never sees them, and subprocesses get a scrubbed environment.
    """

    @classmethod
    def from_env(cls, env: EnvSnapshot) -> Self:
        """Build the clients from the environment (tokens, endpoints)."""
        ...

    async def aclose(self) -> None:
        """Release connections when the session closes."""
        ...


D = TypeVar("D", bound=Dependency)


class Deps:
    """The dependency slot of a tool context: `ctx.deps.get(HubClients)` builds (once) or returns the instance."""

    def __init__(self, env: EnvSnapshot | None = None, given: Iterable[object] = ()) -> None:
        self._env = env if env is not None else EnvSnapshot()
        self._given: dict[type, object] = {type(d): d for d in given}
        self._built: dict[type, object] = {}

    def get(self, kind: type[D]) -> D:
        """The session's instance of `kind`: an injected one, or one built from the environment on first use."""
        found = self._given.get(kind) or self._built.get(kind)
        if found is None:
            found = self._built[kind] = kind.from_env(self._env)
        return cast(D, found)

    async def aclose(self) -> None:
        """Close what this slot built (injected instances belong to whoever injected them)."""
        built, self._built = list(self._built.values()), {}
        for dep in built:
            try:
                await cast(Dependency, dep).aclose()
            except Exception:  # closing is best effort; a failure must not hide the session's own result
                logger.warning("closing %s failed", type(dep).__name__, exc_info=True)


__all__ = ["Dependency", "Deps"]
