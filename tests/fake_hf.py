"""A local stand-in for the Hub, the dataset viewer and the docs, for runs of the CLI as a subprocess.

respx cannot reach into another process, so the CLI's `HF_ENDPOINT` and `HF_DATASETS_SERVER_URL` point here. The
bodies are the documented examples (tests/data/remote) with their values swapped for one small sentiment dataset;
key sets are kept. Every request is recorded with its Authorization header.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.remote_data import viewer

DATASET = "stanfordnlp/sst2"
MODEL = "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
TRAINER_PAGE = "# Trainer\n\nThe [`Trainer`] class provides a complete training loop.\n\n## TrainingArguments\n"


def _size() -> dict[str, Any]:
    body = copy.deepcopy(viewer("size", example="dataset size"))
    split_keys = body["size"]["splits"][0]
    body["size"]["dataset"]["dataset"] = DATASET
    body["size"]["configs"] = [{**body["size"]["configs"][0], "dataset": DATASET, "config": "default"}]
    rows = {"train": 67349, "validation": 872, "test": 1821}
    body["size"]["splits"] = [
        {**split_keys, "dataset": DATASET, "config": "default", "split": s, "num_rows": n, "num_columns": 3}
        | {"num_bytes_parquet_files": n * 48, "num_bytes_memory": n * 72}
        for s, n in rows.items()
    ]
    return body


def _info() -> dict[str, Any]:
    body = copy.deepcopy(viewer("info", example="config metadata"))
    body["dataset_info"].update(
        dataset_name="sst2",
        config_name="default",
        license="unknown",
        features={
            "idx": {"dtype": "int32", "_type": "Value"},
            "sentence": {"dtype": "string", "_type": "Value"},
            "label": {"names": ["negative", "positive"], "_type": "ClassLabel"},
        },
    )
    return body


def _rows() -> dict[str, Any]:
    body = copy.deepcopy(viewer("rows"))
    body["features"] = [
        {"feature_idx": 0, "name": "idx", "type": {"dtype": "int32", "_type": "Value"}},
        {"feature_idx": 1, "name": "sentence", "type": {"dtype": "string", "_type": "Value"}},
        {"feature_idx": 2, "name": "label", "type": {"names": ["negative", "positive"], "_type": "ClassLabel"}},
    ]
    texts = ["hide new secretions from the parental units", "contains no wit , only labored gags", "loved it"]
    body["rows"] = [
        {"row_idx": i, "row": {"idx": i, "sentence": t, "label": int(i == 2)}, "truncated_cells": []}
        for i, t in enumerate(texts)
    ]
    body["num_rows_total"] = 67349
    return body


def routes() -> dict[str, Callable[[dict[str, list[str]]], Any]]:
    """Path → body (a function of the query)."""
    model = {"id": MODEL, "downloads": 3_500_000, "likes": 800, "lastModified": "2024-02-07T00:00:00.000Z"}
    model |= {"pipeline_tag": "text-classification", "tags": ["license:apache-2.0"], "gated": False}
    dataset = {"id": DATASET, "downloads": 120_000, "likes": 150, "lastModified": "2024-01-04T00:00:00.000Z"}
    dataset |= {"tags": ["task_categories:text-classification", "license:unknown"], "gated": False}
    hits = [
        {
            "text": "Trainer is a simple but feature-complete training and eval loop for PyTorch.",
            "product": "transformers",
            "heading1": "Trainer",
            "source_page_url": "https://huggingface.co/docs/transformers/main_classes/trainer",
            "source_page_title": "Trainer",
        }
    ]
    return {
        "/api/models": lambda q: [model],
        "/api/datasets": lambda q: [dataset],
        "/is-valid": lambda q: viewer("is-valid"),
        "/size": lambda q: _size(),
        "/parquet": lambda q: {"parquet_files": [], "pending": [], "failed": [], "partial": False},
        "/info": lambda q: _info(),
        "/rows": lambda q: _rows(),
        "/first-rows": lambda q: (
            {"dataset": DATASET, "config": "default", "split": "train", "truncated": False}
            | {k: v for k, v in _rows().items() if k in ("features", "rows")}
        ),
        "/api/docs/search": lambda q: hits,
        "/docs/transformers/main_classes/trainer": lambda q: TRAINER_PAGE,
    }


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    authorization: str | None


@dataclass
class FakeHF:
    """`with FakeHF() as hf:` serves the routes on 127.0.0.1; `hf.url` is its base, `hf.seen` what it received."""

    seen: list[Seen] = field(default_factory=list)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FakeHF:
        table, seen = routes(), self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                seen.append(Seen(parts.path, query, self.headers.get("Authorization")))
                found = table.get(parts.path)
                body, kind = (b'{"error": "Not found"}', "application/json") if found is None else _encode(found(query))
                self.send_response(404 if found is None else 200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()


def _encode(body: Any) -> tuple[bytes, str]:
    if isinstance(body, str):
        return body.encode(), "text/markdown; charset=utf-8"
    return json.dumps(body).encode(), "application/json"
