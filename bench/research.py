"""What a research trajectory sends to the model: the fixed prompt, the total over 50 steps, the largest tool result.

.venv/bin/python bench/research.py [--write-docs]

The real Agent runs a scripted 50-step trajectory over the research tools (hub, datasets, papers, docs, github) with
the default config. The Hub, the dataset viewer, arXiv and GitHub are respx routes serving the recorded and
documented bodies of tests/data/remote, made as large as the real services' answers get (50-hit lists, a 200 KB
docs page, a 3 MB file, long dataset cells). The upstream figures are reference numbers from its source, not
measured here.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import respx  # noqa: E402

from agent.config import load_config  # noqa: E402
from agent.events import EventType, Shutdown, UserInput  # noqa: E402
from agent.llm.scripted import ScriptedModel, Turn, call, say  # noqa: E402
from agent.loop import Agent  # noqa: E402
from agent.messages import Message  # noqa: E402
from agent.session import open_session, system_prompt  # noqa: E402
from agent.tools.families import select  # noqa: E402
from agent.tools.github import GitHubHTTP  # noqa: E402
from agent.tools.remote import HubHTTP  # noqa: E402
from bench.common import Result  # noqa: E402

DATA = ROOT / "tests" / "data" / "remote"
DOC = ROOT / "docs" / "benchmarks.md"
STEPS = 50
UPSTREAM_PREAMBLE_CHARS = 55_000
"""System prompt (~18k) and tool schemas (~37k) the upstream ML Intern re-sends with every request (its source)."""
SECTION = re.compile(r"<!-- research:start -->.*?<!-- research:end -->", re.DOTALL)
TASK = "Find a strong small model and a dataset for sentiment classification, check them and read how to train."


def _load(path: str) -> Any:
    return json.loads((DATA / path).read_text())


def _example(endpoint: str, name: str | None = None) -> Any:
    examples = _load(f"viewer/{endpoint}.json")["responses"]["200"]["examples"]
    return examples[name] if name else next(iter(examples.values()))


def _bodies() -> dict[str, Any]:
    """Large, service-shaped bodies: what each route answers."""
    llama = _load("hub/models.get.meta-llama__Llama-3.1-8B-Instruct.gated.json")["interactions"][0]["response"]["body"]
    llama = copy.deepcopy(llama)
    llama["siblings"] = [{"rfilename": f"model-{i:05d}.safetensors", "size": 4_900_000_000} for i in range(60)]
    llama["siblings"] += [{"rfilename": "README.md", "size": 40_000}, {"rfilename": "config.json", "size": 900}]
    keys = ("id", "downloads", "likes", "lastModified", "pipeline_tag", "library_name", "gated", "private", "tags")
    hits = [{k: llama[k] for k in keys} | {"id": f"org{i}/model-{i}"} for i in range(50)]
    abstract = "We study parameter-efficient fine-tuning of large language models. " * 25
    paper = {"id": "2106.09685", "title": "LoRA", "summary": abstract, "publishedAt": "2021-06-17T00:00:00.000Z"}
    paper |= {"authors": [{"name": f"Author {i}"} for i in range(12)], "upvotes": 100, "ai_keywords": ["lora"] * 20}
    code = _load("github/search-code.json")["responses"]["200"]["examples"]["code-search-result-item-paginated"]
    code = copy.deepcopy(code)
    code["items"] = [code["items"][0] | {"text_matches": [{"fragment": "x " * 400}]} for _ in range(30)]
    source = "".join(f"    trainer.add_callback(Callback{i}())  # configure step {i} of the run\n" for i in range(5000))
    rows = copy.deepcopy(_example("rows"))
    rows["rows"] = [rows["rows"][0] | {"row_idx": i} for i in range(100)]
    return {
        "list": hits,
        "model": llama,
        "config": {"architectures": ["LlamaForCausalLM"], "max_position_embeddings": 131072, "torch_dtype": "bfloat16"},
        "readme": "---\nlicense: llama3.1\n---\n" + "The Llama 3.1 collection of multilingual models. " * 800,
        "file": ("line of a large file in the repo, " * 3 + "\n") * 30_000,
        "papers": [{"paper": paper, "title": paper["title"]} for _ in range(50)],
        "paper": paper,
        "docs_hits": [
            {"text": "The SFTTrainer supports packing. " * 30, "product": "trl", "heading1": "SFT", "heading2": f"S{i}"}
            | {"source_page_url": f"https://huggingface.co/docs/trl/sft_trainer#s{i}"}
            for i in range(40)
        ],
        "docs_page": "\n".join(
            f"## Section {i}\n\nUse `SFTConfig(packing=True)` to pack sequences." for i in range(4000)
        ),
        "code": code,
        "content": {"type": "file", "encoding": "base64", "content": base64.b64encode(source.encode()).decode()},
        "rows": rows,
    }


@contextmanager
def routes(bodies: dict[str, Any]) -> Iterator[dict[str, int]]:
    """respx routes for every research host; yields the largest body size served (bytes)."""
    served = {"largest": 0}

    def answer(body: Any) -> Callable[[httpx.Request], httpx.Response]:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()

        def respond(request: httpx.Request) -> httpx.Response:
            served["largest"] = max(served["largest"], len(raw))
            kind = "text/markdown" if isinstance(body, str) else "application/json"
            return httpx.Response(200, content=raw, headers={"Content-Type": kind})

        return respond

    hub, viewer = "https://huggingface.co", "https://datasets-server.huggingface.co"
    with respx.mock(assert_all_called=False) as mock:
        mock.get(url__regex=rf"{hub}/api/(models|datasets|spaces)(\?.*)?$").mock(side_effect=answer(bodies["list"]))
        mock.get(url__regex=rf"{hub}/api/models/.+").mock(side_effect=answer(bodies["model"]))
        mock.get(url__regex=rf"{hub}/.+/resolve/main/config\.json").mock(side_effect=answer(bodies["config"]))
        mock.get(url__regex=rf"{hub}/.+/resolve/main/README\.md").mock(side_effect=answer(bodies["readme"]))
        mock.get(url__regex=rf"{hub}/.+/resolve/main/.+").mock(side_effect=answer(bodies["file"]))
        mock.get(url__regex=rf"{hub}/api/(papers/search|daily_papers)").mock(side_effect=answer(bodies["papers"]))
        mock.get(url__regex=rf"{hub}/api/papers/[^/?]+(\?.*)?$").mock(side_effect=answer(bodies["paper"]))
        mock.get(f"{hub}/api/docs/search").mock(side_effect=answer(bodies["docs_hits"]))
        mock.get(url__regex=rf"{hub}/docs/.+").mock(side_effect=answer(bodies["docs_page"]))
        for endpoint, name in [("is-valid", None), ("size", "dataset size"), ("parquet", "partial parquet export")]:
            mock.get(f"{viewer}/{endpoint}").mock(side_effect=answer(_example(endpoint, name)))
        mock.get(f"{viewer}/info").mock(
            side_effect=answer({"dataset_info": _example("info", "config metadata")["dataset_info"]})
        )
        mock.get(f"{viewer}/rows").mock(side_effect=answer(bodies["rows"]))
        mock.get(f"{viewer}/first-rows").mock(side_effect=answer(bodies["rows"]))
        mock.get(f"{viewer}/statistics").mock(side_effect=answer(_example("statistics")))
        mock.get("https://api.github.com/search/code").mock(side_effect=answer(bodies["code"]))
        mock.get(url__regex=r"https://api\.github\.com/repos/.+/contents/.+").mock(
            side_effect=answer(bodies["content"])
        )
        yield served


def step(i: int) -> Turn:
    """The i-th research call: the thirteen research tools in turn, each time with other arguments."""
    n = i // 13
    calls = [
        lambda: call("hub_search", query=f"sentiment {n}", task="text-classification", limit=50),
        lambda: call("hub_search", kind="dataset", query=f"reviews {n}", limit=50),
        lambda: call("hub_repo", repo_id=f"meta-llama/model-{n}"),
        lambda: call("hub_file", repo_id=f"org/model-{n}", path="train.py", offset=1 + n * 200),
        lambda: call("dataset_overview", dataset=f"stanfordnlp/imdb-{n}"),
        lambda: call(
            "dataset_rows", dataset="stanfordnlp/imdb", config="plain_text", split="train", offset=n, length=100
        ),
        lambda: call("dataset_stats", dataset="mstz/wine", config="default", split=f"train{n}"),
        lambda: call("paper_search", query=f"parameter efficient fine-tuning {n}", limit=50),
        lambda: call("paper_read", arxiv_id=f"2106.0968{n}"),
        lambda: call("docs_search", query=f"sft packing {n}", product="trl", limit=20),
        lambda: call("docs_read", page="trl/sft_trainer", offset=1 + n * 250),
        lambda: call("github_search_code", query=f"SFTConfig packing {n}", repo="huggingface/trl", limit=30),
        lambda: call("github_read", repo="huggingface/trl", path="examples/scripts/sft.py", offset=1 + n * 250),
    ]
    return calls[i % 13]()


def script(steps: int) -> Callable[[list[Message]], Turn]:
    served = 0

    def reply(messages: list[Message]) -> Turn:
        nonlocal served
        if len(messages) == 1 and messages[0].role == "user":  # compaction's summary request
            return say(f"Summary: {served} research calls so far; candidates and docs noted.")
        if served >= steps:
            return say("Research done: a model, a dataset and the trainer docs are chosen.")
        served += 1
        return step(served - 1)

    return reply


async def trajectory(tmp: Path, overrides: dict[str, Any]) -> tuple[ScriptedModel, int]:
    config = load_config(overrides=overrides, use_user_file=False)
    model = ScriptedModel(script(STEPS), context_window=config.context.context_window or 128_000)
    (tmp / "ws").mkdir(parents=True, exist_ok=True)
    hub, gh = HubHTTP.create(token="hf_" + "x" * 34, backoff=0), GitHubHTTP.create(token="ghp_" + "x" * 36)
    with routes(_bodies()) as served:
        session = await open_session(config, workdir=tmp / "ws", headless=True, model=model, home=tmp, deps=[hub, gh])
        agent = Agent(session)
        runner = asyncio.create_task(agent.run())
        agent.submit(UserInput(TASK))
        async for ev in agent.events():
            if ev.type is EventType.TURN_COMPLETE:
                if ev.data.get("stop_reason") != "done":
                    raise RuntimeError(f"the trajectory stopped: {ev.data}")
                agent.submit(Shutdown())
        await runner
        crashed = [m.content[:200] for m in session.messages if m.role == "tool" and "The tool crashed" in m.content]
        await session.close()
        if crashed:
            raise RuntimeError(f"a tool crashed in the benchmark trajectory (a route is missing?): {crashed[0]}")
    await hub.aclose()
    await gh.aclose()
    return model, served["largest"]


def sent_chars(model: ScriptedModel) -> tuple[int, int, int]:
    """Characters of every request (messages and tool schemas, as JSON), of the largest request, and of the
    largest tool result in one."""
    total = peak = largest = 0
    for messages, specs in zip(model.requests, model.tool_specs, strict=True):
        size = len(json.dumps([m.to_dict() for m in messages])) + len(json.dumps(specs))
        total, peak = total + size, max(peak, size)
        largest = max([largest, *(len(m.content or "") for m in messages if m.role == "tool")])
    return total, peak, largest


def preamble() -> tuple[int, int]:
    config = load_config(use_user_file=False)
    prompt = system_prompt(config, Path("/workspace"), True)
    return len(prompt), len(json.dumps([t.spec() for f in select(config.tools) for t in f.tools]))


def measure(tmp: Path) -> list[Result]:
    prompt, schemas = preamble()
    model, raw = asyncio.run(trajectory(tmp / "bounded", {}))
    total, peak, largest = sent_chars(model)
    calls = len(model.requests)
    off = {"context": {"tool_output_chars": 10**9, "compact_at": 1.0, "context_window": 10**9}}
    model_off, _ = asyncio.run(trajectory(tmp / "unbounded", off))
    total_off, _, largest_off = sent_chars(model_off)
    group = "5. research tools"
    fixed = prompt + schemas
    return [
        Result(group, "system prompt + all tool schemas (6 families, 18 tools)", fixed, "chars",
               UPSTREAM_PREAMBLE_CHARS, "upstream ML Intern (reference)", target=12_000,
               note=f"prompt {prompt:,} + schemas {schemas:,}"),
        Result(group, f"chars sent over a {STEPS}-step research trajectory", total, "chars",
               total_off, "same run, core bounding and compaction off",
               note=f"{calls} model calls, the largest {peak:,}; the fixed prompt's share {fixed * calls:,} "
               f"(upstream's 55,000 × {calls} = {UPSTREAM_PREAMBLE_CHARS * calls:,})"),
        Result(group, "largest tool result that reaches the model", largest, "chars", raw,
               "largest body a service sent (an uncapped tool passes it on whole)",
               note=f"same with core bounding off: {largest_off:,} (the tools' own bounds)"),
    ]  # fmt: skip


def markdown_table(results: list[Result]) -> list[str]:
    """The rows in the table format of docs/benchmarks.md (bench/report.py imports the model-path benchmarks)."""
    out = ["| Measurement | Value | Baseline | Ratio | Target | Notes |", "|---|--:|---|--:|---|---|"]
    for r in results:
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "—"
        target = f"< {r.show(r.target)}" if r.target is not None else "—"
        baseline = f"{r.show(r.baseline)} ({r.baseline_name})"
        out.append(f"| {r.name} | {r.show(r.value)} | {baseline} | {ratio} | {target} | {r.note} |")
    return out


def section(results: list[Result]) -> str:
    lines = [
        "<!-- research:start -->",
        "## Research tools (bench/research.py)",
        "",
        *markdown_table(results),
        "",
        "The fixed prompt is the default config's system prompt and the JSON schemas of all 18 tools (workspace, hub,",
        "datasets, papers, docs, github), re-sent with every request. The trajectory runs the real Agent over 50",
        "research calls (the 13 research tools in turn) against respx routes serving service-shaped bodies as large",
        "as the real ones get; totals are the JSON characters of every request's messages and tool schemas",
        "(compaction summaries included). Upstream figures come from its source (a 55,000-character preamble; no",
        "global output cap: `fetch_hf_docs` returns whole pages, job logs are uncapped), not from a run here.",
        "",
        "Reading: the trajectory is a stress case (every call asks for the most: 50 hits, 100 rows, long windows).",
        "Each tool keeps its own answer under ~8,000 characters (one line per hit, numbered windows with an offset",
        "to read on, long cells cut), so the core's 16,000-character spill never fires and turning it off changes",
        "nothing; the largest answer is 0.3% of the largest body a service sent. What grows is the history: every",
        "request re-sends all earlier results, so the total is quadratic in steps until compaction (at 80% of the",
        "window) cuts it; this run stayed under that threshold. The fixed prompt is 7% of the total, where",
        "upstream's preamble alone would be 2.8 M characters over the same 51 requests.",
        "<!-- research:end -->",
    ]
    return "\n".join(lines)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ml-intern-research-") as folder:
        results = measure(Path(folder))
    sys.stdout.write("\n".join(markdown_table(results)) + "\n")
    if "--write-docs" in sys.argv:
        old = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
        block = section(results)
        DOC.write_text(
            SECTION.sub(lambda _: block, old) if SECTION.search(old) else old.rstrip("\n") + "\n\n" + block + "\n"
        )
    return 0 if all(r.passed is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
