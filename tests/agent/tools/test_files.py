import json
import os
from pathlib import Path
from typing import Any

import pytest

from agent.redact import scrub_env
from agent.tools import files
from agent.tools.base import Effect, ToolContext
from agent.tools.files import LINE_CHARS, atomic_write, edit, read, write
from agent.tools.paths import open_inside, resolve_path
from agent.tools.workspace import FAMILY


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    (tmp_path / "ws").mkdir()
    (tmp_path / "session").mkdir()
    return ToolContext(workdir=tmp_path / "ws", session_dir=tmp_path / "session", env=scrub_env(os.environ))


async def run(ctx: ToolContext, name: str, **args: Any) -> tuple[str, bool]:
    found = FAMILY.tool(name)
    assert found is not None
    result = await found.run(ctx, args)
    return result.output, result.is_error


# ---- read -------------------------------------------------------------------------------------


async def test_read_numbers_lines_and_says_how_many_there_are(ctx: ToolContext) -> None:
    (ctx.workdir / "a.txt").write_text("alpha\nbeta\ngamma\n")

    out, err = await run(ctx, "read", path="a.txt")

    assert not err
    assert out == "     1\talpha\n     2\tbeta\n     3\tgamma\n(a.txt: lines 1-3 of 3)"


async def test_read_a_range_and_how_to_continue(ctx: ToolContext) -> None:
    (ctx.workdir / "big.txt").write_text("".join(f"line {i}\n" for i in range(1, 101)))

    out, _ = await run(ctx, "read", path="big.txt", offset=10, limit=3)

    assert out.splitlines() == [
        "    10\tline 10",
        "    11\tline 11",
        "    12\tline 12",
        "(big.txt: lines 10-12 of 100; read more with offset=13)",
    ]


async def test_read_counts_a_last_line_without_newline(ctx: ToolContext) -> None:
    (ctx.workdir / "a.txt").write_text("one\ntwo")

    out, _ = await run(ctx, "read", path="a.txt", limit=1)

    assert out.endswith("(a.txt: lines 1-1 of 2; read more with offset=2)")


async def test_read_past_the_end_and_bad_range_are_errors(ctx: ToolContext) -> None:
    (ctx.workdir / "a.txt").write_text("one\ntwo\n")

    out, err = await run(ctx, "read", path="a.txt", offset=5)
    assert err and "offset 5 is past the end of a.txt, which has 2 lines" in out

    out, err = await run(ctx, "read", path="a.txt", offset=0)
    assert err and "at least 1" in out


async def test_read_cuts_long_lines(ctx: ToolContext) -> None:
    (ctx.workdir / "wide.txt").write_text("x" * 50_000 + "\nshort\n")

    out, _ = await run(ctx, "read", path="wide.txt")

    first, second = out.splitlines()[:2]
    # the cut drops the token-like run at its end: a piece of a token would escape redaction
    assert first == "     1\t" + "x" * (LINE_CHARS - 256) + "… [line cut: 50,001 bytes]"
    assert second == "     2\tshort"


async def test_read_refuses_binary_files(ctx: ToolContext) -> None:
    (ctx.workdir / "model.bin").write_bytes(b"\x00\x01\x02" * 100)

    out, err = await run(ctx, "read", path="model.bin")

    assert err and "looks binary (300 bytes)" in out


async def test_read_empty_missing_and_folder(ctx: ToolContext) -> None:
    (ctx.workdir / "empty.txt").write_text("")
    (ctx.workdir / "dir").mkdir()

    assert await run(ctx, "read", path="empty.txt") == ("(empty.txt is empty)", False)
    out, err = await run(ctx, "read", path="nope.txt")
    assert err and "does not exist" in out
    out, err = await run(ctx, "read", path="dir")
    assert err and "is a folder" in out


async def test_read_reaches_spilled_outputs_in_the_session_folder(ctx: ToolContext) -> None:
    spill = ctx.session_dir / "outputs" / "call-1.txt"
    spill.parent.mkdir()
    spill.write_text("long output\n")

    out, err = await run(ctx, "read", path=str(spill))

    assert not err and "long output" in out


