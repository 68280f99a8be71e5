import os
from pathlib import Path
from typing import Any

import pytest

from agent.redact import scrub_env
from agent.tools.base import ToolContext
from agent.tools.search import MAX_FILE_BYTES, glob_regex, search


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    (tmp_path / "ws").mkdir()
    (tmp_path / "session").mkdir()
    return ToolContext(workdir=tmp_path / "ws", session_dir=tmp_path / "session", env=scrub_env(os.environ))


def tree(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


async def run(ctx: ToolContext, **args: Any) -> tuple[str, bool]:
    result = await search.run(ctx, args)
    return result.output, result.is_error


@pytest.fixture
def project(ctx: ToolContext) -> Path:
    tree(
        ctx.workdir,
        {
            "train.py": "import torch\nlr = 3e-4\nmodel = Model()\n",
            "src/data/load.py": "def load():\n    return Model.from_pretrained('x')\n",
            "src/README.md": "# Model card\n",
            "configs/a.yaml": "model: distilbert\n",
            ".git/config": "model = git\n",
            ".venv/lib/site.py": "Model = 1\n",
            "node_modules/x/index.js": "Model\n",
            "src/__pycache__/load.cpython-311.pyc": "Model\n",
            "weights.bin": b"Model\x00\x01\x02",
        },
    )
    return ctx.workdir


async def test_pattern_lists_matching_lines_with_path_and_number(ctx: ToolContext, project: Path) -> None:
    out, err = await run(ctx, pattern=r"Model\b")

    assert not err
    assert out.splitlines() == [  # a folder's files come before its subfolders
        "train.py:3: model = Model()",
        "src/README.md:1: # Model card",
        "src/data/load.py:2: return Model.from_pretrained('x')",
    ]


async def test_case_insensitive(ctx: ToolContext, project: Path) -> None:
    out, _ = await run(ctx, pattern="^model", case_sensitive=False)

    assert out.splitlines() == ["train.py:3: model = Model()", "configs/a.yaml:1: model: distilbert"]


async def test_glob_alone_lists_files(ctx: ToolContext, project: Path) -> None:
    out, _ = await run(ctx, glob="*.py")

    assert out.splitlines() == ["train.py", "src/data/load.py"]


@pytest.mark.parametrize(
    ("glob", "expected"),
    [
        ("src/**/*.py", ["src/data/load.py"]),
        ("*.{md,yaml}", ["configs/a.yaml", "src/README.md"]),
        ("configs/?.yaml", ["configs/a.yaml"]),
    ],
)
async def test_glob_forms(ctx: ToolContext, project: Path, glob: str, expected: list[str]) -> None:
    out, _ = await run(ctx, glob=glob)

    assert out.splitlines() == expected


async def test_glob_and_pattern_together_and_a_sub_path(ctx: ToolContext, project: Path) -> None:
    out, _ = await run(ctx, pattern="Model", glob="*.py", path="src")

    assert out.splitlines() == ["src/data/load.py:2: return Model.from_pretrained('x')"]


async def test_path_may_be_a_single_file(ctx: ToolContext, project: Path) -> None:
    out, _ = await run(ctx, pattern="lr", path="train.py")

    assert out == "train.py:2: lr = 3e-4"


async def test_results_are_bounded_with_a_note(ctx: ToolContext) -> None:
    tree(ctx.workdir, {"many.txt": "".join(f"hit {i}\n" for i in range(250))})

    out, _ = await run(ctx, pattern="hit", max_results=10)

    lines = out.splitlines()
    assert lines[:10] == [f"many.txt:{i + 1}: hit {i}" for i in range(10)]
    assert lines[10] == "… 240 more not shown; narrow the pattern, glob or path"


async def test_files_over_the_size_limit_are_skipped_and_counted(ctx: ToolContext) -> None:
    tree(ctx.workdir, {"huge.log": "needle\n" + "x" * MAX_FILE_BYTES, "small.txt": "needle\n"})

    out, _ = await run(ctx, pattern="needle")

    assert out.splitlines() == ["small.txt:1: needle", "(skipped 1 files over 2 MB; use bash for those)"]


async def test_no_matches_is_not_an_error(ctx: ToolContext, project: Path) -> None:
    assert await run(ctx, pattern="nothing-like-this") == ("No lines matching 'nothing-like-this' in ..", False)
    assert await run(ctx, glob="*.rs") == ("No files matching '*.rs' in ..", False)


async def test_invalid_regex_is_a_tool_error_with_the_reason(ctx: ToolContext, project: Path) -> None:
    out, err = await run(ctx, pattern="fit(")

    assert err
    assert out.startswith("invalid regex 'fit(': missing ) at position 4")


async def test_invalid_glob_is_a_tool_error(ctx: ToolContext, project: Path) -> None:
    out, err = await run(ctx, glob="[z-a].py")

    assert err and out.startswith("invalid glob '[z-a].py': bad character range")


async def test_needs_a_pattern_or_a_glob(ctx: ToolContext) -> None:
    out, err = await run(ctx)

    assert err and "give a pattern" in out


async def test_symlinks_leaving_the_workspace_are_not_followed(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("needle outside\n")
    (ctx.workdir / "link.txt").symlink_to(tmp_path / "outside.txt")
    (ctx.workdir / "inside.txt").write_text("needle inside\n")

    out, _ = await run(ctx, pattern="needle")

    assert out == "inside.txt:1: needle inside"


async def test_spilled_outputs_in_the_session_folder_are_searchable(ctx: ToolContext) -> None:
    tree(ctx.session_dir, {"spills/call-7.txt": "epoch 1 loss 0.5\nepoch 2 loss 0.3\n"})

    out, err = await run(ctx, pattern="loss 0.3", path=str(ctx.session_dir / "spills"))

    assert not err
    assert out == f"{ctx.session_dir.resolve()}/spills/call-7.txt:2: epoch 2 loss 0.3"


def test_glob_regex() -> None:
    assert glob_regex("**/*.py").fullmatch("a.py")
    assert glob_regex("**/*.py").fullmatch("a/b/c.py")
    assert not glob_regex("*.py").fullmatch("a/b.py")
    assert glob_regex("[!a]b").fullmatch("cb") and not glob_regex("[!a]b").fullmatch("ab")
    assert glob_regex("./x.txt").fullmatch("x.txt")


async def test_fifos_are_skipped_and_long_matches_cut_between_words(ctx: ToolContext) -> None:
    os.mkfifo(ctx.workdir / "pipe")
    (ctx.workdir / "pipe.txt").symlink_to("pipe")
    (ctx.workdir / "a.txt").write_text("needle " + "x " * 200 + "hf_" + "Ab1" * 12 + "\n")

    out, err = await run(ctx, pattern="needle")

    assert not err and out.startswith("a.txt:1: needle x") and "hf_" not in out and "Ab1" not in out


async def test_a_catastrophic_pattern_is_stopped_without_freezing_the_loop(tmp_path, monkeypatch) -> None:
    import asyncio
    import importlib

    search_module = importlib.import_module("agent.tools.search")  # the package re-exports the tool by this name

    monkeypatch.setattr(search_module, "SEARCH_SECONDS", 0.5)
    ws, session = tmp_path / "ws", tmp_path / "session"
    ws.mkdir()
    session.mkdir()
    (ws / "evil.txt").write_text("a" * 60 + "b\n")
    ctx = ToolContext(workdir=ws, session_dir=session, env={})
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    result = await search.run(ctx, {"pattern": "(a|aa)+$"})
    beat.cancel()
    assert result.is_error and "backtracks too much" in result.output
    assert ticks > 5  # the event loop kept running while the pattern was matched
