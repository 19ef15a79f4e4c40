"""Docker image references and memory sizes, checked without a registry.

The grammar follows distribution/reference:
``[registry[:port]/]path[:tag][@algorithm:hex]`` where path components are
lowercase alphanumerics joined by ``.``, ``_``, ``__`` or dashes.
"""

from __future__ import annotations

import re

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = (
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
)
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_MEMORY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([kmgKMG]?)$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}

MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses smaller limits

BAD_IMAGE = (
    '"{image}" is not a valid image reference; write it like busybox:latest, '
    "python:3.11-slim or registry.example.com:5000/team/tool:1.2"
)
UPPERCASE_IMAGE = '"{image}": image names must be lowercase (the tag may have capitals)'
SPACE_IMAGE = '"{image}": image references cannot contain spaces'
LONG_IMAGE = '"{image}": image names may be at most 255 characters'
SMALL_MEMORY = '"{memory}" is below 6m, the smallest memory limit Docker accepts'


def image_problem(image: str) -> str | None:
    """None if ``image`` is a well-formed reference, else what is wrong with it."""
    match = _REFERENCE.match(image)
    if match is not None:
        name = (match.group("domain") or "") + match.group("path")
        return LONG_IMAGE.format(image=image) if len(name) > 255 else None
    if any(c.isspace() for c in image):
        return SPACE_IMAGE.format(image=image)
    if _REFERENCE.match(_lower_name(image)):
        return UPPERCASE_IMAGE.format(image=image)
    return BAD_IMAGE.format(image=image)


def _lower_name(image: str) -> str:
    """``image`` with its repository path lowercased, tag and digest untouched."""
    name, at, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon].lower() + name[colon:] + at + digest
    return name.lower() + at + digest


def memory_bytes(text: str) -> int | None:
    """Bytes in a Docker memory size such as ``512m``; None if malformed."""
    match = _MEMORY.match(text)
    if match is None:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def memory_problem(text: str) -> str | None:
    size = memory_bytes(text)
    if size is not None and size < MIN_MEMORY:
        return SMALL_MEMORY.format(memory=text)
    return None