# ---- confinement ------------------------------------------------------------------------------


def escapes(ctx: ToolContext) -> dict[str, str]:
    outside = ctx.workdir.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.txt").write_text("top secret\n")
    (ctx.workdir / "link.txt").symlink_to(outside / "secret.txt")
    (ctx.workdir / "linkdir").symlink_to(outside)
    return {
        "dotdot": "../outside/secret.txt",
        "absolute": str(outside / "secret.txt"),
        "symlink": "link.txt",
        "symlinked folder": "linkdir/secret.txt",
    }


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "symlinked folder"])
@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("read", {}),
        ("write", {"content": "pwned\n"}),
        ("edit", {"old": "top secret", "new": "pwned"}),
        ("search", {"pattern": "secret"}),
    ],
)
async def test_paths_outside_the_workspace_are_refused(
    ctx: ToolContext, kind: str, tool: str, args: dict[str, Any]
) -> None:
    path = escapes(ctx)[kind]

    out, err = await run(ctx, tool, path=path, **args)

    assert err
    assert f"is outside the workspace; use a path inside {ctx.workdir.resolve()}" in out
    assert (ctx.workdir.parent / "outside" / "secret.txt").read_text() == "top secret\n"


async def test_write_tools_cannot_reach_the_session_folder(ctx: ToolContext) -> None:
    out, err = await run(ctx, "write", path=str(ctx.session_dir / "x.txt"), content="x")

    assert err and "session folder, which is read-only" in out
    assert not (ctx.session_dir / "x.txt").exists()


async def test_symlinks_inside_the_workspace_are_fine(ctx: ToolContext) -> None:
    (ctx.workdir / "real.txt").write_text("hello\n")
    (ctx.workdir / "alias.txt").symlink_to("real.txt")

    out, err = await run(ctx, "read", path="alias.txt")

    assert not err and "hello" in out


# ---- write ------------------------------------------------------------------------------------


async def test_a_lone_surrogate_in_written_text_is_an_error_the_model_reads(ctx: ToolContext) -> None:
    (ctx.workdir / "a.txt").write_text("old\n")

    wrote = await run(ctx, "write", path="b.txt", content="x\udcff")
    edited = await run(ctx, "edit", path="a.txt", old="old", new="n\udcffew")

    assert wrote == ("content holds \\udcff at 1, which is not text (a lone surrogate); resend it", True)
    assert edited[1] and "\\udcff" in edited[0]
    assert not (ctx.workdir / "b.txt").exists()
    assert (ctx.workdir / "a.txt").read_text() == "old\n"


async def test_write_creates_parents_and_reports_size(ctx: ToolContext) -> None:
    out, err = await run(ctx, "write", path="src/pkg/mod.py", content="a = 1\nb = 2\n")

    assert (err, out) == (False, "Created src/pkg/mod.py: 12 bytes, 2 lines")
    assert (ctx.workdir / "src/pkg/mod.py").read_text() == "a = 1\nb = 2\n"


async def test_write_replaces_atomically_and_keeps_the_mode(ctx: ToolContext) -> None:
    script = ctx.workdir / "run.sh"
    script.write_text("old\n")
    script.chmod(0o755)

    out, _ = await run(ctx, "write", path="run.sh", content="#!/bin/sh\necho new")

    assert out == "Replaced run.sh: 18 bytes, 2 lines"
    assert script.read_text() == "#!/bin/sh\necho new"
    assert script.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in ctx.workdir.iterdir()) == ["run.sh"]  # no temporary file left


async def test_write_through_a_symlink_updates_its_target(ctx: ToolContext) -> None:
    (ctx.workdir / "real.txt").write_text("old")
    (ctx.workdir / "alias.txt").symlink_to("real.txt")

    await run(ctx, "write", path="alias.txt", content="new")

    assert (ctx.workdir / "alias.txt").is_symlink()
    assert (ctx.workdir / "real.txt").read_text() == "new"


async def test_write_refuses_a_folder(ctx: ToolContext) -> None:
    (ctx.workdir / "dir").mkdir()

    out, err = await run(ctx, "write", path="dir", content="x")

    assert err and "is a folder" in out


