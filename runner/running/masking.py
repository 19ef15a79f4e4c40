"""Mask secret values in text and log streams before anything is written or shown.

A value is masked when it has at least :data:`MIN_SECRET_LENGTH` non-blank characters
(shorter values such as ``"1"`` or ``"no"`` would blank out ordinary text and
hide nothing worth hiding). Each value is masked in the forms a task is likely
to print it in:

* as is, and each line of a multi-line value (a PEM key printed line by line),
  these lines also URL- and JSON-encoded;
* base64, standard and URL-safe, padded and unpadded, also wrapped across lines
  the way ``base64`` wraps at 76 columns; plus the part of the encoding that is
  fixed whatever bytes precede it (the three alignment offsets), so the value is
  caught inside a longer base64 blob;
* URL-encoded (``quote`` with and without ``/`` safe, ``quote_plus``);
* JSON-escaped (ASCII-only and not).

Every occurrence becomes :data:`MASK`. Pure: no I/O.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 3
# An encoded fragment shorter than this is too likely to occur by chance.
_MIN_CORE_LENGTH = 4
_LINE_BREAK = r"(?:\r?\n)?"


def _base64_cores(raw: bytes) -> set[str]:
    """Base64 text fixed by ``raw`` alone when it starts at byte offset 0, 1 or 2."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start = -(-8 * offset // 6)  # first character built only from raw's bits
        end = 8 * (offset + len(raw)) // 6  # last such character, exclusive
        core = encoded[start:end]
        if len(core) >= _MIN_CORE_LENGTH:
            cores.add(core)
    return cores


def _base64_forms(value: str) -> set[str]:
    raw = value.encode()
    padded = base64.b64encode(raw).decode()
    standard = {padded, padded.rstrip("="), *_base64_cores(raw)}
    url_safe = {form.replace("+", "-").replace("/", "_") for form in standard}
    return standard | url_safe


def _plain_forms(value: str) -> set[str]:
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    if "\n" in value:
        forms.add(value.replace("\r\n", "\n").replace("\n", "\r\n"))
    return forms


def _wrapped(form: str) -> str:
    """Pattern for a base64 form that may be broken across lines at any point."""
    return _LINE_BREAK.join(re.escape(char) for char in form)


class Masker:
    """Replaces every secret value (and its encoded forms) with :data:`MASK`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        plain: set[str] = set()
        encoded: set[str] = set()
        for value in secrets:
            if len(value.strip()) < MIN_SECRET_LENGTH:
                continue  # too short to mask without blanking ordinary text
            plain |= _plain_forms(value)
            encoded |= _base64_forms(value)
            lines = value.splitlines()
            for line in lines if len(lines) > 1 else ():
                # Lines are printed as they are (cat key.pem); their own base64
                # variants would multiply the pattern for little gain.
                if len(line.strip()) >= MIN_SECRET_LENGTH:
                    plain |= _plain_forms(line)
        plain = {form for form in plain if form}
        encoded -= plain  # already matched literally
        # Longest first: at one position the regex takes the first alternative.
        alternatives = sorted(
            [(len(form), re.escape(form)) for form in plain]
            + [(len(form), _wrapped(form)) for form in encoded],
            key=lambda item: (-item[0], item[1]),  # deterministic: re caches the compile
        )
        self.max_match = max(
            [len(form.encode()) for form in plain] + [3 * len(form) for form in encoded],
            default=0,
        )
        self._text: re.Pattern[str] | None = None
        self._bytes: re.Pattern[bytes] | None = None
        if alternatives:
            pattern = "|".join(alt for _, alt in alternatives)
            self._text = re.compile(pattern)
            self._bytes = re.compile(pattern.encode())

    def __bool__(self) -> bool:
        return self._text is not None

    def mask(self, text: str) -> str:
        """``text`` with every secret form replaced by :data:`MASK`."""
        if self._text is None:
            return text  # no secrets: nothing to do
        return self._text.sub(MASK, text)

    def mask_bytes(self, data: bytes) -> bytes:
        """As :meth:`mask`, on UTF-8 bytes (no decoding, so split characters are safe)."""
        if self._bytes is None:
            return data  # no secrets: nothing to do
        return self._bytes.sub(MASK.encode(), data)

    def matches(self, data: bytes) -> Iterable[re.Match[bytes]]:
        """Non-overlapping leftmost matches in ``data`` (used by :class:`StreamMasker`)."""
        if self._bytes is None:
            return ()
        return self._bytes.finditer(data)


class StreamMasker:
    """Masks a byte stream that arrives in arbitrary chunks.

    It holds back the last ``max_match - 1`` bytes of what it has seen, so a
    secret split across chunks is still masked; any match that starts before the
    held-back tail is complete and identical to masking the whole stream at once.
    It scans only once the buffer holds twice that, so the cost stays linear with
    small chunks. The price is latency: up to ``2 * (max_match - 1)`` bytes (a
    few hundred for a token, ~20 kB for a PEM key) wait for more output or
    :meth:`flush` at the end of the stream.
    """

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._hold = max(masker.max_match - 1, 0)
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        """Masked bytes that are safe to emit now (possibly empty)."""
        self._buffer += chunk
        if not self._masker:
            out, self._buffer = self._buffer, b""
            return out  # no secrets: pass everything through
        if len(self._buffer) < 2 * self._hold:
            return b""  # scan once per hold's worth of data, not once per chunk
        return self._emit(len(self._buffer) - self._hold)

    def flush(self) -> bytes:
        """Everything still held back, masked."""
        out = self._masker.mask_bytes(self._buffer)
        self._buffer = b""
        return out

    def _emit(self, safe_until: int) -> bytes:
        pieces: list[bytes] = []
        cursor = 0
        for match in self._masker.matches(self._buffer):
            if match.start() >= safe_until:
                break  # may still grow into a longer form: decide later
            pieces += [self._buffer[cursor : match.start()], MASK.encode()]
            cursor = match.end()
        boundary = max(cursor, safe_until)
        pieces.append(self._buffer[cursor:boundary])
        self._buffer = self._buffer[boundary:]
        return b"".join(pieces)
