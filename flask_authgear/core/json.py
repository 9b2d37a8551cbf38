"""Strict JSON for everything the library accepts: tokens, discovery and JWKS documents, webhook bodies, cache entries.

Stricter than :func:`json.loads` in four ways, each of which would otherwise let two readers see different data
or let input reach code it was not written for:

* UTF-8 only;
* an object's members are unique (a duplicate would let a signer and a reader disagree on a claim);
* numbers are finite (``NaN``, ``Infinity`` and ``1e999`` are refused);
* arrays and objects nest at most :data:`MAX_DEPTH` levels.

The depth is checked before parsing, by a scan that keeps no stack: the standard parser recurses once per level
and so does everything that walks the result (:func:`flask_authgear.user.freeze`), so a deep document must never
reach them. The bound is far above what Authgear itself sends (its tokens, webhook events, discovery and JWKS
documents nest fewer than 8 levels; claims a project adds with a JWT hook must keep within it) and far below
anything near Python's recursion limit, so walking a parsed document recursively stays safe.

Every refusal is a :class:`ValueError`; each caller turns it into its own answer (401 for a token, 400 for a webhook
body, a failed fetch for discovery and JWKS).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_DEPTH", "loads", "loads_object"]

#: How deeply arrays and objects may nest in any JSON the library accepts (``[[1]]`` has depth 2).
MAX_DEPTH = 32

# A JSON string, from its opening quote to its closing one; the closing quote is optional so that an unterminated
# string ends the scan instead of making the search backtrack.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_OPENING = frozenset("[{")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member")
    return out


def _finite_float(text: str) -> float:
    # Also for the NaN and Infinity literals; "1e999" is valid JSON but parses to infinity, refused like them.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


_decoder = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_finite_float, parse_float=_finite_float)


def _check_depth(text: str) -> None:
    """Raise :class:`ValueError` when arrays and objects in ``text`` nest deeper than :data:`MAX_DEPTH`.

    Counting brackets outside strings gives the parser's own depth at every point it reaches.
    """
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        if bracket in _OPENING:
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1


def loads(data: bytes | str) -> Any:
    """Parse one JSON document strictly (see the module's rules); :class:`ValueError` when it breaks one."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data  # UnicodeDecodeError is a ValueError
    if text.count("[") + text.count("{") > MAX_DEPTH:  # else it cannot nest deeper (every real token): no scan
        _check_depth(text)
    return _decoder.decode(text)


def loads_object(data: bytes | str) -> dict[str, Any]:
    """:func:`loads` for a document that must be a JSON object."""
    value = loads(data)
    if type(value) is not dict:
        raise ValueError("not a JSON object")
    return value