# ---- edit -------------------------------------------------------------------------------------


async def test_edit_replaces_a_unique_match_and_shows_the_result(ctx: ToolContext) -> None:
    (ctx.workdir / "m.py").write_text("def f():\n    return 1\n\n\ndef g():\n    return 2\n")

    out, err = await run(ctx, "edit", path="m.py", old="    return 2", new="    return 3")

    assert not err
    assert out.startswith("Edited m.py: 1 replacement(s).\n")
    assert "     6\t    return 3" in out
    assert (ctx.workdir / "m.py").read_text() == "def f():\n    return 1\n\n\ndef g():\n    return 3\n"


async def test_edit_ambiguous_match_says_how_many_and_what_to_do(ctx: ToolContext) -> None:
    (ctx.workdir / "m.py").write_text("x = 1\ny = 1\nz = 1\n")

    out, err = await run(ctx, "edit", path="m.py", old="= 1", new="= 2")

    assert err
    assert "occurs 3 times in m.py" in out
    assert "replace_all" in out and "surrounding lines" in out
    assert (ctx.workdir / "m.py").read_text() == "x = 1\ny = 1\nz = 1\n"


async def test_edit_replace_all(ctx: ToolContext) -> None:
    (ctx.workdir / "m.py").write_text("x = 1\ny = 1\n")

    out, err = await run(ctx, "edit", path="m.py", old="= 1", new="= 2", replace_all=True)

    assert not err and "2 replacement(s)" in out
    assert (ctx.workdir / "m.py").read_text() == "x = 2\ny = 2\n"


async def test_edit_no_match_shows_the_nearest_lines(ctx: ToolContext) -> None:
    lines = [f"value_{i} = {i}" for i in range(30)]
    lines[20] = "learning_rate = 3e-4  # tuned"
    (ctx.workdir / "cfg.py").write_text("\n".join(lines) + "\n")

    out, err = await run(ctx, "edit", path="cfg.py", old="learning_rate = 3e-5  # tuned", new="x")

    assert err
    assert out.startswith("old text not found in cfg.py. Closest lines:\n")
    assert "    21\tlearning_rate = 3e-4  # tuned" in out


async def test_edit_no_match_points_at_whitespace(ctx: ToolContext) -> None:
    (ctx.workdir / "m.py").write_text("if x:\n\treturn 1\n")

    out, err = await run(ctx, "edit", path="m.py", old="if x:\n    return 1", new="pass")

    assert err and "matches if whitespace is ignored" in out


async def test_edit_no_similar_lines(ctx: ToolContext) -> None:
    (ctx.workdir / "m.py").write_text("a = 1\n")

    out, err = await run(ctx, "edit", path="m.py", old="completely different", new="x")

    assert err and "No similar lines" in out


async def test_edit_keeps_crlf_line_endings(ctx: ToolContext) -> None:
    (ctx.workdir / "w.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")

    _, err = await run(ctx, "edit", path="w.txt", old="one\ntwo", new="1\n2")

    assert not err
    assert (ctx.workdir / "w.txt").read_bytes() == b"1\r\n2\r\nthree\r\n"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [("", "x", "old must not be empty"), ("same", "same", "identical")],
)
async def test_edit_rejects_pointless_edits(ctx: ToolContext, old: str, new: str, message: str) -> None:
    (ctx.workdir / "m.py").write_text("same\n")

    out, err = await run(ctx, "edit", path="m.py", old=old, new=new)

    assert err and message in out


async def test_edit_missing_arguments_fail_validation(ctx: ToolContext) -> None:
    out, err = await run(ctx, "edit", path="m.py", old="x")

    assert err and "new: Field required" in out


async def test_edit_refuses_non_utf8(ctx: ToolContext) -> None:
    (ctx.workdir / "latin.txt").write_bytes("café".encode("latin-1"))

    out, err = await run(ctx, "edit", path="latin.txt", old="caf", new="tea")

    assert err and "not UTF-8" in out


