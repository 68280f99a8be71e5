"""Paths that make code run later are recognised; ordinary project files are not."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

import pytest

import agent
from agent.redact import scrub_env
from agent.tools.base import Effect, ToolContext
from agent.tools.files import edit, write
from agent.tools.protect import protected_reason


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path.resolve()


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (".git/config", "git runs commands named there"),
        (".GIT/config", "git runs commands named there"),
        (".git/hooks/pre-commit", "git runs hooks"),
        (".git/info/attributes", "git reads it"),
        ("vendor/lib/.git/config", "git runs commands"),
        (".git", "where the repository and its config are"),
        ("sub/.git", "where the repository"),
        (".venv/lib/python3.11/site-packages/x.py", "Python environment"),
        ("env/lib/python3.11/site-packages/evil.pth", ".pth files"),
        ("anything.pth", ".pth files"),
        ("tools/pyvenv.cfg", "Python environment"),
        (".github/ml-intern.yml", "ML Intern's config"),
        ("ml-intern.yaml", "ML Intern's config"),
    ],
)
def test_paths_that_make_code_run_later_are_named_with_what_runs_them(ws: Path, path: str, words: str) -> None:
    why = protected_reason(ws, ws / path)
    assert why is not None
    assert why.startswith(f"writes {path}: ")
    assert words in why


@pytest.mark.parametrize(
    "path",
    [
        "train.py",
        "src/model/.gitkeep",
        ".gitignore",
        ".gitattributes",
        ".github/workflows/ci.yml",
        "git/config",
        "configs/default.yaml",
        "agent/loop.py",  # someone else's project with an `agent` package
        "venv.md",
        "checkpoints/model.pt",
    ],
)
def test_ordinary_project_files_are_not_protected(ws: Path, path: str) -> None:
    assert protected_reason(ws, ws / path) is None


def test_any_folder_of_a_virtual_environment_is_protected_whatever_its_name(ws: Path) -> None:
    env = ws / "my-env"
    (env / "bin").mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert "Python environment" in str(protected_reason(ws, env / "bin" / "python-wrapper"))
    assert protected_reason(ws, ws / "my-env-notes.txt") is None


def test_ml_interns_own_code_config_sessions_and_interpreter_are_protected(
    ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = Path(agent.__file__).resolve().parent
    assert "ML Intern's own code" in str(protected_reason(ws, own / "approvals.py"))
    assert "ML Intern's own code" in str(protected_reason(ws, own.parent / "bot" / "__init__.py"))
    config = tmp_path / "cfg" / "config.yaml"
    monkeypatch.setenv("ML_INTERN_CONFIG", str(config))
    assert "ML Intern's config" in str(protected_reason(ws, config.resolve()))
    monkeypatch.setenv("ML_INTERN_HOME", str(ws / "home"))
    assert "session store" in str(protected_reason(ws, ws / "home" / "sessions" / "x" / "trace.jsonl"))
    purelib = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert protected_reason(ws, purelib / "sitecustomize.py") is not None
    assert protected_reason(ws, Path(sys.prefix).resolve() / "bin" / "tool") is not None


def test_a_prefix_that_holds_the_workspace_does_not_protect_the_whole_workspace(tmp_path: Path) -> None:
    inside_prefix = Path(sys.prefix).resolve() / "ws-for-a-test"  # never created: only paths are compared
    assert protected_reason(inside_prefix, inside_prefix / "train.py") is None


def ctx_for(ws: Path, tmp_path: Path) -> ToolContext:
    (tmp_path / "session").mkdir(exist_ok=True)
    return ToolContext(workdir=ws, session_dir=tmp_path / "session", env=scrub_env(os.environ))


@pytest.mark.parametrize("tool", [write, edit])
def test_write_and_edit_add_the_protected_effect_from_their_path(ws: Path, tmp_path: Path, tool) -> None:  # type: ignore[no-untyped-def]
    ctx = ctx_for(ws, tmp_path)
    effects, why = tool.effects_of(ctx, {"path": ".git/config", "content": "x", "old": "a", "new": "b"})
    assert effects == {Effect.WRITE, Effect.PROTECTED}
    assert why == ["writes .git/config: git runs commands named there (core.fsmonitor, core.pager, aliases, filters)"]
    assert tool.effects_of(ctx, {"path": "notes.md", "content": "x"}) == (frozenset({Effect.WRITE}), [])
    assert tool.effects_of(ctx, {"path": "../outside", "content": "x"}) == (frozenset({Effect.WRITE}), [])


def test_a_symlink_into_git_is_judged_by_where_it_leads(ws: Path, tmp_path: Path) -> None:
    (ws / ".git").mkdir()
    (ws / "innocent").symlink_to(ws / ".git")
    effects, why = write.effects_of(ctx_for(ws, tmp_path), {"path": "innocent/config", "content": "x"})
    assert Effect.PROTECTED in effects
    assert why[0].startswith("writes .git/config")


def test_a_workspace_kept_in_the_data_folder_is_an_ordinary_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = (tmp_path / "home").resolve()
    monkeypatch.setenv("ML_INTERN_HOME", str(home))
    work = home / "bot" / "threads" / "o" / "r" / "1" / "work"
    assert protected_reason(work, work / "src" / "mod.py") is None
    assert "session store" in str(protected_reason(work, home / "sessions" / "x" / "trace.jsonl"))
    assert "session store" in str(protected_reason(home, home / "notes.txt"))
    in_sessions = home / "sessions" / "x"
    assert "session store" in str(protected_reason(in_sessions, in_sessions / "trace.jsonl"))
