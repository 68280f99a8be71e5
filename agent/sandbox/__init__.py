"""Where commands run: the `Sandbox` protocol, a local and a bubblewrap implementation, and choosing one."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import ConfigError
from agent.sandbox.base import CommandResult, OnOutput, Sandbox
from agent.sandbox.local import LocalSandbox
from agent.sandbox.protect import protect_process

if TYPE_CHECKING:
    from agent.config import SandboxConfig
    from agent.sandbox.bubblewrap import BubblewrapSandbox

logger = logging.getLogger(__name__)


def open_sandbox(config: SandboxConfig, *, workdir: Path, headless: bool, search_path: str | None = None) -> Sandbox:
    """The sandbox `config.mode` asks for: `bubblewrap` (required), `none` (local), or `auto` (bubblewrap for
    headless runs where it works, local otherwise). Raises ConfigError when bubblewrap is required but unusable."""
    if config.mode == "none" or (config.mode == "auto" and not headless):
        return LocalSandbox()
    path = search_path if search_path is not None else os.environ.get("PATH", "")
    sandbox, problem = _bubblewrap(config, workdir.resolve(), path)
    if sandbox is not None:
        return sandbox
    if config.mode == "bubblewrap":
        raise ConfigError(f"the sandbox cannot run: {problem}; or run without it (--no-sandbox)")
    logger.warning("commands run without a sandbox: %s", problem)
    return LocalSandbox()


def _bubblewrap(config: SandboxConfig, workdir: Path, search_path: str) -> tuple[BubblewrapSandbox | None, str]:
    from agent.sandbox.bubblewrap import INSTALL_HINT, BubblewrapSandbox, Limits, find_bwrap
    from agent.sandbox.cgroup import PidsCgroup
    from agent.sandbox.toolchains import toolchains

    bwrap = find_bwrap()
    if bwrap is None:
        return None, f"bubblewrap (bwrap) is not installed; {INSTALL_HINT}"
    home = Path.home().resolve()
    if workdir == home or workdir in home.parents:
        return (
            None,
            f"the workspace {workdir} holds your home folder, which the sandbox hides; use a project folder",
        )
    extra = [Path(p).expanduser().resolve() for p in config.read_only]
    missing = [str(p) for p in extra if not p.exists()]
    if missing:
        raise ConfigError(f"sandbox.read_only: {', '.join(missing)} does not exist; fix or remove it")
    cgroup = None
    if os.getuid() == 0 and config.processes is not None:
        cgroup = PidsCgroup.find(config.processes + 2)  # + bwrap's own two processes
        if cgroup is None:
            logger.warning("running as root with no writable pids cgroup: sandbox.processes is not enforced")
    extra += [p for p in toolchains(search_path, workdir) if p not in extra]
    limits = Limits(config.memory_mb, config.processes, config.file_size_mb)
    sandbox = BubblewrapSandbox(workdir, bwrap, config.network, limits, extra, cgroup)
    problem = sandbox.probe()
    if problem is not None:
        return None, f"bubblewrap does not work here ({problem}); user namespaces may be disabled"
    return sandbox, ""


__all__ = ["CommandResult", "LocalSandbox", "OnOutput", "Sandbox", "open_sandbox", "protect_process"]
