"""The framework-agnostic core: request data in, user or error out."""

from .jwks import JWKSCache
from .jwt import JWTVerifier
from .request import RequestData, strip_proxy_headers
from .verifier import Verifier

__all__ = ["JWKSCache", "JWTVerifier", "RequestData", "Verifier", "strip_proxy_headers"]
