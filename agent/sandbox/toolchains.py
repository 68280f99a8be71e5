"""Toolchains the sandbox shows read-only: interpreters installed outside the system folders (a virtual
environment, pyenv, uv, nvm, rustup), so that `python3` in a command is the same one the user runs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

COMMANDS = ("python3", "python", "pip", "uv", "node", "npm", "cargo", "rustc", "go", "java")
"""Commands whose installation is shown to the sandbox when it lies outside the system folders."""
_SYSTEM = tuple(Path(p) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"))
_SECRET_PARTS = frozenset({".ssh", ".aws", ".gnupg", ".config", ".docker", ".kube", ".netrc", ".git-credentials"})
_SECRET_CACHES = ("huggingface", "gh", "pypoetry/auth")


def toolchains(search_path: str, workdir: Path) -> list[Path]:
    """Folders to show read-only so the commands of `COMMANDS` found on `search_path` work in the sandbox: each
    one's folder (the whole environment when it is a virtual environment) and the prefix of the real file it
    links to. Folders under the workspace (already visible) and anything that looks like credentials are left out.
    """
    found: list[Path] = []
    for name in COMMANDS:
        where = shutil.which(name, path=search_path)
        if where is None:
            continue
        link = Path(where)
        found += [_environment(link.parent), _prefix(link.resolve())]
    return _keep(found, workdir)


def _environment(bin_dir: Path) -> Path:
    """A virtual environment's root for its `bin` folder; the folder itself otherwise."""
    return bin_dir.parent if (bin_dir.parent / "pyvenv.cfg").is_file() else bin_dir


def _prefix(real: Path) -> Path:
    """`<prefix>` for `<prefix>/bin/<tool>` (an installed interpreter and its libraries); the folder otherwise.
    A prefix right under the home folder (`~/.cargo`, `~/.local`) also holds credentials: only its `bin` then."""
    prefix = real.parent.parent if real.parent.name == "bin" else real.parent
    return real.parent if prefix.parent == Path.home() else prefix


def _keep(paths: Iterable[Path], workdir: Path) -> list[Path]:
    out: list[Path] = []
    for path in dict.fromkeys(p.resolve() for p in paths):
        if any(path == s or s in path.parents for s in _SYSTEM) or path == workdir or workdir in path.parents:
            continue
        if path == Path("/") or path == Path.home() or _SECRET_PARTS & set(path.parts):
            continue
        if any(f"/.cache/{c}" in path.as_posix() for c in _SECRET_CACHES) or not os.access(path, os.R_OK):
            continue
        out.append(path)
    return [p for p in out if not any(q in p.parents for q in out)]  # a folder inside another is shown already


__all__ = ["COMMANDS", "toolchains"]
