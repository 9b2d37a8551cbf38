"""The framework-agnostic core: request data in, user or error out.

The JWT and resolver modules (``core.jwks``, ``core.jwt``, ``core.resolver``) are imported from their own modules:
they load joserfc's cryptography and requests-cache, which a :class:`Verifier` loads only for the modes that use
them.
"""

from .request import RequestData, strip_proxy_headers
from .verifier import Verifier

__all__ = ["RequestData", "Verifier", "strip_proxy_headers"]
