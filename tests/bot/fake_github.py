"""A local, stateful fake of the GitHub REST API the bot uses, over real HTTP, shaped like the documented bodies.

It checks App JWTs (RS256, against the App's public key) and installation tokens (with expiry), keeps issues'
comments and reactions, answers collaborator permissions, repositories and pull requests, serves git over smart HTTP
from local bare repositories (`git http-backend`, the installation token as Basic auth), injects 5xx and rate-limit
faults, and counts requests.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

FIXTURES = Path(__file__).parent / "fixtures"
APP_ID = 4242
SLUG = "ml-intern"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def new_key() -> tuple[rsa.RSAPrivateKey, str]:
    """A fresh App key (made at run time, never stored) and its PEM text."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key, pem


@dataclass
class Fault:
    """Answer matching requests with `status` (and headers) `times` times; `after` performs the request first."""

    method: str
    path: str
    """A regular expression matched against the path."""
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=lambda: {"message": "Server Error"})
    times: int = 1
    after: bool = False


@dataclass
class Call:
    method: str
    path: str
    auth: str
    status: int
    body: Any
    at: float = field(default_factory=time.monotonic)


class FakeGitHub:
    """Use as a context manager; `api_url` goes into GITHUB_API_URL."""

    def __init__(self, public_key: rsa.RSAPublicKey, *, app_id: int = APP_ID, slug: str = SLUG) -> None:
        self.public_key = public_key
        self.app_id = app_id
        self.slug = slug
        self.token_ttl = 3600.0
        self.permissions: dict[tuple[str, str], str] = {}
        """(repo, login) → admin | maintain | write | triage | read; anyone else gets `read`."""
        self.comments: dict[int, dict[str, Any]] = {}
        self.reactions: list[dict[str, Any]] = []
        self.repos: dict[str, Path] = {}
        """full name → its bare repository, served at `/git/<full name>.git`."""
        self.pulls: dict[str, list[dict[str, Any]]] = {}
        self.issues: dict[tuple[str, int], dict[str, Any]] = {}
        """(repo, number) → fields over the documented issue example (title, body...)."""
        self.tokens: dict[str, tuple[int, float]] = {}
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.lock = threading.Condition()
        self._ids = itertools.count(1001)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> FakeGitHub:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None and self._thread is not None
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def api_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # ---- what tests read ------------------------------------------------------------------------

    def thread_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(c) for c in self.comments.values() if (c["_repo"], c["_number"]) == (repo, number)]

    def reactions_on(self, kind: str, target: int) -> list[str]:
        with self.lock:
            return [r["content"] for r in self.reactions if (r["_kind"], r["_target"]) == (kind, target)]

    def count(self, method: str, pattern: str = "") -> int:
        with self.lock:
            return sum(1 for c in self.calls if c.method == method and re.search(pattern, c.path))

    def wait_until(self, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Block until `check()` is truthy (re-checked on every request); fail after `timeout`."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                self.lock.release()
                try:
                    value = check()
                finally:
                    self.lock.acquire()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting; calls so far: {[(c.method, c.path) for c in self.calls]}")
                self.lock.wait(min(left, 0.05))

    def add_comment(self, repo: str, number: int, body: str, login: str, *, app: bool = False) -> dict[str, Any]:
        """A comment as GitHub stores it (the documented shape, with our ids and author)."""
        comment = fixture("api/issue-comment.json")
        cid = next(self._ids)
        owner_url = f"https://api.github.com/repos/{repo}"
        comment.update(
            id=cid,
            body=body,
            url=f"{owner_url}/issues/comments/{cid}",
            html_url=f"https://github.com/{repo}/issues/{number}#issuecomment-{cid}",
            issue_url=f"{owner_url}/issues/{number}",
            performed_via_github_app={"id": self.app_id, "slug": self.slug} if app else None,
            _repo=repo,
            _number=number,
        )
        comment["user"] = dict(comment["user"], login=login, type="Bot" if app else "User")
        with self.lock:
            self.comments[cid] = comment
            self.lock.notify_all()
        return comment

    def add_repo(self, name: str, bare: Path) -> None:
        """Serve a bare repository as `name`; pushes are accepted, never non-fast-forward ones."""
        for key, value in (("http.receivepack", "true"), ("receive.denyNonFastForwards", "true")):
            subprocess.run(["git", "--git-dir", str(bare), "config", key, value], check=True)
        self.repos[name] = bare

    def add_pull(self, repo: str, number: int, head: str) -> dict[str, Any]:
        """An open PR `number` from branch `head` of the same repository (made from `main`) into `main`."""
        bare = self.repos[repo]
        subprocess.run(["git", "--git-dir", str(bare), "branch", "-f", head, "main"], check=True)
        subprocess.run(["git", "--git-dir", str(bare), "update-ref", f"refs/pull/{number}/head", head], check=True)
        pull = fixture("api/pull.json")
        pull.update(number=number, state="open", html_url=f"https://github.com/{repo}/pull/{number}")
        pull["head"] = dict(pull["head"], ref=head, label=f"{repo.split('/')[0]}:{head}")
        pull["head"]["repo"] = dict(pull["head"]["repo"], full_name=repo)
        pull["base"] = dict(pull["base"], ref="main")
        pull["_head"] = pull["head"]["label"]
        with self.lock:
            self.pulls.setdefault(repo, []).append(pull)
        return pull

    def git_url(self, name: str) -> str:
        return f"{self.api_url}/git/{name}.git"

    # ---- git over smart HTTP (called by the handler thread) ------------------------------------

    def git_auth_ok(self, auth: str) -> bool:
        """Git sends the installation token as Basic auth, user `x-access-token` (what GitHub documents)."""
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, token = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        held = self.tokens.get(token)
        return user == "x-access-token" and held is not None and held[1] >= time.time()

    def git_cgi(
        self, method: str, path: str, query: str, headers: Any, body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        """Run `git http-backend` for one request; returns its status, body and headers."""
        with self.lock:
            fault = self._fault(method, path)
            m = re.fullmatch(r"/git/([^/]+/[^/]+?)\.git(/.*)", path)
            bare = self.repos.get(m.group(1)) if m else None
            ok = self.git_auth_ok(str(headers.get("Authorization") or ""))
            status = fault.status if fault else 404 if bare is None else 200 if ok else 401
            self._log(method, path, headers, status, None, {})
        if fault is not None:
            return fault.status, b"fault", {}
        if bare is None or m is None:
            return 404, b"no such repository", {}
        if not ok:
            return 401, b"authentication required", {"WWW-Authenticate": 'Basic realm="GitHub"'}
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(bare.parent),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{bare.name}{m.group(2)}",
            "QUERY_STRING": query,
            "REQUEST_METHOD": method,
            "CONTENT_TYPE": str(headers.get("Content-Type") or ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_GIT_PROTOCOL": str(headers.get("Git-Protocol") or ""),
            "HTTP_CONTENT_ENCODING": str(headers.get("Content-Encoding") or ""),
        }
        done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        out: dict[str, str] = {}
        code = 200
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                code = int(value.split()[0])
            elif name:
                out[name] = value.strip()
        with self.lock:
            self.lock.notify_all()
        return code, payload, out

    def react_as(self, comment_id: int, login: str, content: str, *, user_type: str = "User") -> dict[str, Any]:
        """A person reacts to an issue comment in the web UI (GitHub sends no webhook for it)."""
        reaction = fixture("api/reaction.json")
        reaction.update(id=next(self._ids), content=content, created_at=_now())
        reaction.update(_kind="issue_comment", _target=comment_id)
        reaction["user"] = dict(reaction["user"], login=login, type=user_type)
        with self.lock:
            self.reactions.append(reaction)
            self.lock.notify_all()
        return reaction

    # ---- request handling (called by the handler thread) ---------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            fault = self._fault(method, path)
            if fault is not None and not fault.after:
                return self._log(method, path, headers, fault.status, fault.body, fault.headers)
            status, out, extra = self._route(method, path, query, headers, body)
            if fault is not None:
                return self._log(method, path, headers, fault.status, fault.body, fault.headers)
            return self._log(method, path, headers, status, out, extra)

    def _log(
        self, method: str, path: str, headers: Any, status: int, out: Any, extra: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        auth = str(headers.get("Authorization") or "").split(" ")[0]
        self.calls.append(Call(method, path, auth, status, out))
        self.lock.notify_all()
        return status, out, extra

    def _fault(self, method: str, path: str) -> Fault | None:
        for f in self.faults:
            if f.times > 0 and f.method == method and re.search(f.path, path):
                f.times -= 1
                return f
        return None

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        auth = str(headers.get("Authorization") or "")
        if path.startswith("/app"):
            if not self._jwt_ok(auth):
                return 401, {"message": "A JSON web token could not be decoded"}, {}
            if method == "GET" and path == "/app":
                app = fixture("api/app.json")
                app.update(id=self.app_id, slug=self.slug, name="ML Intern")
                return 200, app, {}
            m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
            if method == "POST" and m:
                token = "ghs_" + secrets.token_hex(18)
                expires = time.time() + self.token_ttl
                self.tokens[token] = (int(m.group(1)), expires)
                out = fixture("api/installation-token.json")
                out.update(token=token, expires_at=datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
                return 201, out, {}
            return 404, {"message": "Not Found"}, {}
        scheme, _, token = auth.partition(" ")
        held = self.tokens.get(token) if scheme.lower() in ("token", "bearer") else None
        if held is None or held[1] < time.time():
            return 401, {"message": "Bad credentials"}, {}
        return self._repo_route(method, path, query, body, headers)

    def _repo_route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, headers: Any
    ) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/collaborators/([^/]+)/permission", path)
        if m and method == "GET":
            level = self.permissions.get((m.group(1), m.group(2)), "read")
            out = fixture("api/permission.json")
            base = {"maintain": "write", "triage": "read"}.get(level, level)
            out.update(permission=base, role_name=level)
            out["user"] = dict(out["user"], login=m.group(2))
            return 200, out, {}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments", path)
        if m and method == "POST":
            if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                return 422, {"message": "Invalid request.", "errors": [{"field": "body", "code": "missing_field"}]}, {}
            if len(body["body"]) > 65536:
                return 422, {"message": "Body is too long (maximum is 65536 characters)"}, {}
            c = self.add_comment(m.group(1), int(m.group(2)), body["body"], f"{self.slug}[bot]", app=True)
            return 201, _public(c), {"Location": c["url"]}
        if m and method == "GET":
            return self._page(m.group(1), int(m.group(2)), query)
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)", path)
        if m:
            comment = self.comments.get(int(m.group(2)))
            if comment is None or comment["_repo"] != m.group(1):
                return 404, {"message": "Not Found"}, {}
            if method == "PATCH":
                if len(str(body.get("body", ""))) > 65536:
                    return 422, {"message": "Body is too long (maximum is 65536 characters)"}, {}
                comment["body"] = body["body"]
                comment["updated_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return 200, _public(comment), {}
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)/issues/(\d+)", path)
        if m and method == "GET":
            issue = fixture("api/issue.json")
            issue.update(self.issues.get((m.group(1), int(m.group(2))), {}), number=int(m.group(2)))
            return 200, issue, {}
        if re.fullmatch(r"/repos/([^/]+/[^/]+)(/pulls(/\d+)?)?", path):
            return self._pulls_route(method, path, query, body)
        for kind, pattern in (
            ("issue", r"/repos/([^/]+/[^/]+)/issues/(\d+)/reactions"),
            ("issue_comment", r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)/reactions"),
            ("review_comment", r"/repos/([^/]+/[^/]+)/pulls/comments/(\d+)/reactions"),
        ):
            m = re.fullmatch(pattern, path)
            if m and method == "POST":
                return self._react(kind, int(m.group(2)), str((body or {}).get("content")))
            if m and method == "GET":
                return self._reactions(kind, int(m.group(2)), query, headers)
        return 404, {"message": "Not Found"}, {}

    def _pulls_route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"/repos/([^/]+/[^/]+)(/pulls(?:/(\d+))?)?", path)
        assert m is not None
        repo, pulls, number = m.group(1), m.group(2), m.group(3)
        if repo not in self.repos:
            return 404, {"message": "Not Found"}, {}
        if method == "GET" and not pulls:
            out = fixture("api/repo.json")
            owner, name = repo.split("/")
            out.update(name=name, full_name=repo, default_branch="main", clone_url=self.git_url(repo), private=True)
            out["owner"] = dict(out["owner"], login=owner)
            return 200, out, {}
        mine = self.pulls.setdefault(repo, [])
        if method == "GET" and number:
            found = [p for p in mine if p["number"] == int(number)]
            return (200, _public(found[0]), {}) if found else (404, {"message": "Not Found"}, {})
        if method == "GET":
            head = query.get("head", [""])[0]
            state = query.get("state", ["open"])[0]
            return (
                200,
                [_public(p) for p in mine if (not head or p["_head"] == head) and state in ("all", p["state"])],
                {},
            )
        if method == "POST" and not number:
            return self._create_pull(repo, body if isinstance(body, dict) else {})
        return 404, {"message": "Not Found"}, {}

    def _create_pull(self, repo: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        missing = [f for f in ("title", "head", "base") if not isinstance(body.get(f), str)]
        if missing:
            return 422, {"message": "Validation Failed", "errors": [{"field": missing[0], "code": "missing_field"}]}, {}
        owner = repo.split("/")[0]
        head = body["head"] if ":" in body["head"] else f"{owner}:{body['head']}"
        bare = self.repos[repo]
        for ref in (head.split(":", 1)[1], body["base"]):
            known = subprocess.run(
                ["git", "--git-dir", str(bare), "rev-parse", "--verify", "-q", f"refs/heads/{ref}"],
                capture_output=True,
                check=False,
            )
            if known.returncode != 0:
                return 422, {"message": "Validation Failed", "errors": [{"field": "head", "code": "invalid"}]}, {}
        if any(p["_head"] == head and p["state"] == "open" for p in self.pulls[repo]):
            message = f"A pull request already exists for {head}."
            return 422, {"message": "Validation Failed", "errors": [{"code": "custom", "message": message}]}, {}
        out = fixture("api/pull.json")
        number = 100 + sum(len(v) for v in self.pulls.values())
        out.update(
            number=number,
            title=body["title"],
            body=body.get("body"),
            draft=bool(body.get("draft")),
            state="open",
            html_url=f"https://github.com/{repo}/pull/{number}",
            url=f"{self.api_url}/repos/{repo}/pulls/{number}",
            _head=head,
        )
        out["head"] = dict(out["head"], ref=head.split(":", 1)[1], label=head)
        out["base"] = dict(out["base"], ref=body["base"])
        self.pulls[repo].append(out)
        return 201, _public(out), {"Location": out["url"]}

    def _reactions(
        self, kind: str, target: int, query: dict[str, list[str]], headers: Any
    ) -> tuple[int, Any, dict[str, str]]:
        """The list endpoint: optional `content` filter, pages of `per_page`, and an ETag; a matching
        `If-None-Match` gets 304 with no body."""
        content = query.get("content", [None])[0]
        items = [
            _public(r)
            for r in self.reactions
            if (r["_kind"], r["_target"]) == (kind, target) and (content is None or r["content"] == content)
        ]
        per_page = min(100, int(query.get("per_page", ["30"])[0]))
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        etag = '"' + hashlib.sha256(json.dumps([chunk, page, per_page]).encode()).hexdigest()[:32] + '"'
        if str(headers.get("If-None-Match") or "") == etag:
            return 304, None, {"ETag": etag}
        return 200, chunk, {"ETag": etag}

    def _page(self, repo: str, number: int, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        per_page = min(100, int(query.get("per_page", ["30"])[0]))
        page = int(query.get("page", ["1"])[0])
        items = [_public(c) for c in self.comments.values() if (c["_repo"], c["_number"]) == (repo, number)]
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            headers["Link"] = (
                f"<{self.api_url}/repos/{repo}/issues/{number}/comments?per_page={per_page}&page={page + 1}>;"
                ' rel="next"'
            )
        return 200, chunk, headers

    def _react(self, kind: str, target: int, content: str) -> tuple[int, Any, dict[str, str]]:
        if content not in ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"):
            return 422, {"message": "Validation Failed"}, {}
        reaction = fixture("api/reaction.json")
        reaction.update(content=content)
        reaction["user"] = dict(reaction["user"], login=f"{self.slug}[bot]", type="Bot")
        existing = [r for r in self.reactions if (r["_kind"], r["_target"], r["content"]) == (kind, target, content)]
        if existing:
            return 200, _public(existing[0]), {}
        reaction.update(id=next(self._ids), created_at=_now(), _kind=kind, _target=target)
        self.reactions.append(reaction)
        return 201, _public(reaction), {}

    def _jwt_ok(self, auth: str) -> bool:
        scheme, _, token = auth.partition(" ")
        if scheme != "Bearer" or token.count(".") != 2:
            return False
        head, payload, signature = token.split(".")
        try:
            self.public_key.verify(_unb64(signature), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(payload))
        except (InvalidSignature, ValueError):
            return False
        now = time.time()
        return (
            header.get("alg") == "RS256"
            and str(claims.get("iss")) == str(self.app_id)
            and claims.get("iat", now + 999) <= now + 1
            and now < claims.get("exp", 0) <= now + 600 + 1
        )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _git(self, url: Any, raw: bytes) -> None:
        status, data, headers = self.fake.git_cgi(self.command, url.path, url.query, self.headers, raw)
        self.send_response(status)
        headers.setdefault("Content-Type", "text/plain")
        headers.pop("Content-Length", None)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self) -> None:
        url = urlsplit(self.path)
        raw = self._read()
        if url.path.startswith("/git/"):
            self._git(url, raw)
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        status, out, extra = self.fake.handle(self.command, url.path, parse_qs(url.query), self.headers, body)
        data = b"" if status == 304 else json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        reset = str(int(time.time()) + 3600)
        for name, value in {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": reset,
            **extra,
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve
