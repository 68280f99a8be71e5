"""Cold start: `ml-intern --help` and `import agent` as fresh processes, next to a bare interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.common import VENV_BIN, Result, bench_env, interleaved, median

HEAVY = ("litellm", "mcp", "huggingface_hub", "openai", "httpx", "aiohttp")
"""Modules `ml-intern --help` must not load."""

_HELP_IMPORTS = """
import json, sys
sys.argv = ["ml-intern", "--help"]
from agent.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})), file=sys.stderr)
"""


def heavy_modules_after_help(env: dict[str, str], cwd: Path) -> list[str]:
    """Top-level heavy packages present in sys.modules after `ml-intern --help` ran in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _HELP_IMPORTS], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=True
    )
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    return [m for m in HEAVY if m in loaded]


def measure(repeats: int, tmp: Path) -> list[Result]:
    env, py = bench_env(tmp), sys.executable
    commands = {
        "help": [str(VENV_BIN / "ml-intern"), "--help"],
        "pass": [py, "-c", "pass"],
        "argparse": [py, "-c", "import argparse"],
        "agent": [py, "-c", "import agent"],
        "loop": [py, "-c", "import agent.loop"],
    }
    t = {name: median(v) for name, v in interleaved(commands, repeats, env, tmp).items()}
    heavy = heavy_modules_after_help(env, tmp)
    group = "1. cold start"
    return [
        Result(group, "ml-intern --help", t["help"], "s", t["pass"], "python -c pass", target=0.3, digits=3),
        Result(
            group,
            "ml-intern --help",
            t["help"],
            "s",
            t["argparse"],
            "python -c 'import argparse'",
            target=0.3,
            digits=3,
        ),
        Result(group, "import agent", t["agent"], "s", t["pass"], "python -c pass", digits=3),
        Result(group, "import agent.loop (core, no litellm)", t["loop"], "s", t["pass"], "python -c pass", digits=3),
        Result(
            group,
            "heavy packages loaded by --help",
            float(len(heavy)),
            "",
            0.0,
            "none allowed",
            target=1.0,
            digits=0,
            note=", ".join(heavy) or "none of " + ", ".join(HEAVY),
        ),
    ]
