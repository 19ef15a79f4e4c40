"""The pages' shared machinery: Jinja2 templates and static files shipped in the
package, the base layout's context, and the gate every page passes first
(:class:`~bot.web.auth.Access`): signed out with GitHub sign-in on → the sign-in
page; without sign-in configured → only loopback is answered."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from bot.web.auth import LOOPBACK_ONLY, Access, Viewer

HERE = Path(__file__).parent
HTMX = "htmx-2.0.11.min.js"  # vendored, see static/VERSIONS
# a page joins the header once it exists: no link leads nowhere
NAV = (("/", "Flows"), ("/runs", "Runs"), ("/schedules", "Schedules"),
       ("/replicas", "Replicas"))
NOT_HERE = "Not from here"

_env = Environment(loader=FileSystemLoader(HERE / "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   trim_blocks=True, lstrip_blocks=True)
_env.globals.update(static=lambda name: f"/static/{name}", htmx=HTMX, nav=NAV)


def static_files() -> StaticFiles:
    """``/static/…``: the stylesheet and the vendored htmx."""
    return StaticFiles(directory=HERE / "static")


def render(name: str, viewer: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
    """A template on the base layout as a response."""
    html = _env.get_template(name).render(viewer=viewer, **context)
    return HTMLResponse(html, status_code=status)


def message(viewer: Viewer | None, heading: str, text: str, status: int,
            link: tuple[str, str] | None = None) -> HTMLResponse:
    return render("message.html", viewer, status, heading=heading, message=text, link=link,
                  section=None)


def page_viewer(access: Access, request: Request) -> Viewer | Response:
    """The viewer of a page, or the answer to someone who may not look."""
    viewer = access.viewer(request.scope, request.scope.get("session"))
    if viewer is not None:
        return viewer
    if access.oauth:  # signed out: sign in, then come back here
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    return message(None, NOT_HERE, LOOPBACK_ONLY, 403)
