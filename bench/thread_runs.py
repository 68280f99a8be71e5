"""Memory of thread runs: the server's RSS idle and with 1, 4 and 16 concurrent scripted runs, next to the CLI.

.venv/bin/python bench/thread_runs.py [--write-docs]

Each run is the headless benchmark's ~20 steps (plan, writes, reads, edits, searches, commands in bubblewrap) in
its own thread's checkout, then shipping: a commit, a push over smart HTTP and a draft PR on the fake GitHub.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.common import Result, bench_env  # noqa: E402
from bench.memory import headless_peak, headless_script  # noqa: E402
from bench.report import write_section  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- thread-bench:start -->", "<!-- thread-bench:end -->"
CONCURRENCY = (1, 4, 16)
REPO = "Codertocat/Hello-World"


def markdown_table(results: list[Result]) -> list[str]:
    """The rows (bench/report.py's table needs the loop benchmarks' imports; this one only the results)."""
    out = ["| Measurement | Value | Baseline (same run) | Notes |", "|---|--:|---|---|"]
    for r in results:
        base = f"{r.show(r.baseline)} ({r.baseline_name})" if r.baseline_name else "—"
        out.append(f"| {r.group[:2]} {r.name} | {r.show(r.value)} | {base} | {r.note} |")
    return out


@contextmanager
def process(argv: list[str], env: dict[str, str], cwd: Path) -> Iterator[tuple[str, int]]:
    """`argv --port P` until the block ends; yields its URL and pid once /healthz answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    log = cwd / f"{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*argv, "--port", str(port)], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield f"http://127.0.0.1:{port}", proc.pid
        finally:
            proc.terminate()
            proc.wait(30)


def rss_mib(pid: int) -> float:
    """Resident memory of one process (not its children), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Sampler:
    """Samples a process's RSS every 20 ms in a thread; `peak` is the largest seen, `active` the most runs at once
    (from /metrics)."""

    def __init__(self, pid: int, url: str) -> None:
        self.pid, self.url, self.peak, self.active = pid, url, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            with contextlib.suppress(httpx.HTTPError):
                metrics = httpx.get(f"{self.url}/metrics", timeout=5).json()
                self.active = max(self.active, int(metrics["active_runs_here"]))
            self._stop.wait(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def reply(body: dict[str, Any]) -> Any:
    """The headless script, step by step, for every run at once (the step is the number of replies so far)."""
    steps = headless_script()
    done = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    return steps[min(done, len(steps) - 1)]


def one_server(n: int, tmp: Path) -> tuple[float, float, int]:
    """(idle RSS, peak RSS during `n` runs, most runs seen at once) of a fresh `ml-intern serve`, in MiB."""
    from agent.llm.server import ScriptedServer
    from bot.webhooks import sign
    from tests.bot.conftest import bare_repo, comment_event, env_for
    from tests.bot.fake_github import FakeGitHub, new_key

    key, pem = new_key()
    secret = secrets.token_hex(16)
    folder = tmp / f"n{n}"
    folder.mkdir()
    with FakeGitHub(key.public_key()) as github, ScriptedServer(reply) as model:
        github.permissions[(REPO, "Codertocat")] = "admin"
        github.add_repo(REPO, bare_repo(folder / "remote", {"README.md": "# Hello\n"}))
        env = {**bench_env(folder), **env_for(github, pem, secret), "ML_INTERN_MAX_RUNS": str(n)}
        argv = [sys.executable, "-m", "agent", "serve", "--model", "scripted", "--base-url", model.base_url]
        with process(argv, env, folder) as (url, pid):
            time.sleep(2)
            idle = rss_mib(pid)
            with Sampler(pid, url) as sampler:
                for i in range(n):
                    body = comment_event("@ml-intern write four small modules", comment_id=50_000 + i, number=1 + i)
                    data = httpx.Request("POST", "/", json=body).read()
                    headers = {
                        "X-GitHub-Event": "issue_comment",
                        "X-GitHub-Delivery": f"bench-{n}-{i}",
                        "X-Hub-Signature-256": sign(secret.encode(), data),
                        "Content-Type": "application/json",
                    }
                    httpx.post(f"{url}/webhook", content=data, headers=headers, timeout=30).raise_for_status()
                github.wait_until(lambda: len(github.pulls.get(REPO, [])) == n, 600)
            return idle, sampler.peak, sampler.active


def measure(tmp: Path) -> list[Result]:
    group = "6. thread runs"
    steps = len(headless_script()) - 1
    cli, _ = headless_peak(tmp, 0)
    results = []
    for n in CONCURRENCY:
        idle, peak, active = one_server(n, tmp)
        if n == 1:
            results.append(Result(group, "server RSS, idle", idle, "MiB", None, "", None, "after start-up", digits=1))
        results.append(
            Result(
                group,
                f"server peak RSS, {n} concurrent run(s)",
                peak,
                "MiB",
                idle,
                "idle",
                None,
                f"at most {active} run(s) seen executing at once",
                digits=1,
            )
        )
        results.append(
            Result(
                group,
                f"marginal RSS per run, {n} concurrent",
                (peak - idle) / n,
                "MiB",
                cli,
                "CLI peak RSS, same work",
                None,
                f"{steps} steps each + commit, push, draft PR",
                digits=1,
            )
        )
    return results


def write_docs(results: list[Result], seconds: float) -> None:
    block = "\n".join(
        [
            START,
            "## Thread runs",
            "",
            "`.venv/bin/python bench/thread_runs.py --write-docs` regenerates this section. For each concurrency a "
            "fresh `ml-intern serve` (SQLite) runs against the fake GitHub (git over smart HTTP) and a scripted "
            "model; each run does the headless benchmark's work in its own thread checkout, its commands in "
            "bubblewrap, then commits, pushes and opens a draft PR. RSS is the server process's own (sampled every "
            "20 ms from /proc; the sandboxed commands and git are separate processes and not counted). The CLI row "
            "is the peak RSS of `ml-intern` headless doing the same steps in one process.",
            "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({seconds:.0f} s)",
            "",
            *markdown_table(results),
            END,
        ]
    )
    write_section(DOC, START, END, block)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/thread_runs.py", description=__doc__)
    parser.add_argument("--write-docs", action="store_true", help=f"write the section in {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ml-intern-bench-thread-") as folder:
        results = measure(Path(folder))
    for line in markdown_table(results):
        sys.stdout.write(line + "\n")
    if args.write_docs:
        write_docs(results, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
