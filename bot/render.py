"""Everything the bot writes on GitHub: the progress comment in each state, replies, help (pure functions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent import format as fmt
from agent.events import StopReason
from agent.redact import Redactor
from agent.run import Outcome
from bot import markdown as md
from bot.github import MAX_BODY_CHARS, bound_body
from bot.models import Identity, Run
from bot.view import Card, RunView, Step

MAX_RESULT_CHARS = 60_000
"""The agent's answer is cut to this, leaving room for the rest of the comment."""

HELP = """\
**{mention}** answers requests in issues and pull requests. Write `{mention} <what you need>` in a comment \
(or in a new issue) and I reply here. Only people with write access to this repository can ask.

Commands, each on a line of its own in a reply:

| command | what it does |
|---|---|
| `/status` | the state of the latest run in this thread |
| `/stop` | stop the running run and cancel queued ones |
| `/retry` | run the latest finished request again |
| `/approve` | approve the action the run is waiting for |
| `/deny [reason]` | refuse it (the reason is passed on) |
| `/help` | this message |"""

OUTSIDER = """\
Hi @{user}, thanks for the mention! I can only take requests from people with write access to this \
repository, so I won't act on this one. A maintainer can ask me on your behalf."""

_ICONS = {
    "queued": "⏳",
    "running": "⚙️",
    "waiting_approval": "✋",
    "done": "✅",
    "failed": "❌",
    "cancelled": "🚫",
    "interrupted": "⚠️",
}


def _footer(run: Run, public_url: str) -> str:
    # No run page link here: the page needs the run's token, which only the live progress comment carries.
    return f"\n\n<sub>run {run.id} · requested by @{run.requester}</sub>\n{run.marker}"


def queued(run: Run, behind_run: int | None, waiting_for_slot: bool, public_url: str = "") -> str:
    """The first comment: the run is queued (and why) or about to start."""
    if behind_run is not None:
        why = f"Queued: run {behind_run} in this thread goes first."
    elif waiting_for_slot:
        why = "Queued: every worker is busy; this run starts when one is free."
    else:
        why = "Starting…"
    return f"⏳ {why}" + _footer(run, public_url)


def working(run: Run, public_url: str = "") -> str:
    return "⚙️ Working on it…" + _footer(run, public_url)


def done(run: Run, answer: str, public_url: str = "") -> str:
    text = answer.strip() or "(the agent finished without an answer)"
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + "\n\n… (answer cut)"
    return bound_body(f"✅ Done.\n\n{text}" + _footer(run, public_url))


def failed(run: Run, reason: str, public_url: str = "") -> str:
    return (
        f"❌ The run failed: {reason[:2000]}\n\nReply `/retry` to run it again, or mention me with a new request."
        + _footer(run, public_url)
    )


def cancelled(run: Run, by: str, public_url: str = "") -> str:
    return f"🚫 Cancelled {by}." + _footer(run, public_url)


def interrupted(run: Run, public_url: str = "") -> str:
    return "⚠️ Interrupted: the server stopped while this run was working. Reply `/retry` to run it again." + _footer(
        run, public_url
    )


def status(runs: list[Run], me: Identity) -> str:
    """The reply to `/status`."""
    if not runs:
        return f"No runs in this thread yet. Mention {me.mention} with a request to start one."
    latest = runs[0]
    lines = [f"{_ICONS.get(latest.state, '')} Run {latest.id}: **{latest.state.replace('_', ' ')}**"]
    queued_after = [r.id for r in runs[1:] if r.state == "queued"]
    if queued_after:
        lines.append("Also queued: " + ", ".join(f"run {i}" for i in sorted(queued_after)))
    return "\n".join(lines)


def stale_answer(command: str) -> str:
    """The reply to `/approve` or `/deny` sent before the card now waiting appeared."""
    return (
        f"That `/{command}` answered an earlier card, so it does not apply to the one waiting now. "
        "Read the progress comment and answer again if you mean it."
    )


def help_text(me: Identity) -> str:
    return HELP.format(mention=me.mention)


def outsider(user: str) -> str:
    return OUTSIDER.format(user=user)


# ---- the live progress comment ----------------------------------------------------------------

