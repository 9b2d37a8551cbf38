"""Cost per request as distinct tokens, users and JWKS keys grow 10x and 100x (core verifier, no Flask)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask_authgear import Settings
from flask_authgear.core import Verifier
from flask_authgear.testing import AuthgearTestServer

from .harness import Case, each_batch, run_rounds
from .tokens import mint_pool


@dataclass(frozen=True)
class ScalingSizes:
    rounds: int
    tokens: int  # base count of distinct tokens (x1, x10, x100)
    users: int  # base count of distinct resolver sessions
    keys: tuple[int, int, int]  # JWKS sizes
    key_pool: int  # tokens per round in the JWKS rows


FULL = ScalingSizes(rounds=5, tokens=100, users=10, keys=(1, 10, 100), key_pool=300)
QUICK = ScalingSizes(rounds=3, tokens=10, users=3, keys=(1, 10, 100), key_pool=100)
SMOKE = ScalingSizes(rounds=1, tokens=2, users=1, keys=(1, 2, 3), key_pool=6)

TOKENS_CACHED = "distinct tokens, all cached (JWT warm)"
TOKENS_CHURN = "distinct tokens, token cache bound at x1 (LRU churn)"
USERS_RESOLVER = "distinct users, resolver hit (in-process)"
KEYS_COLD = "JWKS keys, JWT cold (fresh tokens)"
KEYS_WARM = "JWKS keys, JWT warm (repeated tokens)"
ROWS = (TOKENS_CACHED, TOKENS_CHURN, USERS_RESOLVER, KEYS_COLD, KEYS_WARM)
COLUMNS = ("x1", "x10", "x100")


def _median_per_call(batch: Callable[[], int], rounds: int, before: Callable[[], None] | None = None) -> float:
    case = Case("scaling", batch, before)
    run_rounds([case], rounds)
    return case.median


def _clear(verifier: Verifier) -> Callable[[], None]:
    def clear() -> None:
        if verifier.jwt.cache is not None:
            verifier.jwt.cache.clear()

    return clear


def measure(server: AuthgearTestServer, sizes: ScalingSizes) -> list[tuple[str, list[float]]]:
    """The scaling table: rows of (label with the counts, seconds per request at x1, x10, x100)."""
    factors = (1, 10, 100)
    settings = server.settings()
    rows: list[tuple[str, list[float]]] = []

    tokens = mint_pool(server, sizes.tokens * 100, users=sizes.tokens * 10)
    cached, churn = [], []
    for factor in factors:
        subset = tokens[: sizes.tokens * factor]
        verifier = Verifier(Settings(**settings, token_cache_size=max(len(subset), 10_000)))
        cached.append(_median_per_call(each_batch(verifier.verify_token, subset), sizes.rounds))
        bounded = Verifier(Settings(**settings, token_cache_size=sizes.tokens))
        churn.append(_median_per_call(each_batch(bounded.verify_token, subset), sizes.rounds))
    counts = _counts(sizes.tokens)
    rows.append((f"{TOKENS_CACHED} {counts}", cached))
    rows.append((f"{TOKENS_CHURN} {counts}", churn))

    resolver_rows = []
    sessions = [server.create_session(f"user-{i}").authorization for i in range(sizes.users * 100)]
    for factor in factors:
        verifier = Verifier(Settings(**settings, mode="resolver"))
        resolver = verifier.resolver
        assert resolver is not None
        subset = sessions[: sizes.users * factor]
        resolver_rows.append(
            _median_per_call(each_batch(lambda a, r=resolver: r.resolve(a, None), subset), sizes.rounds)
        )
        verifier.close()
    rows.append((f"{USERS_RESOLVER} {_counts(sizes.users)}", resolver_rows))

    cold, warm = _keys_rows(sizes)
    keys = "/".join(str(k) for k in sizes.keys)
    rows.append((f"{KEYS_COLD} {keys}", cold))
    rows.append((f"{KEYS_WARM} {keys}", warm))
    return rows


def _counts(base: int) -> str:
    return f"{base:,}/{base * 10:,}/{base * 100:,}"


def _keys_rows(sizes: ScalingSizes) -> tuple[list[float], list[float]]:
    """One server whose JWKS grows; tokens signed round-robin by every key."""
    cold: list[float] = []
    warm: list[float] = []
    with AuthgearTestServer() as server:
        for count in sizes.keys:
            while len(server.keys) < count:
                server.rotate_keys(keep_old=True)
            pool = mint_pool(server, sizes.key_pool, keys=server.keys)
            verifier = Verifier(Settings(**server.settings()))
            cold.append(_median_per_call(each_batch(verifier.verify_token, pool), sizes.rounds, _clear(verifier)))
            for token in pool:
                verifier.verify_token(token)
            warm.append(_median_per_call(each_batch(verifier.verify_token, pool), sizes.rounds))
            if len(verifier.jwks.keys) != count:
                raise RuntimeError(f"expected {count} keys in the JWKS, the verifier holds {len(verifier.jwks.keys)}")
    return cold, warm
