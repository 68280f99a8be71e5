"""The thread runner end to end: the real server over HTTP, fake GitHub serving git, bubblewrap, a scripted model."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.llm import Model
from agent.llm.scripted import ScriptedModel, Turn, call, say
from agent.messages import Message
from bot.workspace import basic_auth
from tests.bot.conftest import MAINTAINER, REPO, Server, comment_event, git
from tests.bot.fake_github import SLUG, FakeGitHub, Fault

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (.ci/run installs it)"),
]


def runs(*scripts: Sequence[Turn]) -> Callable[[], Model]:
    """A model playing `scripts[i]` in the thread's i-th run: the step is the number of replies since the request."""

    def reply(messages: list[Message]) -> Turn:
        people = [i for i, m in enumerate(messages) if m.role == "user" and not m.meta.get("kind")]
        steps = sum(1 for m in messages[people[-1] :] if m.role == "assistant")
        script = scripts[min(len(people), len(scripts)) - 1]
        return script[steps] if steps < len(script) else say("Done.")

    return lambda: ScriptedModel(reply)


def branch_files(bare: Path, branch: str) -> list[str]:
    return git("--git-dir", str(bare), "ls-tree", "-r", "--name-only", branch).split()


def final_comment(github: FakeGitHub, number: int = 1) -> str:
    def done() -> str | None:
        bodies = [c["body"] for c in github.thread_comments(REPO, number) if "<!-- ml-intern:run:" in c["body"]]
        return bodies[-1] if bodies and re.match(r"(✅|❌|🚫|⚠️|🛑)", bodies[-1]) else None

    body: str = github.wait_until(done, 60)
    return body


def mention(srv: Server, text: str, comment_id: int = 555) -> None:
    assert srv.deliver("issue_comment", comment_event(f"@{SLUG} {text}", comment_id=comment_id)).status_code == 202


WORK = [
    call("write", path="eval.py", content="print('accuracy', 1.0)\n"),
    call("bash", command="python3 eval.py > result.txt && cat result.txt"),
    call("write", path=".github/workflows/ci.yml", content="on: push\n"),
    call("bash", command="echo '* @someone' > CODEOWNERS && truncate -s 60M big.bin"),
    say("Added eval.py and ran it: accuracy 1.0 (result.txt)."),
]


def test_a_mention_ships_a_draft_pr_without_protected_paths(
    github: FakeGitHub, serve: Callable[..., Server], tmp_path: Path
) -> None:
    srv = serve(runs(WORK))
    mention(srv, "add a baseline eval script")
    body = final_comment(github)
    assert body.startswith("✅"), body
    assert "accuracy 1.0" in body and "https://github.com/Codertocat/Hello-World/pull/" in body
    assert "- `.github/workflows/ci.yml`: workflows are never shipped (the App has no workflows permission)" in body
    assert "- `CODEOWNERS`: CODEOWNERS decides who reviews" in body
    assert "- `big.bin`: larger than 50 MiB" in body
    assert "Shipped 2 file(s) to branch ml-intern/1-add-a-baseline-eval-script (a new draft pull request)" in body
    [pull] = github.pulls[REPO]
    branch = pull["head"]["ref"]
    assert branch == "ml-intern/1-add-a-baseline-eval-script" and pull["title"] == "add a baseline eval script"
    assert pull["draft"] is True and pull["base"]["ref"] == "main" and "Closes #1." in pull["body"]
    bare = github.repos[REPO]
    assert sorted(branch_files(bare, branch)) == ["README.md", "eval.py", "result.txt"]
    assert git("--git-dir", str(bare), "show", f"{branch}:result.txt") == "accuracy 1.0\n"
    assert branch_files(bare, "main") == ["README.md"]
    message = git("--git-dir", str(bare), "log", "-1", "--format=%B%n%an", branch)
    assert f"Co-authored-by: {MAINTAINER} <{MAINTAINER}@users.noreply.github.com>" in message
    assert f"{SLUG}[bot]" in message
    assert github.reactions_on("issue_comment", 555) == ["eyes"]
    _no_token_on_disk(github, tmp_path)


def _no_token_on_disk(github: FakeGitHub, root: Path) -> None:
    secrets = [t for t in github.tokens] + [basic_auth(t).split()[-1] for t in github.tokens]
    assert secrets
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path


def test_no_changes_no_pr(github: FakeGitHub, serve: Callable[..., Server]) -> None:
    srv = serve(runs([say("Nothing needs to change: the README is fine.")]))
    mention(srv, "check the readme")
    body = final_comment(github)
    assert "no pull request was opened" in body and "README is fine" in body
    assert github.pulls.get(REPO, []) == []
    assert github.count("POST", r"/pulls$") == 0


