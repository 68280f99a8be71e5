"""The github family against GitHub's documented search and contents bodies and octokit's recorded exchange."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import respx

from agent.env import EnvSnapshot
from agent.tools.base import ToolContext
from agent.tools.deps import Deps
from agent.tools.github import GitHubHTTP, github_read, github_search_code
from tests.agent.tools.conftest import call
from tests.remote_data import github, load

API = "https://api.github.com"


async def test_code_search_needs_a_token_and_says_so(tmp_path: Path, api: respx.MockRouter) -> None:
    anon = GitHubHTTP.from_env(EnvSnapshot({}))
    ctx = ToolContext(tmp_path, tmp_path, {}, deps=Deps(given=[anon]))
    result = await call(github_search_code, ctx, query="SFTConfig")
    assert result.is_error and "no GITHUB_TOKEN is set; read files with github_read" in result.output
    assert not api.calls
    await anon.aclose()


async def test_code_search_lists_files_with_fragments(ctx: ToolContext, api: respx.MockRouter) -> None:
    body = github("search-code")
    body["items"][0]["text_matches"] = [{"fragment": "removeClass: function( value ) {"}]
    route = api.get(f"{API}/search/code").respond(200, json=body)
    out = (await call(github_search_code, ctx, query="addClass", repo="jquery/jquery", path="src/", limit=5)).output
    assert out.splitlines()[:2] == [
        "7 files match",
        "jquery/jquery src/attributes/classes.js · removeClass: function( value ) {",
    ]
    sent = route.calls.last.request
    assert sent.url.params["q"] == "addClass repo:jquery/jquery path:src/"
    assert "text-match" in sent.headers["accept"]


async def test_a_file_is_decoded_and_windowed(ctx: ToolContext, api: respx.MockRouter) -> None:
    body = github("get-content", "content-file-response-if-content-is-a-file")
    api.get(f"{API}/repos/octokit/octokit.rb/contents/README.md").respond(200, json=body)
    out = (await call(github_read, ctx, repo="octokit/octokit.rb", path="README.md", limit=2)).output
    assert out.startswith("1  # Yoga B") and "[octokit/octokit.rb/README.md: lines 1-2 of" in out


async def test_a_folder_is_listed(ctx: ToolContext, api: respx.MockRouter) -> None:
    (exchange,) = [e for e in load("github/get-content.recorded.json") if e["path"].endswith("/contents/")]
    route = api.get(f"{API}/repos/octokit-fixture-org/hello-world/contents/").respond(200, json=exchange["response"])
    out = (await call(github_read, ctx, repo="https://github.com/octokit-fixture-org/hello-world", ref="main")).output
    assert out == "octokit-fixture-org/hello-world/: 1 entries\n  README.md  13 B"
    assert route.calls.last.request.url.params["ref"] == "main"


async def test_notebooks_are_shown_as_cells(ctx: ToolContext, api: respx.MockRouter) -> None:
    nb = json.dumps({"cells": [{"cell_type": "code", "source": ["from trl import SFTTrainer\n"]}]}).encode()
    body = {"type": "file", "encoding": "base64", "content": base64.b64encode(nb).decode(), "size": len(nb)}
    api.get(f"{API}/repos/huggingface/trl/contents/examples/sft.ipynb").respond(200, json=body)
    out = (await call(github_read, ctx, repo="huggingface/trl", path="examples/sft.ipynb")).output
    assert "# %% [code] cell 1" in out and "from trl import SFTTrainer" in out


async def test_rate_limits_and_missing_files_are_observations(ctx: ToolContext, api: respx.MockRouter) -> None:
    limited = httpx.Response(
        403,
        json={"message": "API rate limit exceeded"},
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1590701888"},
    )
    api.get(f"{API}/repos/a/b/contents/x.py").mock(return_value=limited)
    result = await call(github_read, ctx, repo="a/b", path="x.py")
    assert result.is_error and "GitHub rate limit reached (resets at epoch 1590701888)" in result.output
    api.get(f"{API}/repos/a/b/contents/y.py").respond(404, json={"message": "Not Found"})
    assert "not found on GitHub" in (await call(github_read, ctx, repo="a/b", path="y.py")).output
    api.get(f"{API}/search/code").respond(422, json={"message": "Validation Failed"})
    assert "GitHub rejected the query: Validation Failed" in (await call(github_search_code, ctx, query="(")).output
    for bad in ("nope", "a/b/c d"):
        assert "is not a GitHub repository" in (await call(github_read, ctx, repo=bad)).output
    assert "inside the repository" in (await call(github_read, ctx, repo="a/b", path="../../etc")).output
