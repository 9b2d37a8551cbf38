"""Helpers for the JWKS and JWT tests: signing of exact headers and claims, and a JWT verifier on a clock."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey

from flask_authgear import Settings
from flask_authgear.core.jwks import JWKSCache
from flask_authgear.core.jwt import JWTVerifier
from flask_authgear.testing import AuthgearTestServer

from .app_server import AppServer
from .clock import Clock

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

SigningKey = RSAKey | ECKey | OKPKey

#: Marks a header member or claim to leave out.
DROP: Any = object()


def b64url(data: bytes) -> str:
    """``data`` in base64url without padding, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """The bytes of an unpadded base64url segment (lenient: for reading tokens the tests built or received)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def edited(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` (a JOSE header or a claim set) with ``changes`` applied; a ``DROP`` value removes it."""
    result = dict(base)
    for name, value in changes.items():
        if value is DROP:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def sign(
    claims: Mapping[str, Any],
    key: SigningKey,
    *,
    alg: str = "RS256",
    header: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS of exactly ``claims``; the header is Authgear's (alg, at+jwt, the key's kid) with ``header``
    applied on top, where a None value removes that member."""
    head: dict[str, Any] = {"alg": alg, "typ": "at+jwt", "kid": key.kid}
    for name, value in (header or {}).items():
        if value is None:
            head.pop(name, None)
        else:
            head[name] = value
    return jwt.encode(head, dict(claims), key, algorithms=[alg], default_type=None)


def jwt_verifier(
    server: AuthgearTestServer, clock: Clock | None = None, **overrides: Any
) -> tuple[JWTVerifier, JWKSCache]:
    """A JWT verifier for ``server`` whose JWKS cache runs on ``clock`` (token times stay real)."""
    settings = Settings(**server.settings(**overrides))
    cache = JWKSCache(settings, clock=clock) if clock is not None else JWKSCache(settings)
    return JWTVerifier(settings, cache), cache


@contextmanager
def serve_json(documents: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, int]]]:
    """Serve fixed JSON documents by path on 127.0.0.1; yields the origin and a per-path hit counter."""
    hits: dict[str, int] = {}

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        path = environ["PATH_INFO"]
        hits[path] = hits.get(path, 0) + 1
        if path not in documents:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(documents[path]).encode()]

    with AppServer(app) as server:
        yield server.url, hits
