"""End to end through the real loop: secrets stay out of the model, events, trace and spills; the workspace holds."""

from __future__ import annotations

import json
import secrets
import string

from agent.events import EventType
from agent.llm.scripted import call, say


def fake(prefix: str, n: int = 36) -> str:
    return prefix + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def everything_written(h) -> str:  # type: ignore[no-untyped-def]
    """The model's inputs, every event, the trace and the spill files, as one text."""
    parts = [json.dumps([m.to_dict() for m in req], default=str) for req in h.model.requests]
    parts += [json.dumps(e.to_dict(), default=str) for e in h.events]
    parts.append((h.session.dir / "trace.jsonl").read_text())
    parts += [p.read_text() for p in h.session.spill_dir.glob("*.txt")] if h.session.spill_dir.exists() else []
    return "\n".join(parts)


async def test_secrets_from_env_files_and_tools_reach_nothing(start_agent, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    hf, custom = fake("hf_"), fake("", 30)
    monkeypatch.setenv("HF_TOKEN", hf)
    monkeypatch.setenv("MY_SERVICE_KEY", custom)
    unknown = fake("ghp_")  # in no variable: caught by its shape
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "creds.txt").write_text(f"HF={hf}\nother={custom}\n")
    h = await start_agent(
        [
            call("read", path="creds.txt"),
            call(
                "bash",
                command=(
                    f"printf 'gh {unknown}\\n'; echo token=$HF_TOKEN key=$MY_SERVICE_KEY; "
                    "env | grep -c -e ^HF_TOKEN= -e ^MY_SERVICE_KEY=; "
                    f"python3 -c \"print('x' * 40000 + ' {hf[:10]}' + '{hf[10:]}')\""
                ),
            ),
            say("done"),
        ],
        overrides=["context.tool_output_chars=2000"],
    )
    done = await h.turn("look around")

    assert done.data["stop_reason"] == "done"
    bash_out = next(e for e in h.of(EventType.TOOL_OUTPUT) if e.data["name"] == "bash").data
    assert "token= key=\n0\n" in bash_out["output"]  # neither variable reached bash's environment
    assert bash_out["truncated"]  # the long line went to a spill file
    written = everything_written(h)
    for secret in (hf, custom, unknown):
        assert secret not in written
    assert "[REDACTED]" in written


async def test_a_symlink_made_by_bash_cannot_take_write_or_read_outside(start_agent, tmp_path):  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("private data\n")
    h = await start_agent(
        [
            call("bash", command=f"ln -s {outside} link"),
            call("read", path="link/private.txt"),
            call("write", path="link/planted.txt", content="x"),
            say("ok"),
        ],
        yolo=True,
    )

    await h.turn("go")

    outputs = [e.data for e in h.of(EventType.TOOL_OUTPUT)]
    assert [o["is_error"] for o in outputs[1:]] == [True, True]
    assert "private data" not in everything_written(h)
    assert not (outside / "planted.txt").exists()