BODY_LIMIT = MAX_BODY_CHARS - 4_000
"""What the progress comment aims under: GitHub's limit, with room for redaction and counting differences."""
ANSWER_CHARS = 20_000
PLAN_ITEMS = 40
LIST_ITEMS = 20
APPROVAL_HELP = (
    "Reply `/approve` or `/deny [reason]`, or react 👍 / 👎 to this comment. "
    "Only people with write access to this repository can answer."
)
CONTINUE = "mention `{mention}` in this thread with what to do next; the new run keeps this one's history."
RETRY = "reply `/retry` to run the request again, or " + CONTINUE
_STATUS = {
    "queued": ("⏳", "Queued"),
    "running": ("⚙️", "Working"),
    "waiting_approval": ("✋", "Waiting for approval"),
}
_STEP_MARKS = {"running": "⏳", "waiting": "✋", "denied": "🚫", "done": "✅", "failed": "❌", "unfinished": "⏹️"}
_PLAN_BOXES = {"completed": "[x]", "in_progress": "[ ]"}


@dataclass(frozen=True)
class FinalReport:
    """How a thread run ended, as the runner (not the model) knows it."""

    outcome: Outcome | None = None
    """The agent's outcome; None when the run failed before or outside the agent."""
    failure: str = ""
    """What went wrong, when the run failed (a clone, a push, a crash)."""
    pr_url: str = ""
    hub_urls: tuple[str, ...] = ()
    left_out: tuple[tuple[str, str], ...] = ()
    """(path, why) for changes that were not shipped, e.g. protected paths."""
    notes: tuple[str, ...] = ()
    """Plain facts for the reader, e.g. "No files changed, so no pull request was opened."."""
    next_steps: str = ""
    """How to continue; by default, mentioning the App again in the thread."""


def progress(
    view: RunView,
    now: float,
    *,
    report: FinalReport | None = None,
    mention: str = "@ml-intern",
    page_url: str = "",
    redact: Callable[[str], str] | None = None,
    limit: int = BODY_LIMIT,
) -> str:
    """The progress comment for `view` at time `now` (the final summary when `report` is given), under `limit`
    characters: the oldest log steps are dropped first, then the text is cut with a note; the marker stays."""
    clean = redact or Redactor().redact
    head = [_status_line(view, now, report, clean)]
    if report is not None:
        head.append(_summary(view, report, mention, clean))
    if view.plan:
        head.append(_plan(view.plan, clean))
    if report is None and view.current:
        head.append(f"**Now:** {md.inline(clean(view.current), 200)}")
    if report is None and view.card is not None:
        head.append(_card(view.card, len(view.cards) - 1, clean))
    footer = _progress_footer(view, page_url)
    log = [_step_line(s, clean, final=report is not None) for s in view.log]
    return _fit("\n\n".join(head), log, view.steps, footer, limit)


def _status_line(view: RunView, now: float, report: FinalReport | None, clean: Callable[[str], str]) -> str:
    icon, label = _final_status(report) if report is not None else _STATUS.get(view.status, ("⚙️", "Working"))
    parts = [f"{icon} **{label}**"]
    if view.started_at is not None:
        parts.append(fmt.seconds(max(0.0, now - view.started_at)))
    if view.model:
        parts.append(md.code(clean(view.model)))
    usage = dict(view.usage)
    if report is not None and report.outcome is not None:
        usage = report.outcome.usage.to_dict()
    if usage:
        parts.append(fmt.usage_line(usage))
    return " · ".join(parts)


def _final_status(report: FinalReport) -> tuple[str, str]:
    outcome = report.outcome
    if report.failure or outcome is None:
        return "❌", "Failed"
    reason = outcome.stop_reason
    if reason is StopReason.DONE:
        return "✅", "Done"
    if reason in (StopReason.INTERRUPTED, StopReason.SUSPENDED):
        return "⚠️", "Interrupted"
    if reason is StopReason.ERROR:
        return "❌", "Failed"
    return "🛑", fmt.STOPPED.get(str(reason), "stopped").capitalize()


def _plan(plan: list[dict[str, str]], clean: Callable[[str], str]) -> str:
    lines = ["**Plan**"]
    for item in plan[:PLAN_ITEMS]:
        text = md.inline(clean(str(item.get("content", ""))), 200)
        status = str(item.get("status", ""))
        box = _PLAN_BOXES.get(status, "[ ]")
        lines.append(f"- {box} **{text}** (in progress)" if status == "in_progress" else f"- {box} {text}")
    if len(plan) > PLAN_ITEMS:
        lines.append(f"- … {len(plan) - PLAN_ITEMS} more")
    return "\n".join(lines)


