"""GitHub's OAuth web flow on the fake's web host, as GitHub documents it
("Authorizing OAuth apps"): outside the REST API, so outside the OpenAPI check.

``GET /login/oauth/authorize?client_id=…&redirect_uri=…&scope=…&state=…`` sends the
browser back to ``redirect_uri?code=…&state=…`` (the person signed in on the fake,
:attr:`OAuth.signed_in`, has already approved the app). ``POST
/login/oauth/access_token`` with ``client_id``, ``client_secret``, ``code`` and
``redirect_uri`` answers ``access_token=…&scope=…&token_type=bearer``, or JSON with
``Accept: application/json``; a bad code answers 200 with ``error=bad_verification_code``,
as GitHub does. A code works once.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

Answer = tuple[int, dict[str, str], Any]
AUTHORIZE = "/login/oauth/authorize"
ACCESS_TOKEN = "/login/oauth/access_token"
PATHS = (AUTHORIZE, ACCESS_TOKEN)
DOCS = "https://docs.github.com/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps"


@dataclass
class _Grant:
    login: str
    client_id: str
    redirect_uri: str
    scope: str


@dataclass
class OAuth:
    """OAuth apps by client id, who is signed in on the fake's web host, open codes."""

    add_token: Callable[[str, str], Any]  # (token, login): a user token the API accepts
    apps: dict[str, str] = field(default_factory=dict)  # client_id -> client_secret
    signed_in: str | None = None
    codes: dict[str, _Grant] = field(default_factory=dict)

    def handle(self, method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str], raw: bytes) -> Answer:
        if path == AUTHORIZE and method == "GET":
            return self._authorize(query)
        if path == ACCESS_TOKEN and method == "POST":
            form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            return self._access_token({**query, **form}, headers)
        return 404, {}, {"message": "Not Found"}

    def _authorize(self, query: dict[str, list[str]]) -> Answer:
        one = {key: values[-1] for key, values in query.items()}
        client_id, redirect_uri = one.get("client_id", ""), one.get("redirect_uri", "")
        if client_id not in self.apps or not redirect_uri.startswith(("http://", "https://")):
            return 404, {"content-type": "text/html"}, b"<h1>404: no such OAuth app</h1>"
        if self.signed_in is None:  # GitHub would show its sign-in form
            return 200, {"content-type": "text/html"}, b"<h1>Sign in to GitHub</h1>"
        code = secrets.token_hex(10)
        self.codes[code] = _Grant(self.signed_in, client_id, redirect_uri,
                                  one.get("scope", ""))
        back = {"code": code, **({"state": one["state"]} if "state" in one else {})}
        joiner = "&" if urlsplit(redirect_uri).query else "?"
        return 302, {"location": f"{redirect_uri}{joiner}{urlencode(back)}"}, None

    def _access_token(self, form: dict[str, list[str]], headers: dict[str, str]) -> Answer:
        one = {key: values[-1] for key, values in form.items()}
        grant = self.codes.pop(one.get("code", ""), None)
        if self.apps.get(one.get("client_id", "")) != one.get("client_secret") or \
                one.get("client_secret") is None:
            answer = {"error": "incorrect_client_credentials",
                      "error_description": "The client_id and/or client_secret passed are "
                                           "incorrect.", "error_uri": DOCS}
        elif grant is None or grant.client_id != one["client_id"] or (
                "redirect_uri" in one and one["redirect_uri"] != grant.redirect_uri):
            answer = {"error": "bad_verification_code",
                      "error_description": "The code passed is incorrect or expired.",
                      "error_uri": DOCS}
        else:
            token = "gho_" + secrets.token_hex(18)
            self.add_token(token, grant.login)
            answer = {"access_token": token, "scope": grant.scope, "token_type": "bearer"}
        if "application/json" in headers.get("accept", ""):
            return 200, {"content-type": "application/json; charset=utf-8"}, \
                json.dumps(answer).encode()
        return 200, {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}, \
            urlencode(answer).encode()
