"""A fake GitHub REST API over real HTTP, for tests.

Every request is checked against the vendored OpenAPI subset (unknown endpoint
→ 404, invalid parameter or body → 422, both recorded as violations), then
authenticated (token or Bearer; the App endpoints want an RS256 JWT), then
answered from :class:`~tests.fakegithub.state.State`. Faults can be injected
per path, and every request is recorded for assertions.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

from tests.fakegithub import oauth, routes
from tests.fakegithub.openapi import Checker, RequestRejected
from tests.fakegithub.state import App, Identity, Repo, State

_STORAGE = "/storage"  # where attachment links redirect (GitHub's storage host)
SECONDARY_RATE_LIMIT = ("You have exceeded a secondary rate limit. "
                        "Please wait a few minutes before you try again.")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int = 0
    login: str | None = None


@dataclass
class Violation:
    method: str
    path: str
    status: int
    message: str


@dataclass
class Fault:
    path: re.Pattern[str]
    method: str | None
    remaining: int
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class FakeGitHub:
    """The server plus the helpers tests use to arrange and inspect it."""

    def __init__(self, prefix: str = "") -> None:
        """``prefix`` serves the API under a path, as GitHub Enterprise does (``/api/v3``)."""
        self.prefix = prefix.rstrip("/")
        self.state = State()
        self.requests: list[RecordedRequest] = []
        self.violations: list[Violation] = []
        self._faults: list[Fault] = []
        self.attachments: dict[str, bytes] = {}  # web path -> bytes (not API paths)
        self.oauth = oauth.OAuth(add_token=lambda token, login: self.add_token(token, login))
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{self.prefix}"

    def start(self) -> FakeGitHub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- arranging --------------------------------------------------------

    def add_repo(self, full_name: str, *, default_branch: str = "main",
                 private: bool = False) -> Repo:
        return self.state.add_repo(full_name, default_branch=default_branch, private=private)

    def add_collaborator(self, full_name: str, login: str, permission: str) -> None:
        repo = self._repo(full_name)
        with self.state.lock:
            repo.collaborators[login] = permission
            self.state.user_id(login)

    def add_token(self, token: str, login: str = "flowbot", kind: str = "User") -> Identity:
        return self.state.add_token(token, login, kind)

    def add_app(self, app_id: int, public_key_pem: bytes, slug: str = "flowbot") -> App:
        with self.state.lock:
            app = App(app_id, slug, public_key_pem)
            self.state.apps[app_id] = app
            return app

    def add_installation(self, app_id: int, installation_id: int) -> None:
        with self.state.lock:
            self.state.apps[app_id].installations.add(installation_id)

    def add_pull(self, full_name: str, *, head_sha: str, head_ref: str = "feature",
                 user: str = "octocat", title: str = "A change", fork: bool = False) -> int:
        repo = self._repo(full_name)
        head_repo = f"{user}/{repo.name}" if fork else repo.full_name
        pull = {"head_sha": head_sha, "head_ref": head_ref, "head_repo": head_repo,
                "base_ref": repo.default_branch}
        return self.state.add_issue(repo, title, "", user, pull=pull).number

    def add_issue(self, full_name: str, title: str, body: str = "", user: str = "octocat",
                  labels: list[str] | None = None) -> int:
        return self.state.add_issue(self._repo(full_name), title, body, user, labels).number

    def add_oauth_app(self, client_id: str, client_secret: str) -> None:
        """An OAuth App people sign in to (the web flow on ``/login/oauth/…``)."""
        self.oauth.apps[client_id] = client_secret

    def sign_in_as(self, login: str | None) -> None:
        """Who the browser is signed in to GitHub as (None: nobody)."""
        if login is not None:
            with self.state.lock:
                self.state.user_id(login)
        self.oauth.signed_in = login

    @property
    def web_url(self) -> str:
        """The web host (OAuth, attachments): the server without the API prefix."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(self, path: str, count: int = 1, *, status: int = 502,
                  method: str | None = None, body: dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None) -> None:
        """The next ``count`` requests whose path matches the regex ``path`` get ``status``."""
        fault = Fault(re.compile(path), method and method.upper(), count, status,
                      body or {"message": "Server Error"}, dict(headers or {}))
        with self._lock:
            self._faults.append(fault)

    def start_outage(self, path: str = r".*", *, status: int = 500,
                     method: str | None = None) -> None:
        """Every request whose path matches the regex ``path`` gets ``status`` until
        :meth:`end_outage`: GitHub having a bad minute, however many requests come."""
        self.fail_next(path, sys.maxsize, status=status, method=method)

    def end_outage(self) -> None:
        """Stop every injected fault (outages and the rest of ``fail_next`` counts)."""
        with self._lock:
            self._faults.clear()

    def rate_limit_next(self, path: str, count: int = 1, *,
                        retry_after: str | None = "0", method: str | None = None) -> None:
        """A 403 secondary rate limit, as GitHub sends it, for the next ``count`` requests."""
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        body = {"message": SECONDARY_RATE_LIMIT,
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits"}
        self.fail_next(path, count, status=403, method=method, body=body, headers=headers)

    def add_attachment(self, name: str, data: bytes, *, repo: str | None = None) -> str:
        """A file "dropped into a comment": its URL on the web host (outside the API
        prefix), ``/user-attachments/files/<id>/<name>`` or, with ``repo``,
        ``/<owner>/<repo>/files/<id>/<name>``. Fetching it needs a known token and
        redirects, as GitHub does, to a storage path that refuses credentials."""
        file_id = self.state.next_id()
        path = f"/{repo}/files/{file_id}/{name}" if repo else \
            f"/user-attachments/files/{file_id}/{name}"
        with self._lock:
            self.attachments[path] = data
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    # -- inspecting -------------------------------------------------------

    def requests_to(self, method: str, path_regex: str) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        return [r for r in self.requests
                if r.method == method.upper() and pattern.fullmatch(r.path)]

    def statuses(self, full_name: str, sha: str) -> list[dict[str, Any]]:
        return list(self._repo(full_name).statuses.get(sha, []))

    def comments(self, full_name: str, issue_number: int) -> list[str]:
        return [c.body for c in self.state.comments_on(self._repo(full_name), issue_number)]

    def _repo(self, full_name: str) -> Repo:
        owner, name = full_name.split("/")
        repo = self.state.repo(owner, name)
        if repo is None:
            raise KeyError(f"the fake has no repository {full_name}; add_repo it first")
        return repo

    # -- serving ----------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str],
               raw: bytes) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        if self.prefix and path.startswith(self.prefix + "/"):
            path = path[len(self.prefix):]  # Enterprise-style base path
        query = parse_qs(parts.query, keep_blank_values=True)
        record = RecordedRequest(method, path, query, None)
        with self._lock:
            self.requests.append(record)
        if path in oauth.PATHS:  # GitHub's web host, not the API
            status, extra, payload = self.oauth.handle(method, path, query, headers, raw)
        elif path in self.attachments or path.startswith(_STORAGE):  # web paths, not the API
            status, extra, payload = self._attachment(record, headers)
        else:
            status, extra, payload = self._answer(record, headers, raw)
        record.status = status
        return status, extra, payload

    def _answer(self, record: RecordedRequest, headers: dict[str, str],
                raw: bytes) -> tuple[int, dict[str, str], Any]:
        try:
            record.body = json.loads(raw) if raw.strip() else None
        except ValueError:
            return self._violation(record, 400, "Problems parsing JSON")
        try:
            match = Checker.shared().check(record.method, record.path, record.query, record.body)
        except RequestRejected as exc:
            return self._violation(record, exc.status, exc.message)
        fault = self._take_fault(record)
        if fault is not None:
            return fault.status, fault.headers, fault.body
        is_app = match.operation.template.startswith("/app")
        identity = self._authenticate(headers.get("authorization", ""), is_app)
        if identity is None:
            return 401, {}, {"message": "Bad credentials",
                             "documentation_url": "https://docs.github.com/rest"}
        record.login = identity.login
        ctx = routes.Context(self.state, match.path_params, record.query, record.body,
                             identity, self.url, record.path)
        status, payload = routes.dispatch(record.method, match.operation.template, ctx)
        if identity.scopes is not None:  # GitHub lists a classic token's scopes on every answer
            ctx.headers["X-OAuth-Scopes"] = identity.scopes
        problem = Checker.shared().check_response(match.operation, status, payload)
        if problem is not None:  # the fake itself strayed from GitHub's shapes
            with self._lock:
                self.violations.append(Violation(record.method, record.path, status,
                                                 f"fake answered wrongly: {problem}"))
        return status, ctx.headers, payload

    def _attachment(self, record: RecordedRequest,
                    headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """An attachment link answers a redirect to storage; storage answers the bytes
        (with a misleading content type: flowbot must not trust it)."""
        if record.path.startswith(_STORAGE):
            if "authorization" in headers:  # as S3 does with a signed URL plus a token
                return 400, {}, {"message": "Only one auth mechanism allowed"}
            data = self.attachments.get(record.path[len(_STORAGE):])
            if data is None:
                return 404, {}, {"message": "Not Found"}
            return 200, {"content-type": "image/png"}, data
        if self._authenticate(headers.get("authorization", ""), False) is None:
            return 404, {}, {"message": "Not Found"}  # GitHub hides private attachments
        return 302, {"location": f"{_STORAGE}{record.path}?X-Amz-Signature=s"}, None

    def _violation(self, record: RecordedRequest, status: int,
                   message: str) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.violations.append(Violation(record.method, record.path, status, message))
        title = "Not Found" if status == 404 else "Validation Failed"
        return status, {}, {"message": title, "errors": [message],
                            "documentation_url": "https://docs.github.com/rest"}

    def _take_fault(self, record: RecordedRequest) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.path.search(record.path) and (
                        fault.method in (None, record.method)):
                    fault.remaining -= 1
                    return fault
        return None

    def _authenticate(self, header: str, is_app: bool) -> Identity | None:
        scheme, _, credential = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not credential:
            return None  # anonymous: flowbot always authenticates
        if is_app:
            return self._app_identity(credential)
        identity = self.state.tokens.get(credential)
        if identity is None:
            return None  # unknown token
        if identity.expires_at is not None and identity.expires_at <= datetime.now(UTC):
            return None  # expired installation token
        return identity

    def _app_identity(self, token: str) -> Identity | None:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            app = self.state.apps.get(int(unverified.get("iss", 0)))
            if app is None:
                return None  # no such app
            jwt.decode(token, app.public_key_pem, algorithms=["RS256"],
                       options={"require": ["iat", "exp", "iss"]})
        except (jwt.PyJWTError, ValueError, TypeError):
            return None  # not a JWT, wrong key, expired
        return Identity(app.slug, "App", installation_id=None)


def _handler_for(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = fake.handle(self.command, self.path, headers, raw)
            data = payload if isinstance(payload, bytes) else \
                b"" if payload is None else json.dumps(payload).encode()
            kind = extra.pop("content-type", "application/json; charset=utf-8")
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are recorded, not printed

    return Handler
