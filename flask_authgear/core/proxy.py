"""Proxy mode: read the identity a reverse proxy (NGINX ``auth_request``, Traefik ``forwardAuth``) got from
Authgear's resolver and passed on as ``X-Authgear-*`` request headers.

Security note: those headers are only as trustworthy as the hop that set them. Any client can send
``X-Authgear-Session-Valid: true``; and Authgear's own NGINX example forgets to overwrite
``X-Authgear-User-Roles``, so a client's roles header would pass through it. Therefore the headers are read
only when the request's direct peer (``REMOTE_ADDR`` as the server set it, before any ``ProxyFix`` rewrote it;
see :func:`~flask_authgear.core.request.direct_peer`) is one of ``trusted_proxies``; from anywhere else they are
ignored (and the adapters remove them from the environ). The proxy must overwrite every header in
:data:`~flask_authgear.core.headers.ANSWER_HEADERS`; ``examples/nginx`` and ``examples/traefik`` do.
Only the exact value ``true`` of ``X-Authgear-Session-Valid`` authenticates.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from ..config import IPNetwork, Settings
from ..errors import InvalidTokenError, MissingCredentialsError, ProviderUnavailableError
from ..user import AuthgearUser
from .headers import MalformedAnswer, parse_answer
from .request import RequestData

__all__ = ["ProxyHeaderReader"]


class ProxyHeaderReader:
    """Turns trusted ``X-Authgear-*`` headers into a user; untrusted peers get no identity at all."""

    def __init__(self, settings: Settings) -> None:
        self.networks: tuple[IPNetwork, ...] = settings.trusted_proxies
        self.is_trusted = lru_cache(maxsize=1024)(self._is_trusted)

    def _is_trusted(self, remote_addr: str | None) -> bool:
        try:
            address = ipaddress.ip_address((remote_addr or "").strip())
        except ValueError:  # no address, or not one
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
        return any(address in network for network in self.networks)

    def authenticate(self, request: RequestData) -> AuthgearUser:
        """The proxy's verdict, or 401 (no or invalid session), or 503 (headers Authgear never sends)."""
        headers = request.proxy_headers if self.is_trusted(request.remote_addr) else {}
        try:
            user = parse_answer(headers, "proxy")
        except MalformedAnswer:
            raise ProviderUnavailableError() from None
        if user is not None:
            return user
        if not request.authorization and not request.cookie:
            raise MissingCredentialsError()
        raise InvalidTokenError("The session or access token is invalid.")
