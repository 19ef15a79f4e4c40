"""Which links a file input accepts from a /run comment (pure): only file
attachments on the configured GitHub web host, whatever else a comment holds."""

from __future__ import annotations

import pytest

from bot.handlers.attachments import attachment_path_ok, link_in, web_base


@pytest.mark.parametrize(("api", "web"), [
    ("https://api.github.com", "https://github.com"),
    ("https://api.github.com/", "https://github.com"),
    ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
    ("https://api.acme.ghe.com", "https://acme.ghe.com"),
    ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
])
def test_the_web_host_follows_the_api_url(api: str, web: str) -> None:
    assert web_base(api) == web


def test_links_are_read_bare_in_angle_brackets_or_as_markdown() -> None:
    url = "https://github.com/user-attachments/files/123/data.csv"
    assert link_in(url) == url
    assert link_in(f"<{url}>") == url
    assert link_in(f"[data.csv]({url})") == url
    assert link_in("@reports/2026-11.csv") is None
    assert link_in("data.csv") is None


@pytest.mark.parametrize(("url", "ok"), [
    ("https://github.com/user-attachments/files/123/data.csv", True),
    ("https://github.com/octo/flows/files/123/data.csv", True),
    ("https://github.com/other/repo/files/123/data.csv", False),
    ("https://github.com/user-attachments/assets/123", False),
    ("http://github.com/user-attachments/files/123/data.csv", False),
    ("https://github.com.evil.example/user-attachments/files/1/a.csv", False),
    ("https://objects.githubusercontent.com/user-attachments/files/1/a.csv", False),
    ("https://github.com/user-attachments/files/123/data.csv?redirect=x", False),
    ("https://me@github.com/user-attachments/files/123/data.csv", False),
    ("https://github.com/user-attachments/files/123/../../x", False),
])
def test_only_attachment_paths_on_the_web_host_are_accepted(url: str, ok: bool) -> None:
    assert attachment_path_ok(url, "https://github.com", "octo/flows") is ok
