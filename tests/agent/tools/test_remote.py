"""The research tools' HTTP client: tokens only for their own hosts, retries, and failures as observations."""

from __future__ import annotations

import httpx
import pytest
import respx

from agent.env import EnvSnapshot
from agent.tools.base import ToolContext
from agent.tools.docs import docs_read
from agent.tools.github import GitHubHTTP, github_read
from agent.tools.hub import hub_file, hub_search
from agent.tools.papers import paper_search
from agent.tools.remote import HubHTTP, origin
from tests.agent.tools.conftest import call

MODELS = "https://huggingface.co/api/models"


def auth(request: httpx.Request) -> str | None:
    return request.headers.get("authorization")


async def test_the_hf_token_goes_to_the_hub_but_not_to_the_cdn_it_redirects_to(
    ctx: ToolContext, api: respx.MockRouter, hf_token: str
) -> None:
    cdn = "https://cdn-lfs.hf.co/repos/ab/cd/weights.txt?sig=1"
    hop = api.get("https://huggingface.co/org/model/resolve/main/notes.txt").respond(302, headers={"Location": cdn})
    land = api.get(cdn).respond(200, text="line one\nline two\n")
    result = await call(hub_file, ctx, repo_id="org/model", path="notes.txt")
    assert "line two" in result.output
    assert auth(hop.calls.last.request) == f"Bearer {hf_token}"
    assert auth(land.calls.last.request) is None


async def test_no_token_reaches_arxiv_or_a_url_the_model_chose(ctx: ToolContext, api: respx.MockRouter) -> None:
    arxiv = api.get("https://export.arxiv.org/api/query").respond(
        200, text="<feed xmlns='http://www.w3.org/2005/Atom'/>"
    )
    await call(paper_search, ctx, query="lora", source="arxiv")
    assert auth(arxiv.calls.last.request) is None
    result = await call(docs_read, ctx, page="https://evil.example/docs/steal")
    assert result.is_error and "Hugging Face documentation only" in result.output
    assert not [c for c in api.calls if "evil" in str(c.request.url)]


async def test_the_github_token_goes_to_the_api_host_only(
    ctx: ToolContext, api: respx.MockRouter, gh_token: str, hf_token: str
) -> None:
    route = api.get("https://api.github.com/repos/huggingface/trl/contents/README.md").respond(
        200, json={"type": "file", "encoding": "base64", "content": "aGVsbG8K", "size": 6}
    )
    await call(github_read, ctx, repo="huggingface/trl", path="README.md")
    sent = route.calls.last.request
    assert auth(sent) == f"Bearer {gh_token}"
    assert hf_token not in str(sent.headers)


def test_trusted_hosts_come_from_the_configured_endpoints() -> None:
    env = EnvSnapshot(
        {"HF_TOKEN": "t", "HF_ENDPOINT": "https://hub.internal:8443/", "GITHUB_API_URL": "https://ghe.co/api/v3"}
    )
    hub, gh = HubHTTP.from_env(env), GitHubHTTP.from_env(env)
    assert hub.trusted == {
        "https://hub.internal:8443",
        "https://datasets-server.huggingface.co",
        "https://huggingface.co",
    }
    assert hub.auth_headers("https://hub.internal:8443/api/models") == {"Authorization": "Bearer t"}
    assert hub.auth_headers("https://hub.internal.evil.com/api") == {}
    assert hub.auth_headers("http://huggingface.co.evil.com/") == {}
    assert gh.trusted == {"https://ghe.co"} and gh.token is None
    assert origin("HTTPS://HuggingFace.co:443/x") == "https://huggingface.co"


async def test_rate_limits_and_overloads_are_retried(ctx: ToolContext, api: respx.MockRouter) -> None:
    route = api.get(MODELS).mock(
        side_effect=[
            httpx.Response(429, headers={"RateLimit": '"api";r=0;t=0'}),
            httpx.Response(503),
            httpx.Response(200, json=[{"id": "a/b", "downloads": 5, "likes": 1}]),
        ]
    )
    result = await call(hub_search, ctx, query="b")
    assert route.call_count == 3 and result.output.startswith("a/b")