def test_a_follow_up_continues_the_session_on_the_same_branch(github: FakeGitHub, serve: Callable[..., Server]) -> None:
    seen: list[list[Message]] = []
    second = [call("write", path="notes.md", content="more\n"), say("Added notes.")]
    factory = runs([WORK[0], say("Added eval.py.")], second)

    def recording() -> Model:
        model = factory()
        assert isinstance(model, ScriptedModel)
        seen.append(model.requests)
        return model

    srv = serve(recording)
    mention(srv, "add an eval script")
    assert "Added eval.py" in final_comment(github)
    mention(srv, "also add notes", comment_id=556)
    github.wait_until(lambda: "Added notes" in final_comment(github), 60)
    [pull] = github.pulls[REPO]
    assert sorted(branch_files(github.repos[REPO], pull["head"]["ref"])) == ["README.md", "eval.py", "notes.md"]
    history = "\n".join(m.content for m in seen[-1][-1])
    assert "add an eval script" in history and "also add notes" in history
    assert github.count("POST", r"/pulls$") == 1


def test_github_5xx_during_the_push_and_the_pr_creation_are_retried(
    github: FakeGitHub, serve: Callable[..., Server]
) -> None:
    github.faults.append(Fault("POST", r"/git-receive-pack$", 500))
    github.faults.append(Fault("POST", r"/repos/[^/]+/[^/]+/pulls$", 502, after=True))
    srv = serve(runs([WORK[0], say("Added eval.py.")]))
    mention(srv, "add an eval script")
    body = final_comment(github)
    assert body.startswith("✅"), body
    assert len(github.pulls[REPO]) == 1


def test_a_push_that_keeps_failing_fails_the_run_and_says_so(github: FakeGitHub, serve: Callable[..., Server]) -> None:
    github.faults.append(Fault("POST", r"/git-receive-pack$", 500, times=10))
    srv = serve(runs([WORK[0], say("Added eval.py.")]))
    mention(srv, "add an eval script")
    body = final_comment(github)
    assert body.startswith("❌ **Failed**") and "the push to" in body and "/retry" in body, body
    assert github.pulls.get(REPO, []) == []


