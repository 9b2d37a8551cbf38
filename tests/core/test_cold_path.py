"""The fast cold path keeps every strictness rule of the straightforward one.

``b64url_decode`` and ``loads_object`` decode in C for speed; each is compared here with a plain reference
(regex + re-encode for base64url, ``json`` with hooks for JSON) on fixed cases and on random inputs.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import string
from typing import Any

import pytest

from flask_authgear.core.jose import b64url_decode
from flask_authgear.core.json import loads_object

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def reference_b64url(segment: str) -> bytes:
    if _SEGMENT.fullmatch(segment) is None or len(segment) % 4 == 1:
        raise ValueError("malformed")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("malformed") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != segment.encode("ascii"):
        raise ValueError("malformed")
    return raw


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(name)


_REFERENCE_JSON = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def reference_json(raw: bytes) -> dict[str, Any]:
    try:
        value = _REFERENCE_JSON.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise ValueError("malformed") from None
    if not isinstance(value, dict):
        raise ValueError("malformed")
    return value


def outcome(func: Any, value: Any) -> Any:
    try:
        return func(value)
    except ValueError:
        return "refused"


# -- base64url -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("QQ", b"A"),
        ("QUI", b"AB"),
        ("QUJD", b"ABC"),
        ("-_8", b"\xfb\xff"),
        ("QR", None),  # stray bits in the last character: a second spelling of "A"
        ("QUJ", None),
        ("QQ==", None),  # padding
        ("QQ=", None),
        ("+_8", None),  # the standard alphabet
        ("-/8", None),
        ("Q", None),  # a length of 1 modulo 4
        ("", None),
        (" QQ", None),
        ("QQ\n", None),
        ("QU JD", None),
        ("Q\u0661", None),  # a non-ASCII digit
        ("QUJD.", None),
        ("Q*", None),
    ],
    ids=repr,
)
def test_b64url_cases(segment: str, expected: bytes | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            b64url_decode(segment)
        with pytest.raises(ValueError):
            reference_b64url(segment)
    else:
        assert b64url_decode(segment) == reference_b64url(segment) == expected


def test_b64url_matches_the_reference_on_random_input() -> None:
    rnd = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-_+/=. \n\u00e9\u0663"
    for _ in range(20_000):
        if rnd.random() < 0.5:
            raw = bytes(rnd.randrange(256) for _ in range(rnd.randrange(12)))
            segment = base64.urlsafe_b64encode(raw).decode().rstrip("=")
            if segment and rnd.random() < 0.5:
                at = rnd.randrange(len(segment))
                segment = segment[:at] + rnd.choice(alphabet) + segment[at + 1 :]
        else:
            segment = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(9)))
        assert outcome(b64url_decode, segment) == outcome(reference_b64url, segment), segment


def test_b64url_round_trips_every_length() -> None:
    for length in range(0, 70):
        raw = bytes(range(length))
        segment = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        if segment:
            assert b64url_decode(segment) == raw


# -- JSON ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1, "a": 2}',
        b'{"a": {"b": 1, "b": 1}}',
        b'{"a": [{"x": 1, "x": 1}]}',
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b'{"a": -Infinity}',
        b'{"a": 1e999}',  # valid JSON, but it parses to infinity
        b'{"a": -1e400}',
        b"[1, 2]",
        b'"text"',
        b"1",
        b"null",
        b"",
        b"{",
        b'{"a": 1} x',
        b'{"a": 1}{"b": 2}',
        b'{"a": 1},',
        b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
        b'{"a": "\xff"}',  # invalid UTF-8
        '{"a": 1}'.encode("utf-16"),  # json.loads would detect and accept UTF-16 bytes
        b"{'a': 1}",
        b'{"a": 01}',
        b"\x00{}",
    ],
    ids=repr,
)
def test_json_refusals(text: bytes) -> None:
    with pytest.raises(ValueError):
        loads_object(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"{}", {}),
        (b' {"a": 1} ', {"a": 1}),
        (b'\n\t{"a": [1, 2.5, "x", true, null]}\r\n', {"a": [1, 2.5, "x", True, None]}),
        (b'{"a": {"a": 1}}', {"a": {"a": 1}}),  # the same name at two levels is not a duplicate
        ('{"n\u00e9": "\u2603"}'.encode(), {"n\u00e9": "\u2603"}),
        (b'{"a": 1e308}', {"a": 1e308}),
    ],
    ids=repr,
)
def test_json_acceptances(text: bytes, expected: dict[str, Any]) -> None:
    assert loads_object(text) == reference_json(text) == expected


def test_json_deep_nesting_is_refused_not_crashed() -> None:
    with pytest.raises(ValueError):
        loads_object(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_json_matches_the_reference_on_random_input() -> None:
    pieces = ["{", "}", "[", "]", '"a"', '"b"', ":", ",", "1", "1.5", "NaN", "true", "null", " ", "\n", '"\\u00e9"']
    pieces += ["\u00e9", '"x\\"', "01", "\t", "\x00", "-0", "1e5"]
    rnd = random.Random(11)
    for _ in range(20_000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randrange(1, 12)))
        if rnd.random() < 0.3:
            text = '{"a":' + text + "}"
        raw = text.encode()
        assert outcome(loads_object, raw) == outcome(reference_json, raw), text