def _card(card: Card, more: int, clean: Callable[[str], str]) -> str:
    what = md.code(card.name) + (f" {md.inline(clean(card.summary), 300)}" if card.summary else "")
    lines = [
        "> [!IMPORTANT]",
        f"> **Approval needed:** {what}",
        f"> **Why:** {md.inline(clean(card.reason), 400)}",
    ]
    if card.cost_usd is not None:
        lines.append(f"> **Estimated cost:** {fmt.usd(card.cost_usd)}")
    if card.effects:
        lines.append("> **Effects:** " + ", ".join(md.code(e, 30) for e in card.effects[:10]))
    if more:
        lines.append(f"> ({more} more waiting after this one)")
    lines += [">", f"> {APPROVAL_HELP}"]
    return "\n".join(lines)


def _step_line(step: Step, clean: Callable[[str], str], final: bool = False) -> str:
    state = "unfinished" if final and step.state in ("running", "waiting") else step.state
    line = f"- {_STEP_MARKS.get(state, '•')} {md.code(step.name, 60)}"
    if step.summary:
        line += f" {md.inline(clean(step.summary), 160)}"
    if step.result:
        line += f" → {md.inline(clean(step.result), 160)}"
    if step.duration_s is not None:
        line += f" ({fmt.seconds(step.duration_s)})"
    if step.decision:
        line += f" · {md.inline(step.decision, 80)}"
    return line


def _summary(view: RunView, report: FinalReport, mention: str, clean: Callable[[str], str]) -> str:
    parts: list[str] = []
    outcome = report.outcome
    if report.failure:
        parts.append(f"**What went wrong:** {md.inline(clean(report.failure), 2000)}")
    elif view.error and outcome is not None and outcome.stop_reason is StopReason.ERROR:
        parts.append(f"**What went wrong:** {md.inline(clean(view.error), 2000)}")
    if outcome is not None and outcome.final.strip():
        parts.append(md.block(clean(outcome.final), ANSWER_CHARS))
    if report.pr_url:
        parts.append("**Pull request:** " + md.link(report.pr_url, report.pr_url))
    if report.hub_urls:
        parts.append("**On the Hub:**\n" + "\n".join(f"- {md.link(u, u)}" for u in report.hub_urls[:LIST_ITEMS]))
    if report.left_out:
        lines = [f"- {md.code(path, 200)}: {md.inline(clean(why), 300)}" for path, why in report.left_out[:LIST_ITEMS]]
        if len(report.left_out) > LIST_ITEMS:
            lines.append(f"- … {len(report.left_out) - LIST_ITEMS} more")
        parts.append("**Left out of the pull request:**\n" + "\n".join(lines))
    parts.extend(md.inline(clean(note), 500) for note in report.notes[:LIST_ITEMS])
    again = _final_status(report)[1] in ("Failed", "Interrupted")
    how = (RETRY if again else CONTINUE).format(mention=mention)
    if report.next_steps:
        how = md.inline(clean(report.next_steps), 500)
    parts.append(f"**To continue:** {how}")
    return "\n\n".join(parts)


def _progress_footer(view: RunView, page_url: str) -> str:
    link = f" · {md.link('run page', page_url)}" if page_url else ""
    return f"<sub>run {view.run_id} · requested by @{view.requester}{link}</sub>\n<!-- ml-intern:run:{view.run_id} -->"


def _fit(head: str, log: list[str], steps: int, footer: str, limit: int) -> str:
    """Assemble the comment, keeping the newest log lines that fit, and cutting the rest of the text if even
    that does not fit."""

    def join(kept: list[str]) -> str:
        parts = [head]
        if kept:
            shown = f"last {len(kept)} of {steps}" if len(kept) < steps else str(steps)
            parts.append(f"<details><summary>Steps ({shown})</summary>\n\n" + "\n".join(kept) + "\n\n</details>")
        parts.append(footer)
        return "\n\n".join(parts)

    room = limit - len(join([]))
    kept: list[str] = []
    overhead = 80  # the <details> wrapper
    for line in reversed(log):
        if overhead + len(line) + 1 > room:
            break
        kept.append(line)
        overhead += len(line) + 1
    body = join(kept[::-1])
    if len(body) <= limit:
        return body
    note = "\n\n… (cut to fit GitHub's comment limit; everything is on the run page)\n\n"
    return head[: max(0, limit - len(footer) - len(note))] + note + footer


__all__ = [
    "APPROVAL_HELP",
    "BODY_LIMIT",
    "FinalReport",
    "cancelled",
    "done",
    "failed",
    "help_text",
    "interrupted",
    "outsider",
    "progress",
    "queued",
    "stale_answer",
    "status",
    "working",
]
