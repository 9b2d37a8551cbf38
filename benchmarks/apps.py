"""The Flask apps under test. Each answers ``GET /me`` with the same small JSON: ``{"sub": <user id>}``.

The bare app answers a constant of that shape, so (authenticated - bare) is exactly the cost of the
authentication layer, whatever its flavour.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import requests
from flask import Flask, g, request

from flask_authgear import Authgear, current_user, require_auth
from flask_authgear.core import Verifier
from flask_authgear.wsgi import ENVIRON_USER, AuthgearMiddleware


def bare_app() -> Flask:
    app = Flask("bare")

    @app.get("/me")
    def me() -> dict[str, Any]:
        return {"sub": "user-1"}

    return app


def raw_verify_app(public_key: Any) -> Flask:
    """The control: a bare app whose view checks the bearer token's RS256 signature with ``cryptography`` only.

    Its overhead is what one signature check costs inside a real request (the interpreter's caches are cold
    after it), as opposed to the raw verify timed alone in a tight loop.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from .tokens import signature_parts

    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    app = Flask("raw_verify")

    @app.get("/me")
    def me() -> dict[str, Any]:
        signing_input, signature = signature_parts(request.environ["HTTP_AUTHORIZATION"][7:])
        public_key.verify(signature, signing_input, pkcs1, sha256)
        return {"sub": "user-1"}

    return app


def authgear_app(**settings: Any) -> tuple[Flask, Verifier]:
    """The Flask extension with ``@require_auth``; returns the app and its core verifier."""
    app = Flask("authgear")
    ext = Authgear(app, **settings)

    @app.get("/me")
    @require_auth
    def me() -> dict[str, Any]:
        return {"sub": current_user.id}

    return app, ext.verifier


def middleware_app(**settings: Any) -> tuple[Flask, Verifier]:
    """A plain Flask app behind :class:`AuthgearMiddleware`, which protects every path."""
    app = Flask("middleware")

    @app.get("/me")
    def me() -> dict[str, Any]:
        return {"sub": request.environ[ENVIRON_USER].id}

    middleware = AuthgearMiddleware(app.wsgi_app, protect="/", **settings)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    return app, middleware.verifier


def pyjwt_app(endpoint: str) -> Flask:
    """The decorator of Authgear's Flask guide (PyJWT + ``PyJWKClient``), corrected to fetch discovery once.

    The guide fetches the discovery document and builds a ``PyJWKClient`` inside every request; here both
    happen once at start-up, which is the fairest reading of it. Like the guide, it checks the signature,
    ``exp`` and ``aud``.
    """
    import jwt  # PyJWT, a benchmark-only dependency

    discovery = requests.get(f"{endpoint}/.well-known/openid-configuration", timeout=5).json()
    jwks_client = jwt.PyJWKClient(discovery["jwks_uri"])

    def decode_user(token: str) -> dict[str, Any]:
        signing_key = jwks_client.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token, signing_key.key, algorithms=["RS256"], audience=endpoint, options={"verify_exp": True}
        )
        return claims

    def authed(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            authorization = request.headers.get("Authorization", "")
            parts = authorization.split(" ")
            if len(parts) != 2 or parts[0] != "Bearer":
                return {"error": "unauthorized"}, 401
            try:
                g.user = decode_user(parts[1])
            except Exception:
                return {"error": "invalid_token"}, 401
            return view(*args, **kwargs)

        return wrapper

    app = Flask("pyjwt")

    @app.get("/me")
    @authed
    def me() -> dict[str, Any]:
        return {"sub": g.user["sub"]}

    return app


def authlib_app(endpoint: str) -> Flask:
    """Authlib's ``ResourceProtector`` with its RFC 9068 ``JWTBearerTokenValidator``; the JWKS fetched once."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Authlib announces API changes on import; not our concern here
        from authlib.integrations.flask_oauth2 import ResourceProtector, current_token
        from authlib.oauth2.rfc9068 import JWTBearerTokenValidator
    from joserfc.jwk import KeySet

    discovery = requests.get(f"{endpoint}/.well-known/openid-configuration", timeout=5).json()
    key_set = KeySet.import_key_set(requests.get(discovery["jwks_uri"], timeout=5).json())

    class Validator(JWTBearerTokenValidator):  # type: ignore[misc]
        def get_jwks(self) -> KeySet:
            return key_set

    require_oauth = ResourceProtector()
    require_oauth.register_token_validator(Validator(issuer=endpoint, resource_server=endpoint))
    app = Flask("authlib")

    @app.get("/me")
    @require_oauth()
    def me() -> dict[str, Any]:
        return {"sub": current_token["sub"]}

    return app
