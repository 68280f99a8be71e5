"""What each installation spent today (model and tool costs of its runs), for the daily cap; one small file per day."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO


class Ledger:
    """Spend per installation per UTC day, under `root`; safe between the processes that share the folder."""

    def __init__(self, root: Path, today: Callable[[], str] | None = None) -> None:
        self.root = root
        self._today = today or (lambda: datetime.now(UTC).strftime("%Y-%m-%d"))

    def spent(self, installation: int) -> float:
        with self._open() as f:
            return float(_read(f).get(str(installation), 0.0))

    def add(self, installation: int, usd: float) -> float:
        """Record `usd` more for today; returns the day's total."""
        with self._open() as f:
            data = _read(f)
            total = float(data.get(str(installation), 0.0)) + max(usd, 0.0)
            data[str(installation)] = total
            f.seek(0)
            f.truncate()
            f.write(json.dumps(data))
            return total

    @contextlib.contextmanager
    def _open(self) -> Iterator[IO[str]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{self._today()}.json").open("a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            yield f


def _read(f: IO[str]) -> dict[str, float]:
    try:
        data = json.loads(f.read() or "{}")
    except ValueError:
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


__all__ = ["Ledger"]
