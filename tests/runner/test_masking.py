"""Secret masking: literal, encoded and split forms, in text and in chunked streams."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.running.masking import MASK, Masker, StreamMasker

# '*' is left out so the mask itself can never combine with neighbours into a secret.
_ALPHABET = st.characters(blacklist_characters="*", blacklist_categories=("Cs",))
secrets_st = st.text(_ALPHABET, min_size=3, max_size=40).filter(lambda s: len(s.strip()) >= 3)
noise_st = st.text(_ALPHABET, max_size=60)


def _forms(secret: str) -> list[str]:
    raw = secret.encode()
    b64 = base64.b64encode(raw).decode()
    return [
        secret,
        b64,
        base64.urlsafe_b64encode(raw).decode(),
        quote(secret, safe=""),
        quote_plus(secret),
    ]


def _stream(masker: Masker, data: bytes, cuts: list[int]) -> bytes:
    stream = StreamMasker(masker)
    out = []
    last = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        out.append(stream.feed(data[last:cut]))
        last = cut
    out.append(stream.feed(data[last:]))
    out.append(stream.flush())
    return b"".join(out)


def test_plain_value_is_masked() -> None:
    assert Masker(["hunter2"]).mask("password=hunter2;") == f"password={MASK};"


def test_short_and_empty_values_are_not_masked() -> None:
    masker = Masker(["", "ab"])
    assert not masker
    assert masker.mask("ab cd") == "ab cd"


def test_encoded_forms_are_masked() -> None:
    secret = "s3cr3t/value+with spaces&more"
    masker = Masker([secret])
    for form in [
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(secret.encode()).decode().rstrip("="),
        base64.urlsafe_b64encode(secret.encode()).decode(),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
    ]:
        assert masker.mask(f"<{form}>") == f"<{MASK}>", form


def test_secret_inside_a_longer_base64_blob_is_masked() -> None:
    secret = "correct horse battery staple"
    masker = Masker([secret])
    for prefix in ["", "a", "ab", "abc"]:
        blob = base64.b64encode(f'{{"user": "{prefix}", "pw": "{secret}"}}'.encode()).decode()
        masked = masker.mask(blob)
        assert MASK in masked
        assert base64.b64encode(secret.encode()).decode()[4:-4] not in masked


def test_wrapped_base64_is_masked() -> None:
    secret = "x" * 70 + "-long-token-value"
    encoded = base64.b64encode(secret.encode()).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert Masker([secret]).mask(wrapped) == MASK


def test_each_line_of_a_multiline_secret_is_masked() -> None:
    key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\nab\n-----END KEY-----"
    masker = Masker([key])
    out = masker.mask("line: MIIBOgIBAAJBAKj34GkxFhD9\nwhole:\n" + key)
    assert "MIIBOgIBAAJBAKj34GkxFhD9" not in out
    assert "BEGIN KEY" not in out


def test_stream_masks_secret_split_across_chunks() -> None:
    masker = Masker(["supersecret"])
    data = b"before supersecret after\n"
    for cut in range(len(data) + 1):
        assert _stream(masker, data, [cut]) == f"before {MASK} after\n".encode()


def test_stream_without_secrets_passes_through_immediately() -> None:
    stream = StreamMasker(Masker([]))
    assert stream.feed(b"abc") == b"abc"
    assert stream.flush() == b""


def test_stream_keeps_split_utf8_characters_intact() -> None:
    masker = Masker(["geheimnis"])
    data = "é geheimnis ü".encode()
    assert _stream(masker, data, [1, 5, 13]).decode() == f"é {MASK} ü"


@settings(max_examples=200, deadline=None)
@given(
    secrets=st.lists(secrets_st, min_size=1, max_size=3),
    noise=st.lists(noise_st, min_size=1, max_size=4),
    which=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=4),
    cuts=st.lists(st.integers(min_value=0), max_size=8),
)
def test_no_secret_form_survives_any_chunking(
    secrets: list[str], noise: list[str], which: list[int], cuts: list[int]
) -> None:
    masker = Masker(secrets)
    parts = []
    for i, form_index in enumerate(which):
        secret = secrets[i % len(secrets)]
        parts += [noise[i % len(noise)], _forms(secret)[form_index]]
    data = "".join(parts).encode()
    out = _stream(masker, data, cuts).decode()
    assert out == masker.mask("".join(parts))
    for secret in secrets:
        for form in _forms(secret):
            assert form not in out


@settings(max_examples=100, deadline=None)
@given(secret=secrets_st, prefix=st.binary(max_size=5), suffix=st.binary(max_size=5))
def test_secret_embedded_in_base64_blob_never_shows_whole(
    secret: str, prefix: bytes, suffix: bytes
) -> None:
    blob = base64.b64encode(prefix + secret.encode() + suffix).decode()
    out = Masker([secret]).mask(blob)
    decoded_everywhere = [base64.b64encode(secret.encode()).decode()]
    assert all(form not in out for form in decoded_everywhere)
    if len(secret.encode()) >= 6:
        assert MASK in out


_LINE = st.text(st.characters(whitelist_categories=("L", "N"), max_codepoint=0x7F), min_size=3,
                max_size=20)


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(_LINE, min_size=2, max_size=4),
    noise=noise_st,
    cuts=st.lists(st.integers(min_value=0), max_size=6),
)
def test_multiline_secret_lines_never_survive_chunking(
    lines: list[str], noise: str, cuts: list[int]
) -> None:
    secret = "\n".join(lines)
    masker = Masker([secret])
    printed = f"{noise}\n{secret}\n{noise}\n" + "\n".join(f"> {line}" for line in lines)
    encoded = base64.b64encode(secret.encode()).decode()
    wrapped = "\n".join(encoded[i : i + 10] for i in range(0, len(encoded), 10))
    out = _stream(masker, f"{printed}\n{wrapped}\n".encode(), cuts).decode()
    for line in lines:
        assert line not in out
    assert encoded[:-4] not in out.replace("\n", "")
