"""Strict JSON: the one parser for tokens, discovery and JWKS documents, webhook bodies and cache entries."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from flask_authgear.core import json as strict_json
from flask_authgear.core.json import MAX_DEPTH
from flask_authgear.user import freeze


def nested(depth: int, opening: str = "[", closing: str = "]") -> str:
    return opening * depth + closing * depth


def test_nesting_up_to_the_bound_is_accepted() -> None:
    assert strict_json.loads(nested(MAX_DEPTH)) is not None
    deep_object = '{"a":' * MAX_DEPTH + "1" + "}" * MAX_DEPTH
    frozen = freeze(strict_json.loads(deep_object))
    for _ in range(MAX_DEPTH - 1):
        frozen = frozen["a"]
    assert frozen == {"a": 1}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 480, 100_000], ids=["one-too-deep", "480", "100000"])
@pytest.mark.parametrize("shape", ["arrays", "objects", "mixed"])
def test_nesting_past_the_bound_is_a_value_error(depth: int, shape: str) -> None:
    text = {
        "arrays": nested(depth),
        "objects": '{"a":' * depth + "1" + "}" * depth,
        "mixed": '{"a":[' * (depth // 2 + 1) + "]}" * (depth // 2 + 1),
    }[shape]
    with pytest.raises(ValueError, match="nested deeper"):
        strict_json.loads(text)
    with pytest.raises(ValueError, match="nested deeper"):
        strict_json.loads(text.encode())


@pytest.fixture
def low_recursion_limit() -> Iterator[None]:
    """A recursion limit far below any depth tested here: the refusal must not come from running into it."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.usefixtures("low_recursion_limit")
def test_the_depth_is_checked_without_recursion() -> None:
    with pytest.raises(ValueError, match="nested deeper"):
        strict_json.loads(nested(150_000))


@pytest.mark.parametrize(
    "text",
    ['["' + "[" * 500 + '"]', '["\\"' + "{" * 500 + '"]'],
    ids=["in-a-string", "after-an-escaped-quote"],
)
def test_brackets_inside_strings_do_not_nest(text: str) -> None:
    assert len(strict_json.loads(text)[0]) >= 500


def test_an_escaped_backslash_ends_before_the_closing_quote() -> None:
    # "k\\" is the string k\ : the brackets after it nest (depth 1 + MAX_DEPTH).
    with pytest.raises(ValueError, match="nested deeper"):
        strict_json.loads('{"k\\\\":' + nested(MAX_DEPTH) + "}")


def test_a_quote_that_hides_brackets_from_the_scan_hides_them_from_the_parser_too() -> None:
    # An unterminated string: the scan stops counting where the parser stops parsing.
    with pytest.raises(ValueError):
        strict_json.loads('["' + "[" * 5000)
    with pytest.raises(ValueError, match="nested deeper"):
        strict_json.loads("[" * 5000 + '"')


@pytest.mark.parametrize(
    "text",
    ['{"a":1,"a":2}', '{"a":NaN}', '{"a":Infinity}', '{"a":-Infinity}', '{"a":1e999}', b'{"a":"\xff"}', ""],
    ids=["duplicate", "nan", "infinity", "minus-infinity", "overflow", "not-utf8", "empty"],
)
def test_other_strict_rules(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        strict_json.loads(text)


def test_loads_object_wants_an_object() -> None:
    assert strict_json.loads_object(b'{"a":[1]}') == {"a": [1]}
    for text in ("[]", "1", '"a"', "null"):
        with pytest.raises(ValueError):
            strict_json.loads_object(text)
