"""Files attached to a ``/run`` comment, for file inputs.

GitHub turns a file dropped into a comment into a link
(``https://github.com/user-attachments/files/<id>/<name>``, or on older and
Enterprise hosts ``https://HOST/<owner>/<repo>/files/<id>/<name>``), usually as
markdown ``[name](url)``. Only such links on the configured GitHub web host are
accepted (the host is derived from ``FLOWBOT_GITHUB_API_URL``). The download
sends the bot's token to that link only; GitHub answers with a redirect to its
storage host, which is followed without credentials (at most
:data:`MAX_REDIRECTS`, https only). Size (``FLOWBOT_INPUT_FILE_MAX_BYTES``) and
time (:data:`DOWNLOAD_SECONDS`) are capped, and the content type is ignored.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from runner.errors import InputError
from runner.running.inputs import FileSource

MAX_REDIRECTS = 3
DOWNLOAD_SECONDS = 60.0  # the whole download, redirects included
_MARKDOWN = re.compile(r"^!?\[[^\]]*\]\((?P<url>[^()\s]+)\)$")
_NAME = re.compile(r"[^A-Za-z0-9._-]")
NOT_ATTACHMENT = ("{url} is not a file attached on {host}: attach the file to the /run "
                  "comment (a {host}/user-attachments/files/… link) or give @path of a "
                  "file in the repository")
DOWNLOAD_FAILED = "could not download the attached file {url}: {reason}"
TOO_LARGE = ("the attached file {url} is larger than {limit:,} bytes, the most a file "
             "input may hold (FLOWBOT_INPUT_FILE_MAX_BYTES)")


def web_base(api_url: str) -> str:
    """The GitHub web origin for an API URL: ``https://api.github.com`` →
    ``https://github.com``; Enterprise ``https://HOST/api/v3`` → ``https://HOST``."""
    parts = urlsplit(api_url.rstrip("/"))
    host = parts.netloc
    if not parts.path.rstrip("/").endswith("/api/v3") and host.startswith("api."):
        host = host[len("api."):]  # api.github.com, api.SUBDOMAIN.ghe.com
    return f"{parts.scheme}://{host}"


def link_in(value: str) -> str | None:
    """The URL a value holds as a link (bare, ``<url>`` or markdown), else None."""
    text = value.strip()
    match = _MARKDOWN.match(text)
    if match is not None:
        text = match.group("url")
    text = text.removeprefix("<").removesuffix(">")
    return text if re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE) else None


def attachment_path_ok(url: str, web: str, repo: str) -> bool:
    """``url`` is a file attachment on the web origin ``web`` (of ``repo``, or a user's)."""
    parts, origin = urlsplit(url), urlsplit(web)
    if (parts.scheme, parts.netloc.lower()) != (origin.scheme, origin.netloc.lower()):
        return False  # another host: never fetched
    if parts.query or parts.fragment or parts.username:
        return False
    owner, _, name = repo.partition("/")
    shapes = (r"/user-attachments/files/\d+/[^/]+",
              rf"/{re.escape(owner)}/{re.escape(name)}/files/\d+/[^/]+")
    return any(re.fullmatch(shape, parts.path, re.IGNORECASE) for shape in shapes)


def fetch(name: str, url: str, *, web: str, repo: str, token: str, folder: Path,
          max_bytes: int) -> FileSource:
    """Download the attachment ``url`` for input ``name`` into ``folder``.
    Raises :class:`InputError` naming the input for a link that is not an
    attachment, a failed download, or a file over ``max_bytes``."""
    if not attachment_path_ok(url, web, repo):
        raise InputError(name, NOT_ATTACHMENT.format(url=url, host=web))
    target = folder / f"{name}-{_NAME.sub('_', url.rsplit('/', 1)[-1])[:100]}"
    deadline = time.monotonic() + DOWNLOAD_SECONDS
    headers = {"Authorization": f"token {token}"} if token else {}
    try:
        with httpx.Client(follow_redirects=False, timeout=10.0, trust_env=False) as client:
            _download(client, url, headers, target, max_bytes, deadline)
    except httpx.HTTPError as exc:
        reason = type(exc).__name__  # never the request (it may carry a signed URL)
        raise InputError(name, DOWNLOAD_FAILED.format(url=url, reason=reason)) from None
    except _TooLarge:
        raise InputError(name, TOO_LARGE.format(url=url, limit=max_bytes)) from None
    except _Refused as exc:
        raise InputError(name, DOWNLOAD_FAILED.format(url=url, reason=exc)) from None
    return FileSource(label=url, local=target)


class _TooLarge(Exception):
    pass


class _Refused(Exception):
    pass


def _download(client: httpx.Client, url: str, headers: dict[str, str], target: Path,
              max_bytes: int, deadline: float) -> None:
    for _hop in range(MAX_REDIRECTS + 1):
        with client.stream("GET", url, headers=headers) as answer:
            if answer.is_redirect:
                location = urljoin(url, answer.headers.get("location", ""))
                if urlsplit(location).scheme != "https" and not _same_origin(location, url):
                    raise _Refused("redirected to a non-https address")
                url, headers = location, {}  # the token goes to GitHub's link only
                continue
            if answer.status_code != 200:
                raise _Refused(f"HTTP {answer.status_code}")
            declared = answer.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _TooLarge
            _save(answer, target, max_bytes, deadline)
            return
    raise _Refused(f"more than {MAX_REDIRECTS} redirects")


def _save(answer: httpx.Response, target: Path, max_bytes: int, deadline: float) -> None:
    size = 0
    with target.open("wb") as out:
        for chunk in answer.iter_bytes(65536):
            size += len(chunk)
            if size > max_bytes:
                raise _TooLarge
            if time.monotonic() > deadline:
                raise _Refused(f"took longer than {DOWNLOAD_SECONDS:g}s")
            out.write(chunk)


def _same_origin(first: str, second: str) -> bool:
    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)
