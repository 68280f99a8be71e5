"""A scripted research run through the CLI, as a subprocess: find a dataset and a model, check the splits and
labels, read the trainer docs, write a training script and run it on ten rows. The model is the scripted
OpenAI-compatible server; the Hub, the dataset viewer and the docs are a local stand-in (tests/fake_hf.py)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.llm.scripted import call, say
from agent.llm.server import ScriptedServer
from tests.fake_hf import DATASET, MODEL, FakeHF

TRAIN_PY = '''"""Bag-of-words logistic regression on a JSONL of {sentence, label}: a pure-Python smoke test."""
import argparse, json, math, re

parser = argparse.ArgumentParser()
parser.add_argument("--data", default="data/sst2-sample.jsonl")
parser.add_argument("--rows", type=int, default=10)
parser.add_argument("--epochs", type=int, default=30)
args = parser.parse_args()

rows = [json.loads(line) for line in open(args.data)][: args.rows]
words = lambda s: re.findall(r"[a-z']+", s.lower())
vocab = sorted({w for r in rows for w in words(r["sentence"])})
index = {w: i for i, w in enumerate(vocab)}
weights, bias = [0.0] * len(vocab), 0.0

def predict(sentence):
    z = bias + sum(weights[index[w]] for w in words(sentence) if w in index)
    return 1 / (1 + math.exp(-z))

for _ in range(args.epochs):
    for r in rows:
        error = predict(r["sentence"]) - r["label"]
        for w in words(r["sentence"]):
            weights[index[w]] -= 0.5 * error
        bias -= 0.5 * error

accuracy = sum((predict(r["sentence"]) > 0.5) == bool(r["label"]) for r in rows) / len(rows)
json.dump({"rows": len(rows), "vocab": len(vocab), "train_accuracy": accuracy}, open("metrics.json", "w"))
print(f"rows={len(rows)} vocab={len(vocab)} train_accuracy={accuracy:.2f}")
'''

SAMPLE = [
    ("a gorgeous , witty , seductive movie", 1),
    ("the story is dull and the acting is flat", 0),
    ("an enthralling , playful film", 1),
    ("boring , tedious and far too long", 0),
    ("a moving and beautifully acted drama", 1),
    ("the jokes fall flat every time", 0),
    ("one of the best films of the year", 1),
    ("a mess of a movie , dull and lifeless", 0),
    ("warm , funny and wise", 1),
    ("tedious , flat and forgettable", 0),
    ("this row is past the ten the script may read", 1),
]


def script(python: str) -> list:  # type: ignore[type-arg]
    return [
        call(
            "plan",
            todos=[{"content": "research", "status": "in_progress"}, {"content": "smoke test", "status": "pending"}],
        ),
        call("hub_search", kind="dataset", query="sst2", task="text-classification", limit=5),
        call("hub_search", query="sst-2", task="text-classification", sort="downloads", limit=5),
        call("dataset_overview", dataset=DATASET),
        call("dataset_rows", dataset=DATASET, config="default", split="train", length=3),
        call("docs_search", query="Trainer training loop", product="transformers"),
        call("docs_read", page="transformers/main_classes/trainer", limit=40),
        call("write", path="train.py", content=TRAIN_PY),
        call("bash", command=f"{python} train.py --rows 10"),
        say(
            f"Smoke test passed on 10 rows of {DATASET} (train_accuracy in metrics.json); model to fine-tune: {MODEL}."
        ),
    ]


@pytest.mark.slow
def test_a_research_run_finds_checks_reads_writes_and_runs_on_ten_rows(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    lines = [json.dumps({"sentence": s, "label": y}) for s, y in SAMPLE]
    (work / "data" / "sst2-sample.jsonl").write_text("\n".join(lines) + "\n")
    token = "hf_" + secrets.token_hex(17)
    with FakeHF() as hf, ScriptedServer(script(sys.executable)) as llm:
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_TOKEN", "_KEY"))}
        env.update(
            ML_INTERN_HOME=str(tmp_path / "home"),
            ML_INTERN_CONFIG=str(tmp_path / "no-config.yaml"),
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            NO_COLOR="1",
            HF_TOKEN=token,
            HF_ENDPOINT=hf.url,
            HF_DATASETS_SERVER_URL=hf.url,
        )
        args = ["--model", "scripted", "--base-url", llm.base_url, "--workdir", str(work), "--no-stream"]
        if shutil.which("bwrap") is None:  # the script runs in the sandbox where there is one, else locally
            args += ["--no-sandbox", "-c", "sandbox.allow_unsandboxed=true"]
        task = "find a small sentiment dataset and a strong small model for it, check the dataset's splits and labels, "
        task += "read the transformers docs for the trainer, write a training script and test it on ten rows"
        result = subprocess.run(
            [sys.executable, "-m", "agent", *args, task], capture_output=True, text=True, env=env, timeout=300
        )
        sent = [r.body for r in llm.requests]
    assert result.returncode == 0, result.stderr
    assert llm.remaining == 0
    metrics = json.loads((work / "metrics.json").read_text())
    assert metrics["rows"] == 10 and metrics["train_accuracy"] == 1.0
    results = {m.get("tool_call_id"): m["content"] for m in sent[-1]["messages"] if m["role"] == "tool"}
    outputs = "\n".join(results.values())
    assert f"{DATASET} · text-classification · 120.0k dl" in outputs
    assert f"{MODEL} · text-classification · 3.5M dl · 800 likes" in outputs
    assert "default/train: 67.3k rows" in outputs and "label: ClassLabel[negative, positive]" in outputs
    assert "rows 0-2 of ?" in outputs and '#2 {"idx": 2, "sentence": "loved it", "label": 1}' in outputs
    assert "transformers › Trainer" in outputs and "The [`Trainer`] class provides a complete training loop." in outputs
    assert "rows=10 vocab=" in outputs and "train_accuracy=1.00" in outputs
    assert token not in json.dumps(sent)  # the model never sees the token
    assert {s.path for s in hf.seen} >= {"/api/datasets", "/api/models", "/is-valid", "/size", "/info", "/first-rows"}
    assert all(s.authorization == f"Bearer {token}" for s in hf.seen)
    tools = {t["function"]["name"] for t in sent[0]["tools"]}
    assert {"hub_search", "dataset_overview", "paper_search", "docs_read", "github_read", "bash"} <= tools
    assert result.stdout.startswith("Smoke test passed on 10 rows")
