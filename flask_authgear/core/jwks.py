"""The project's signing keys: OIDC discovery once, then a JWKS cached in process.

Rules, and why:

* Keys are refreshed after ``jwks_cache_ttl``; a key removed from the JWKS stops verifying at the next fetch.
  While one thread refreshes, the others keep verifying with the current keys instead of queueing behind a
  slow endpoint (unless the keys are older than ``jwks_max_stale``).
* An unknown ``kid`` triggers a refetch (key rotation: Authgear publishes a new key and signs with it at once),
  even right after a scheduled fetch. The cooldown ``jwks_refetch_cooldown`` spaces only these unknown-kid
  refetches, one thread at a time, so a flood of random kids costs one fetch per cooldown, not one per request.
  A thread with an unknown kid that finds a fetch in progress waits for it, since it may bring that kid.
* A key fetched again unchanged keeps its object identity, so caches keyed on it survive a refresh.
* When the JWKS endpoint fails, the last good keys keep serving for ``jwks_max_stale`` seconds; with no
  good keys at all every request gets 503 (fail closed), and fetches are tried again after a short backoff.
* Only asymmetric keys of adequate strength are used; ``oct`` keys, RSA under 2048 bits or with the ROCA
  fingerprint, and keys marked for other uses are ignored. Nothing is ever fetched from a URL found in a token
  or a request.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from ..config import Settings, check_url
from ..errors import ProviderUnavailableError
from .http import FetchError, deadline, fetch_json, new_session
from .jose import is_kid

__all__ = ["MAX_KEYS", "JWKSCache", "JWKSStats", "PublicKey"]

logger = logging.getLogger("flask_authgear")

_MIN_RSA_BITS = 2048
#: Longest value of a fetched document quoted in a message.
_MAX_SHOWN = 200
#: Seconds between retries while the JWKS (or discovery) endpoint keeps failing.
_FAILURE_BACKOFF = 5.0
MAX_KEYS = 100

_VerifyKey = RSAKey | ECKey | OKPKey

_CURVE_ALGS = {"P-256": ("ES256",), "P-384": ("ES384",), "P-521": ("ES512",), "Ed25519": ("EdDSA", "Ed25519")}
_RSA_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
#: The public members of each key type we verify with.
_KEY_TYPES: dict[str, tuple[type[_VerifyKey], tuple[str, ...]]] = {
    "RSA": (RSAKey, ("n", "e")),
    "EC": (ECKey, ("crv", "x", "y")),
    "OKP": (OKPKey, ("crv", "x")),
}


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A usable verification key and the algorithms it may verify."""

    kid: str
    key: _VerifyKey
    algorithms: frozenset[str]
    #: The public parameters and algorithms as canonical JSON: the same key fetched twice compares equal.
    fingerprint: str = field(default="", compare=False)


def _parse_jwks(document: Mapping[str, Any], allowed_algorithms: frozenset[str]) -> dict[str, PublicKey]:
    """Return the usable keys of a JWKS document by kid; silently skip keys our policy refuses.

    Raises ValueError when the document is not a JWKS at all.
    """
    if not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    parsed = (_parse_jwk(entry, allowed_algorithms) for entry in document["keys"][:MAX_KEYS])
    usable = [key for key in parsed if key is not None]
    # Two keys under one kid: we cannot tell which one a token means, so trust neither.
    kids = Counter(key.kid for key in usable)
    return {key.kid: key for key in usable if kids[key.kid] == 1}


def _parse_jwk(entry: Any, allowed_algorithms: frozenset[str]) -> PublicKey | None:
    """One JWK to a public verification key, or None when the key policy refuses it."""
    if not isinstance(entry, dict):
        return None
    kid, kty = entry.get("kid"), entry.get("kty")
    if not is_kid(kid):
        return None
    use, ops, alg = entry.get("use"), entry.get("key_ops"), entry.get("alg")
    if use is not None and use != "sig":
        return None
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    if alg is not None and not isinstance(alg, str):
        return None
    if not isinstance(kty, str) or kty not in _KEY_TYPES:
        return None  # "oct" and anything else: never a verification key from a public JWKS
    key_class, members = _KEY_TYPES[kty]
    try:
        public = {k: entry[k] for k in ("kty", *members)}
        if kty == "RSA" and _modulus_bits(public["n"]) < _MIN_RSA_BITS:  # before import: no key object, no warning
            return None
        key: _VerifyKey = key_class.import_key(public)
        candidates = _RSA_ALGS if kty == "RSA" else _CURVE_ALGS.get(public["crv"], ())
    except (KeyError, TypeError, ValueError, binascii.Error, JoseError):
        return None
    if isinstance(key, RSAKey) and _roca_fingerprint(key.public_key.public_numbers().n):
        return None
    algorithms = frozenset(candidates) & allowed_algorithms
    if alg is not None:
        algorithms &= {alg}
    if not algorithms:
        return None
    fingerprint = json.dumps([public, sorted(algorithms)], sort_keys=True)
    return PublicKey(kid=kid, key=key, algorithms=algorithms, fingerprint=fingerprint)


