"""Paths whose content makes code run later: git internals, virtual environments, ML Intern's own code and config.

Writing one is not an ordinary workspace write: git runs what `.git/config` and `.git/hooks` name, Python runs
`.pth` files and everything in a virtual environment, and ML Intern runs its own code and obeys its own config on
the next start (with every token). `write` and `edit` give such calls the `protected` effect, which a human must
approve and a headless run denies.
"""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

GIT_REASONS = {
    "config": "git runs commands named there (core.fsmonitor, core.pager, aliases, filters)",
    "hooks": "git runs hooks on commit, checkout, merge and push",
}
GIT_OTHER = "git reads it to decide what to run and where the repository is"
VENV_PARTS = frozenset({".venv", "site-packages", "dist-packages"})
CONFIG_NAMES = frozenset({"ml-intern.yml", "ml-intern.yaml"})


def protected_reason(workdir: Path, target: Path) -> str | None:
    """Why writing `target` (a resolved path inside the resolved `workdir`) lets code run later, or None.

    The answer reads after the verb: "writes .git/config: git runs commands named there ...".
    """
    rel = target.relative_to(workdir) if target.is_relative_to(workdir) else target
    shown = rel.as_posix()
    why = _git(rel) or _venv(workdir, target, rel) or _own(workdir, target)
    return f"writes {shown}: {why}" if why else None


def _git(rel: Path) -> str | None:
    parts = [p.casefold() for p in rel.parts]  # `.GIT/config` is `.git/config` on case-insensitive disks
    if ".git" not in parts:
        return None
    after = parts[parts.index(".git") + 1 :]
    if not after:
        return "a `.git` file or folder tells git where the repository and its config are"
    return GIT_REASONS.get(after[0], GIT_OTHER)


def _venv(workdir: Path, target: Path, rel: Path) -> str | None:
    parts = {p.casefold() for p in rel.parts}
    name = target.name.casefold()
    if name.endswith(".pth"):
        return "Python runs the `import` lines of .pth files in site-packages at every start"
    in_venv = any((d / "pyvenv.cfg").is_file() for d in _folders(workdir, target))
    if name == "pyvenv.cfg" or parts & VENV_PARTS or in_venv:
        return "it is inside a Python environment, whose code runs when Python or a tool from it starts"
    return None


def _folders(workdir: Path, target: Path) -> Iterator[Path]:
    """The folders from the target's up to the workspace root (within it)."""
    folder = target.parent
    while folder.is_relative_to(workdir):
        yield folder
        if folder == workdir:
            return
        folder = folder.parent


def _own(workdir: Path, target: Path) -> str | None:
    from agent.config import user_config_path
    from agent.trace import data_home

    if target.name.casefold() in CONFIG_NAMES or target == _resolved(user_config_path()):
        return "it is ML Intern's config, which decides what runs without asking"
    home = _resolved(data_home())
    if target.is_relative_to(home) and not _workspace_in_store(workdir, target, home):
        return "it is ML Intern's session store, whose traces a resumed session trusts"
    if any(target.is_relative_to(p) for p in _own_code()):
        return "it is ML Intern's own code, which runs with every token on its next start"
    if any(target.is_relative_to(p) for p in _interpreter(workdir)):
        return "it is part of the Python installation ML Intern runs from"
    return None


def _workspace_in_store(workdir: Path, target: Path, home: Path) -> bool:
    """A workspace the server keeps in its data folder (a thread's checkout): its files are the workspace's,
    as long as the workspace is a folder of its own there, away from the sessions."""
    return (
        target.is_relative_to(workdir)
        and workdir != home
        and workdir.is_relative_to(home)
        and not workdir.is_relative_to(home / "sessions")
    )


def _own_code() -> list[Path]:
    """The installed `agent` and `bot` package folders (the source tree, for an editable install)."""
    import agent

    root = Path(agent.__file__).resolve().parent.parent
    return [root / "agent", root / "bot"]


def _interpreter(workdir: Path) -> list[Path]:
    """The running interpreter's prefixes and library folders; a prefix holding the workspace (a system Python
    whose prefix is `/usr`, a container's `/`) is left out, its library folders are kept."""
    prefixes = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    paths = sysconfig.get_paths()
    folders = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib", "scripts") if k in paths}
    found = [_resolved(Path(p)) for p in folders]
    found += [p for p in map(_resolved, map(Path, prefixes)) if not workdir.is_relative_to(p)]
    return found


def _resolved(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError):
        return path


__all__ = ["protected_reason"]