def test_effects_and_summaries() -> None:
    assert read.effects == {Effect.READ}
    assert write.effects == edit.effects == {Effect.WRITE}
    assert write.describe_call({"path": "a.py", "content": "x" * 10_000}) == "write a.py"
    assert edit.describe_call({"path": "a.py", "old": "x", "new": "y"}) == "edit a.py"


def test_tool_specs_stay_lean() -> None:
    assert len(json.dumps([t.spec() for t in FAMILY.tools])) < 4000


# ---- hostile paths and files -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["read", "edit"])
async def test_fifos_are_refused_without_blocking(ctx: ToolContext, name: str) -> None:
    os.mkfifo(ctx.workdir / "pipe")
    args = {"old": "a", "new": "b"} if name == "edit" else {}

    out, err = await run(ctx, name, path="pipe", **args)

    assert err and "not a regular file" in out


async def test_the_session_folder_is_read_only_even_inside_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    session = ws / ".data" / "sessions" / "s1"
    session.mkdir(parents=True)
    (session / "trace.jsonl").write_text("{}\n")
    ctx = ToolContext(workdir=ws, session_dir=session, env={})

    out, err = await run(ctx, "write", path=".data/sessions/s1/trace.jsonl", content="forged")
    out2, err2 = await run(ctx, "edit", path=".data/sessions/s1/trace.jsonl", old="{}", new="[]")

    assert err and err2 and "read-only" in out and "read-only" in out2
    assert (session / "trace.jsonl").read_text() == "{}\n"


@pytest.mark.parametrize("name", ["read", "write"])
async def test_names_too_long_are_tool_errors(ctx: ToolContext, name: str) -> None:
    out, err = await run(ctx, name, path="a" * 5000, **({"content": "x"} if name == "write" else {}))

    assert err and "too long" in out


def test_a_folder_swapped_for_a_symlink_after_the_check_is_not_followed(ctx: ToolContext, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("secret\n")
    (ctx.workdir / "d").mkdir()
    (ctx.workdir / "d" / "f.txt").write_text("fine\n")
    target = resolve_path(ctx, "d/f.txt", write=True)
    (ctx.workdir / "d" / "f.txt").unlink()
    (ctx.workdir / "d").rmdir()
    (ctx.workdir / "d").symlink_to(outside)  # the race: swapped between resolve_path and use

    with pytest.raises(OSError):
        open_inside(ctx, target)
    with pytest.raises(OSError):
        atomic_write(target, b"pwned\n", ctx.workdir.resolve())
    assert (outside / "f.txt").read_text() == "secret\n"


async def test_a_symlink_bash_made_to_leave_the_workspace_is_refused(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "private.txt").write_text("private\n")
    await run(ctx, "bash", command=f"ln -s {tmp_path} up && ln -s {tmp_path / 'private.txt'} p.txt")

    for path in ("up/private.txt", "p.txt"):
        out, err = await run(ctx, "read", path=path)
        assert err and "outside the workspace" in out
    out, err = await run(ctx, "write", path="up/new.txt", content="x")
    assert err and not (tmp_path / "new.txt").exists()


async def test_huge_files_are_not_counted_to_the_end(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "COUNT_BYTES", 1000)
    (ctx.workdir / "big.log").write_text("".join(f"line {i}\n" for i in range(100_000)))

    out, err = await run(ctx, "read", path="big.log", limit=2)

    assert not err
    assert out.endswith("(big.log: lines 1-2 of a 1,088,890-byte file; read more with offset=3)")


async def test_edit_refuses_huge_files(ctx: ToolContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "MAX_EDIT_BYTES", 100)
    (ctx.workdir / "big.txt").write_text("a\n" * 100)

    out, err = await run(ctx, "edit", path="big.txt", old="a", new="b", replace_all=True)

    assert err and "too big to edit" in out and "sed" in out


async def test_a_cut_line_does_not_show_a_piece_of_a_token(ctx: ToolContext) -> None:
    token = "hf_" + "Ab1" * 12
    (ctx.workdir / "wide.txt").write_text("x " * (LINE_CHARS // 2 - 10) + token + "\n")

    out, _ = await run(ctx, "read", path="wide.txt")

    assert "hf_" not in out and "Ab1" not in out