#: Small primes of the ROCA test (CVE-2017-15361) and, for each, the residues 65537 generates modulo it.
_ROCA_PRIMES: tuple[int, ...] = (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79)
_ROCA_PRIMES += (83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167)
_ROCA_RESIDUES = tuple(frozenset(pow(65537, k, p) for k in range(p)) for p in _ROCA_PRIMES)


def _roca_fingerprint(n: int) -> bool:
    """Whether an RSA modulus has the structure of Infineon's weak key generation (ROCA), which makes it
    factorable: n mod each small prime lies in the subgroup generated by 65537. A random modulus passes with a
    probability of about 4e-9."""
    return all(n % p in residues for p, residues in zip(_ROCA_PRIMES, _ROCA_RESIDUES, strict=True))


def _modulus_bits(n: Any) -> int:
    if not isinstance(n, str) or len(n) > 2048:
        raise ValueError("bad RSA modulus")
    return int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()


@dataclass(slots=True)
class JWKSStats:
    """Counters for monitoring; read them, never write them."""

    fetches: int = 0
    fetch_failures: int = 0
    refetches_refused: int = 0
    stale_served: int = 0
    last_error: str | None = None


class JWKSCache:
    """Thread-safe holder of the current verification keys."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._session = new_session(settings.http_timeout)
        self._clock = clock
        self._allowed = frozenset(settings.algorithms)
        self._lock = threading.Lock()
        self._jwks_uri: str | None = settings.jwks_uri
        #: The current keys by kid; read them, never write them.
        self.keys: Mapping[str, PublicKey] = {}
        self._fetched_at: float | None = None  # time of the last successful fetch
        self._attempts = 0  # fetch attempts finished so far, successful or not
        self._last_kid_refetch = -float("inf")  # time of the last refetch caused by an unknown kid
        self._last_failure = -float("inf")
        self.stats = JWKSStats()

    # -- reading -----------------------------------------------------------------------------------------

    def get(self, kid: str) -> PublicKey | None:
        """The key for ``kid``, refreshing the set when it is old or when the kid is unknown (rate-limited).

        Raises :class:`ProviderUnavailableError` when no usable keys can be had.
        """
        now = self._clock()
        self._refresh_if_expired(now)
        attempts = self._attempts  # read before the lookup: a fetch finished after it may have brought the kid
        key = self.keys.get(kid)
        if key is None and self._fetched_at is not None:
            # A fetch in progress may bring the kid: wait for it. Otherwise fetch only when the cooldown allows.
            self._refresh(now, unknown_kid_after=attempts)
            # Read again: another thread may have installed new keys meanwhile.
            key = self.keys.get(kid)
        return key

    def still_current(self, key: PublicKey) -> bool:
        """Whether ``key`` is still the key published under its kid: what a verified-token cache asks on every
        hit. An old set is refreshed first; an unknown kid never causes a fetch."""
        self._refresh_if_expired(self._clock())
        return self.keys.get(key.kid) is key

    def _refresh_if_expired(self, now: float) -> None:
        fetched_at = self._fetched_at
        age = math.inf if fetched_at is None else now - fetched_at
        if age >= self.settings.jwks_cache_ttl:
            # While the old keys may still serve, a thread that finds a refresh already running goes on with
            # them instead of queueing behind a slow JWKS endpoint.
            self._refresh(now, wait=age >= self.settings.jwks_max_stale)

    def health(self) -> dict[str, Any]:
        """Freshness of the keys and the last error, for readiness probes."""
        now = self._clock()
        age = None if self._fetched_at is None else now - self._fetched_at
        return {
            "keys": len(self.keys),
            "age_seconds": None if age is None else round(age, 1),  # a tenth of a second says all there is
            "stale": age is not None and age >= self.settings.jwks_cache_ttl,
            "ready": age is not None and age < self.settings.jwks_max_stale and bool(self.keys),
            **dataclasses.asdict(self.stats),
        }

    def warm_up(self) -> bool:
        """Fetch the keys now when none are loaded or they are old; True when usable keys are loaded.

        For start-up and readiness probes: a probe that only read :meth:`health` on a cold process would wait
        for a first request that the orchestrator never sends to an unready instance. Never raises.
        """
        try:
            self._refresh_if_expired(self._clock())
        except ProviderUnavailableError:
            return False
        return bool(self.keys)

    # -- fetching ----------------------------------------------------------------------------------------

    def _refresh(self, now: float, *, unknown_kid_after: int | None = None, wait: bool = True) -> None:
        """Fetch the JWKS unless another thread did meanwhile, or a recent failure asks us to wait.

        ``unknown_kid_after``: the fetch is for an unknown kid, looked up when ``_attempts`` had this value.
        """
        unknown_kid = unknown_kid_after is not None
        if not self._lock.acquire(blocking=wait):  # always True when waiting
            return
        try:
            # Another thread may have fetched while we waited for the lock.
            if self._fetched_at is not None:
                if unknown_kid:
                    if self._attempts != unknown_kid_after:
                        return
                    if self._clock() - self._last_kid_refetch < self.settings.jwks_refetch_cooldown:
                        self.stats.refetches_refused += 1
                        logger.debug("JWKS refetch for an unknown kid refused: cooldown")
                        return
                elif now - self._fetched_at < self.settings.jwks_cache_ttl:
                    return
            if self._clock() - self._last_failure < _FAILURE_BACKOFF:
                self._check_usable()
                return
            reason = "unknown kid" if unknown_kid else "initial" if self._fetched_at is None else "expired"
            if unknown_kid:
                self._last_kid_refetch = self._clock()
            try:
                keys = self._fetch(reason)
            except Exception as exc:  # whatever went wrong, keep the last good keys and back off
                self._last_failure = self._clock()
                self.stats.fetch_failures += 1
                error = str(exc) if isinstance(exc, FetchError | ValueError) else type(exc).__name__
                # Once per change of state: a failure is a warning when it is new, and the same failure again
                # (every retry of an outage, every request of a misconfigured app) only a debug record.
                again = error == self.stats.last_error
                self.stats.last_error = error
                logger.log(logging.DEBUG if again else logging.WARNING, "JWKS fetch failed (%s): %s", reason, error)
                self._attempts += 1
                self._check_usable()
                return
            self._install(keys)
            self._attempts += 1  # after the install: a thread that reads the new count finds the new keys
        finally:
            self._lock.release()

    def _install(self, keys: dict[str, PublicKey]) -> None:
        """Swap in a freshly fetched key set, keeping the objects of unchanged keys (their identity is stable)."""
        old = self.keys
        merged = {
            kid: old[kid] if kid in old and old[kid].fingerprint == key.fingerprint else key
            for kid, key in keys.items()
        }
        added = sorted(kid for kid in merged if old.get(kid) is not merged[kid])
        removed = sorted(kid for kid in old if old[kid] is not merged.get(kid))
        if old and (added or removed):
            # Key rotation, worth a record. These kids come from the project's JWKS, never from a request.
            logger.info("JWKS keys changed: added %s; removed %s", added or "none", removed or "none")
        self.keys = merged
        self._fetched_at = self._clock()
        self.stats.last_error = None

    def _check_usable(self) -> None:
        """After a failure: serve the last good keys while they are young enough, else fail closed."""
        if self._fetched_at is not None and self._clock() - self._fetched_at < self.settings.jwks_max_stale:
            self.stats.stale_served += 1
            logger.info("serving the last good JWKS while the JWKS endpoint fails")
            return
        if self._fetched_at is not None:
            logger.error("the last good JWKS is older than jwks_max_stale; refusing tokens until a fetch succeeds")
            self.keys = {}
            self._fetched_at = None
        raise ProviderUnavailableError()

    def _fetch(self, reason: str) -> dict[str, PublicKey]:
        # Discovery and JWKS share one deadline: the lock, which cold requests wait on, is never held longer.
        with deadline(self.settings.http_timeout):
            if self._jwks_uri is None:
                self._jwks_uri = self._discover()
            self.stats.fetches += 1
            document = fetch_json(self._session, self._jwks_uri)
        keys = _parse_jwks(document, self._allowed)
        if not keys:
            raise ValueError("the JWKS holds no usable key")
        logger.info("JWKS fetched (%s): %d usable key(s)", reason, len(keys))
        return keys

    def _discover(self) -> str:
        url = f"{self.settings.endpoint}/.well-known/openid-configuration"
        document = fetch_json(self._session, url)
        issuer = document.get("issuer")
        if issuer != self.settings.issuer:
            # Both values and the setting: a wrong issuer answers every request 503, like an outage would.
            found = repr(issuer)[:_MAX_SHOWN]  # repr: the document's text never drives a log or a terminal
            raise ValueError(
                f"the discovery document of {self.settings.endpoint} names the issuer {found}, not the configured "
                f"{self.settings.issuer!r}: when the project's tokens carry that issuer (a custom domain, or the "
                "endpoint by another name), set AUTHGEAR_ISSUER and AUTHGEAR_AUDIENCE to it"
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("the discovery document has no jwks_uri")
        # The same URL rules as for configured URLs; the message names the rule and the setting, never the URL.
        switch = self.settings.label("allow_insecure_http")
        jwks_uri = check_url(jwks_uri, "the discovery document's jwks_uri", self.settings.allow_insecure_http, switch)
        logger.info("discovery fetched from %s", url)
        return jwks_uri