@pytest.mark.parametrize(
    ("response", "says"),
    [
        (httpx.Response(429, headers={"Retry-After": "3600"}), "rate limited by Hugging Face; wait 3600 s"),
        (httpx.Response(500, json={"error": "boom"}), "Hugging Face failed (500): boom; try again later"),
        (httpx.Response(200, text="<html>not json"), "malformed answer (not JSON)"),
        (httpx.Response(200, json={"models": []}), "unexpected answer for model search"),
    ],
)
async def test_failures_become_observations(
    ctx: ToolContext, api: respx.MockRouter, response: httpx.Response, says: str
) -> None:
    route = api.get(MODELS).mock(return_value=response)
    result = await call(hub_search, ctx, query="x")
    assert result.is_error and says in result.output
    assert route.call_count == 1  # a wait longer than MAX_WAIT is not waited for; 500 is not retried


async def test_network_errors_never_crash_a_turn(ctx: ToolContext, api: respx.MockRouter) -> None:
    api.get(MODELS).mock(side_effect=httpx.ConnectError("connection refused"))
    result = await call(hub_search, ctx)
    assert result.is_error and "could not reach https://huggingface.co" in result.output
    api.get(MODELS).mock(side_effect=httpx.ReadTimeout("slow"))
    result = await call(hub_search, ctx)
    assert result.is_error and "did not answer in time" in result.output


async def test_an_anonymous_client_says_which_variable_to_set(tmp_path, api: respx.MockRouter) -> None:  # type: ignore[no-untyped-def]
    from agent.tools.deps import Deps

    anon = HubHTTP.from_env(EnvSnapshot({}))
    ctx = ToolContext(tmp_path, tmp_path, {}, deps=Deps(given=[anon]))
    route = api.get(MODELS).respond(429)
    result = await call(hub_search, ctx)
    assert "no HF_TOKEN is set; a token raises the limit" in result.output
    assert auth(route.calls.last.request) is None
    await anon.aclose()


def test_research_families_import_no_http_stack() -> None:
    import subprocess
    import sys

    code = (
        "import sys, agent.tools.hub, agent.tools.datasets, agent.tools.papers, agent.tools.docs, agent.tools.github; "
        "print(sorted(m for m in ('httpx', 'huggingface_hub', 'litellm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


EVERY_TOOL = [
    ("hub_search", {}),
    ("hub_repo", {"repo_id": "o/m"}),
    ("hub_file", {"repo_id": "o/m", "path": "a.py"}),
    ("dataset_overview", {"dataset": "o/d"}),
    ("dataset_rows", {"dataset": "o/d", "config": "c", "split": "s", "offset": 3}),
    ("dataset_stats", {"dataset": "o/d", "config": "c", "split": "s"}),
    ("paper_search", {"query": "lora"}),
    ("paper_read", {"arxiv_id": "2106.09685"}),
    ("docs_search", {"query": "trainer"}),
    ("docs_read", {"page": "trl/index"}),
    ("github_search_code", {"query": "SFTConfig"}),
    ("github_read", {"repo": "o/r", "path": "a.py"}),
]
TEXT_TOOLS = {"hub_file", "docs_read"}
"""Tools that read text, where any body is a valid answer."""


@pytest.mark.parametrize(("name", "args"), EVERY_TOOL, ids=[n for n, _ in EVERY_TOOL])
@pytest.mark.parametrize(
    ("failure", "says"),
    [
        (httpx.Response(500, json={"error": "Internal Error"}), "500"),
        (httpx.Response(503, text="overloaded"), "503"),
        (httpx.Response(429, headers={"Retry-After": "120"}), "rate limit"),
        (httpx.Response(404, json={"error": "Not found"}), "not found|does not exist"),
        (httpx.Response(200, text="{truncated"), "malformed"),
        (httpx.ConnectError("connection reset"), "could not reach"),
    ],
    ids=["500", "503", "429", "404", "malformed", "network"],
)
async def test_every_tool_turns_every_failure_into_an_observation(
    ctx: ToolContext, api: respx.MockRouter, name: str, args: dict[str, object], failure: object, says: str
) -> None:
    from agent.tools.families import select

    tool = next(t for f in select(["hub", "datasets", "papers", "docs", "github"]) for t in f.tools if t.name == name)
    route = api.route()
    if isinstance(failure, httpx.Response):
        route.mock(return_value=failure)
    else:
        route.mock(side_effect=failure)
    result = await tool.run(ctx, args)
    if says == "malformed" and name in TEXT_TOOLS:
        assert not result.is_error and "{truncated" in result.output
        return
    assert result.is_error, result.output
    assert any(word in result.output.lower() for word in says.split("|")), result.output


async def test_an_unusable_url_is_an_observation(ctx: ToolContext, api: respx.MockRouter) -> None:
    result = await call(hub_file, ctx, repo_id="o/m", path="a\x00b.txt")
    assert result.is_error and "not a valid URL" in result.output
    assert not api.calls