def test_the_sandbox_hides_the_server(
    github: FakeGitHub,
    serve: Callable[..., Server],
    settings: Any,
    tmp_path: Path,
    app_key: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = tmp_path / "secrets" / "app.pem"
    key.parent.mkdir()
    key.write_text(app_key[1])
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", app_key[1].replace("\n", "\\n"))
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", settings.webhook_secret().decode())
    data = tmp_path / "data"
    db = tmp_path / "bot.sqlite3"
    seed = tmp_path / "planted"
    git("clone", "-q", str(github.repos[REPO]), str(seed))
    (seed / "leak").symlink_to("/proc/self/environ")
    (seed / "key").symlink_to(key)
    git("add", "-A", cwd=seed)
    git("-c", "user.name=x", "-c", "user.email=x@example.com", "commit", "-qm", "links", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)
    probe = (
        f"cat {key}; env; cat /proc/*/environ | tr '\\0' '\\n'; cat {db}; ls {data}; cat {Path.home()}/.netrc; "
        f"ls {Path.home()}/.cache/huggingface; cat key"
    )
    outputs: list[str] = []

    def reply(messages: list[Message]) -> Turn:
        steps = sum(1 for m in messages if m.role == "assistant")
        outputs.extend(m.content for m in messages[-1:] if m.role == "tool")
        script = [call("bash", command=probe), call("read", path="leak"), call("read", path="key"), say("Looked.")]
        return script[steps] if steps < len(script) else say("Done.")

    srv = serve(lambda: ScriptedModel(reply), settings=settings.model_copy(update={"github_app_private_key_path": key}))
    mention(srv, "look around")
    final_comment(github)
    assert len(outputs) == 3
    shell, leak, linked = outputs
    pem_body = app_key[1].splitlines()[1]
    for text in outputs:
        assert pem_body not in text and settings.webhook_secret().decode() not in text
        assert "PRIVATE KEY" not in text and "GITHUB_APP" not in text
    assert "No such file" in shell
    assert "outside" in leak.lower() or "refus" in leak.lower(), leak
    assert "outside" in linked.lower() or "refus" in linked.lower(), linked


def _processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_stop_interrupts_a_running_command(github: FakeGitHub, serve: Callable[..., Server], tmp_path: Path) -> None:
    marker = f"ml-intern-stop-{id(github)}"
    command = f"touch started && sleep 300 && echo {marker}"
    srv = serve(runs([call("bash", command=command, timeout=600), say("Slept.")]))
    mention(srv, "sleep a while")
    started = tmp_path / "data" / "threads" / REPO / "1" / "work" / "started"
    github.wait_until(lambda: started.exists() and _processes_with(marker), 60)
    assert srv.deliver("issue_comment", comment_event("/stop", comment_id=777)).status_code == 202
    body = final_comment(github)
    assert body.startswith("🚫 Cancelled with /stop."), body
    github.wait_until(lambda: not _processes_with(marker))
    assert github.pulls.get(REPO, []) == []


def test_a_mention_during_a_run_is_queued_and_continues_the_session(
    github: FakeGitHub, serve: Callable[..., Server]
) -> None:
    gate = threading.Event()
    seen: list[list[Message]] = []

    def reply(messages: list[Message]) -> Turn:
        gate.wait(60)
        seen.append(list(messages))
        people = [m for m in messages if m.role == "user" and not m.meta.get("kind")]
        return say(f"Answer {len(people)}.")

    srv = serve(lambda: ScriptedModel(reply))
    mention(srv, "first request")
    github.wait_until(lambda: any("Working" in c["body"] for c in github.thread_comments(REPO, 1)))
    mention(srv, "second request", comment_id=556)
    github.wait_until(lambda: any("Queued: run 1" in c["body"] for c in github.thread_comments(REPO, 1)))
    gate.set()
    github.wait_until(lambda: sum("Answer" in c["body"] for c in github.thread_comments(REPO, 1)) == 2, 60)
    bodies = [c["body"] for c in github.thread_comments(REPO, 1) if "<!-- ml-intern:run:" in c["body"]]
    assert "Answer 1." in bodies[0] and "Answer 2." in bodies[1]
    history = "\n".join(m.content for m in seen[-1])
    assert "first request" in history and "second request" in history


def test_the_daily_cap_stops_a_run_and_refuses_the_next(
    github: FakeGitHub, serve: Callable[..., Server], settings: Any
) -> None:
    def costly() -> Model:
        script = [call("write", path=f"f{i}.txt", content="x") for i in range(50)]
        return ScriptedModel(lambda m: script[sum(x.role == "assistant" for x in m) % 50], usd_per_1k_tokens=1.0)

    srv = serve(costly, settings=settings.model_copy(update={"ml_intern_daily_budget_usd": 0.5}))
    mention(srv, "write many files")
    body = final_comment(github)
    assert body.startswith("❌") and "hit its budget" in body and "$0.50 a day" in body, body
    mention(srv, "once more", comment_id=556)
    github.wait_until(lambda: "daily cap of $0.50 is used up" in final_comment(github), 60)
    assert github.pulls.get(REPO, []) == []


def test_a_bad_repository_config_is_reported_and_the_run_goes_on(
    github: FakeGitHub, serve: Callable[..., Server], tmp_path: Path
) -> None:
    seed = tmp_path / "seed-config"
    git("clone", "-q", str(github.repos[REPO]), str(seed))
    (seed / ".github").mkdir()
    (seed / ".github" / "ml-intern.yml").write_text("max_iterations: lots\n")
    git("add", "-A", cwd=seed)
    git("-c", "user.name=x", "-c", "user.email=x@example.com", "commit", "-qm", "config", cwd=seed)
    git("push", "-q", "origin", "main", cwd=seed)
    srv = serve(runs([WORK[0], say("Added eval.py.")]))
    mention(srv, "add an eval script")
    body = final_comment(github)
    assert body.startswith("✅") and ".github/ml-intern.yml is not valid: max\\_iterations" in body, body
    assert len(github.pulls[REPO]) == 1


def test_on_a_pr_thread_the_run_pushes_to_the_pr_branch(github: FakeGitHub, serve: Callable[..., Server]) -> None:
    github.add_pull(REPO, 1, "feature-1")
    srv = serve(runs([WORK[0], say("Added eval.py to the PR.")]))
    on_pr = comment_event(f"@{SLUG} add an eval script here")
    on_pr["issue"]["pull_request"] = {"url": "u", "html_url": "h", "diff_url": "d", "patch_url": "p", "merged_at": None}
    assert srv.deliver("issue_comment", on_pr).status_code == 202
    body = final_comment(github)
    assert body.startswith("✅") and "https://github.com/Codertocat/Hello-World/pull/1" in body, body
    assert sorted(branch_files(github.repos[REPO], "feature-1")) == ["README.md", "eval.py"]
    assert branch_files(github.repos[REPO], "main") == ["README.md"]
    assert len(github.pulls[REPO]) == 1 and github.count("POST", r"/pulls$") == 0


GATED = [
    call("write", path=".github/ml-intern.yml", content="max_iterations: 5\n"),
    call("write", path="eval.py", content="print(1)\n"),
    say("Done, after the approval."),
]


def _card(github: FakeGitHub) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        cards = [c for c in github.thread_comments(REPO, 1) if "Approval needed" in c["body"]]
        return cards[-1] if cards else None

    card: dict[str, Any] = github.wait_until(find, 60)
    return card


@pytest.mark.parametrize("answer", ["/approve", "👍"])
def test_a_protected_write_is_approved_from_the_thread(
    github: FakeGitHub, serve: Callable[..., Server], answer: str
) -> None:
    srv = serve(runs(GATED))
    mention(srv, "tune our ml-intern settings and add an eval script")
    card = _card(github)
    assert "ml-intern.yml" in card["body"] and "/approve" in card["body"]
    if answer == "/approve":
        assert srv.deliver("issue_comment", comment_event("/approve", comment_id=901)).status_code == 202
    else:
        github.react_as(card["id"], MAINTAINER, "+1")
    body = final_comment(github)
    assert body.startswith("✅ **Done**") and "after the approval" in body, body
    assert "- `.github/ml-intern.yml`: ML Intern's own configuration is never shipped" in body
    [pull] = github.pulls[REPO]
    assert sorted(branch_files(github.repos[REPO], pull["head"]["ref"])) == ["README.md", "eval.py"]


def test_a_denied_write_is_not_made_and_the_model_is_told_why(
    github: FakeGitHub, serve: Callable[..., Server], tmp_path: Path
) -> None:
    told: list[str] = []

    def reply(messages: list[Message]) -> Turn:
        steps = sum(1 for m in messages if m.role == "assistant")
        told.extend(m.content for m in messages[-1:] if m.role == "tool")
        return GATED[0] if steps == 0 else say("Understood, left the settings alone.")

    srv = serve(lambda: ScriptedModel(reply))
    mention(srv, "tune our ml-intern settings")
    _card(github)
    assert srv.deliver("issue_comment", comment_event("/deny not today", comment_id=902)).status_code == 202
    body = final_comment(github)
    assert body.startswith("✅ **Done**") and "left the settings alone" in body, body
    assert "not today" in told[0]
    assert not (tmp_path / "data" / "threads" / REPO / "1" / "work" / ".github" / "ml-intern.yml").exists()
    assert github.pulls.get(REPO, []) == []


def test_git_asks_for_a_fresh_token_near_expiry(github: FakeGitHub, serve: Callable[..., Server]) -> None:
    from bot.auth import REFRESH_MARGIN

    github.token_ttl = REFRESH_MARGIN - 60  # every token is near its end: each use mints a new one, as after an hour
    srv = serve(runs([WORK[0], say("Added eval.py.")]))
    mention(srv, "add an eval script")
    assert final_comment(github).startswith("✅")
    git_auth = {c.auth for c in github.calls if c.path.startswith("/git/")}
    assert git_auth == {"Basic"}
    assert len(github.tokens) >= 4  # the acknowledgement, the fetch, the push and the PR each had a fresh token
    assert len(github.pulls[REPO]) == 1


def test_a_clean_restart_while_waiting_for_approval_resumes_the_card(
    github: FakeGitHub, serve: Callable[..., Server]
) -> None:
    requests: list[int] = []

    def factory() -> Model:
        model = runs(GATED)()
        assert isinstance(model, ScriptedModel)
        requests.append(0)
        return model

    first = serve(factory)
    mention(first, "tune our ml-intern settings and add an eval script")
    _card(github)
    github.wait_until(lambda: first.get("/metrics").json()["runs"] == {"waiting_approval": 1})
    first.stop()
    assert not any(c["body"].startswith("⚠️") for c in github.thread_comments(REPO, 1))
    edits = github.count("PATCH", r"/issues/comments/")
    second = serve(factory)
    github.wait_until(lambda: github.count("PATCH", r"/issues/comments/") > edits, 60)
    github.wait_until(lambda: second.get("/metrics").json()["runs"] == {"waiting_approval": 1}, 60)
    assert srv_ok(second.deliver("issue_comment", comment_event("/approve", comment_id=903)))
    body = final_comment(github)
    assert body.startswith("✅ **Done**") and "after the approval" in body, body
    assert len(github.pulls[REPO]) == 1


def srv_ok(response: Any) -> bool:
    return bool(response.status_code == 202)
