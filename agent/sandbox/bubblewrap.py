"""Commands in bubblewrap: only the workspace is writable, nothing of the agent or the user's home is visible."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.sandbox.base import CommandResult, OnOutput
from agent.sandbox.cgroup import PidsCgroup
from agent.sandbox.local import run_process

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap)"
)
BWRAP_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
"""The whole environment bwrap itself starts with: its /proc/<pid>/environ (pid 1 inside) holds nothing else."""
SANDBOX_UID = 1000
"""The uid inside the sandbox when the agent runs as root (a user's own uid is kept)."""
_SYSTEM = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC = (
    "alternatives", "ca-certificates", "ca-certificates.conf", "crypto-policies", "pki", "ssl",
    "hosts", "host.conf", "resolv.conf", "nsswitch.conf", "gai.conf", "protocols", "services", "networks",
    "passwd", "group", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone",
    "mime.types", "magic", "os-release", "lsb-release", "debian_version", "bash.bashrc", "inputrc",
    "profile", "gitconfig", "pip.conf", "matplotlibrc", "fonts", "python3", "python3.11", "python3.12",
)  # fmt: skip
"""The parts of /etc programs need (libraries, DNS, TLS roots, users); the rest (shadow, keys, the
machine's own credentials and config) stays hidden."""
_LIMIT_FAILED = '{ echo "ml-intern: could not set the sandbox limits" >&2; exit 125; }'


def find_bwrap() -> str | None:
    """The bwrap executable on PATH, if installed."""
    return shutil.which("bwrap")


@dataclass
class Limits:
    """Bounds on what one command may use; None lifts a bound."""

    memory_mb: int | None = 8192
    processes: int | None = 512
    file_size_mb: int | None = 10240

    def script(self) -> str:
        """A bash script that sets the limits (soft and hard: the command cannot raise them) and execs `$1`."""
        sets = [("v", self.memory_mb, 1024), ("u", self.processes, 1), ("f", self.file_size_mb, 1024)]
        steps = [f"ulimit -S -H -{flag} {n * scale}" for flag, n, scale in sets if n is not None]
        return (f"{' && '.join(steps)} || {_LIMIT_FAILED}; " if steps else "") + 'exec bash -c "$1"'


@dataclass
class BubblewrapSandbox:
    """Each command in a fresh bubblewrap sandbox: its own user, PID, IPC and UTS namespaces (and network when
    off), the workspace read-write, system folders read-only, a private /tmp, and nothing else of the host."""

    workdir: Path
    bwrap: str
    network: bool = True
    limits: Limits = field(default_factory=Limits)
    read_only: Sequence[Path] = ()
    """Extra host folders shown read-only (a toolchain outside the system folders)."""
    cgroup: PidsCgroup | None = None
    """Where the process bound is enforced when the agent runs as root (RLIMIT_NPROC does not hold for root)."""
    hide: Sequence[Path] = ()
    """Host paths kept invisible even when they lie under a shown folder (a server's key file, its data)."""
    name: str = "bubblewrap"
    isolated: bool = True

    def describe(self) -> str:
        net = "network on" if self.network else "no network"
        return f"bubblewrap (only {self.workdir} is writable, {net})"

    def argv(self, command: str, cwd: Path, env: Mapping[str, str]) -> list[str]:
        """The bwrap command line that runs `command` in `cwd`."""
        uid, gid = os.getuid() or SANDBOX_UID, os.getgid() or SANDBOX_UID
        args = [self.bwrap, "--unshare-user", "--uid", str(uid), "--gid", str(gid), "--disable-userns"]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        args += [] if self.network else ["--unshare-net"]
        args += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
        args += _system_mounts()
        args += ["--proc", "/proc", "--dev", "/dev"]
        if self.limits.memory_mb is not None:
            args += ["--size", str(self.limits.memory_mb << 20)]
        args += ["--tmpfs", "/tmp", "--bind", str(self.workdir), str(self.workdir)]
        for path in self.read_only:
            args += ["--ro-bind", str(path), str(path)]
        args += _masks(self.hide, [Path("/") / n for n in _SYSTEM] + [Path("/etc") / n for n in _ETC], self.read_only)
        args += ["--remount-ro", "/", "--chdir", str(cwd), "--clearenv"]
        for key, value in sorted(_command_env(env).items()):
            args += ["--setenv", key, value]
        return [*args, "--", "bash", "-c", self.limits.script(), "ml-intern-sandbox", command]

    async def run(
        self, command: str, *, cwd: Path, env: Mapping[str, str], seconds: float, on_output: OnOutput
    ) -> CommandResult:
        argv = self.argv(command, cwd, env)
        if self.cgroup is None:
            return await run_process(argv, cwd=cwd, env=BWRAP_ENV, seconds=seconds, on_output=on_output)
        async with self.cgroup.child() as procs:
            join = 'echo $$ > "$0" && exec env -i "PATH=$PATH" "$@"'  # env -i: the shell added PWD
            argv = ["/bin/sh", "-c", join, str(procs), *argv]
            return await run_process(argv, cwd=cwd, env=BWRAP_ENV, seconds=seconds, on_output=on_output)

    def probe(self) -> str | None:
        """Run `true` in the sandbox; None when it works, else why not (bwrap's own message)."""
        argv = self.argv("true", self.workdir, {"PATH": BWRAP_ENV["PATH"]})
        try:
            done = subprocess.run(argv, env=BWRAP_ENV, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            return str(e)
        return None if done.returncode == 0 else (done.stderr.strip() or f"bwrap exited with {done.returncode}")


def _system_mounts() -> list[str]:
    args: list[str] = []
    for name in _SYSTEM:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in _ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def _masks(hide: Sequence[Path], system: Sequence[Path], shown: Sequence[Path]) -> list[str]:
    """Mount an empty folder (or /dev/null) over each hidden path that a shown folder would reveal."""
    args: list[str] = []
    for path in hide:
        real = path.resolve()
        if not real.exists() or not any(real.is_relative_to(p.resolve()) for p in [*system, *shown] if p.exists()):
            continue
        args += ["--tmpfs", str(real)] if real.is_dir() else ["--ro-bind", "/dev/null", str(real)]
    return args


def _command_env(env: Mapping[str, str]) -> dict[str, str]:
    """The command's environment: the scrubbed one, with home and temp folders pointing inside the sandbox."""
    out = {k: v for k, v in env.items() if not k.startswith("XDG_") and k not in ("PWD", "OLDPWD")}
    out.update(HOME="/tmp", TMPDIR="/tmp")
    return out


__all__ = ["INSTALL_HINT", "BubblewrapSandbox", "Limits", "find_bwrap"]
