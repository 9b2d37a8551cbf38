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
FACTORS = (1, 10, 100)


#: Calls per batch at least, for the cached rows whose x1 sets are small: a batch of ten calls measures the timer.
MIN_CALLS = 1_000


def _repeated(items: list[str], minimum: int = MIN_CALLS) -> list[str]:
    return items * max(1, -(-minimum // len(items)))


def _clear(verifier: Verifier) -> Callable[[], None]:
    def clear() -> None:
        if verifier.jwt.cache is not None:
            verifier.jwt.cache.clear()

    return clear


def measure(server: AuthgearTestServer, sizes: ScalingSizes) -> list[tuple[str, list[float]]]:
    """The scaling table: rows of (label with the counts, seconds per request at x1, x10, x100).

    Every cell is one case and all cases run in the same interleaved rounds.
    """
    settings = server.settings()
    grid: dict[str, list[Case]] = {}
    closers: list[Verifier] = []

    tokens = mint_pool(server, sizes.tokens * 100, users=sizes.tokens * 10)
    counts = _counts(sizes.tokens)
    cached, churn = grid.setdefault(f"{TOKENS_CACHED} {counts}", []), grid.setdefault(f"{TOKENS_CHURN} {counts}", [])
    for factor in FACTORS:
        subset = tokens[: sizes.tokens * factor]
        verifier = Verifier(Settings(**settings, token_cache_size=max(len(subset), 10_000)))
        cached.append(Case(TOKENS_CACHED, each_batch(verifier.verify_token, _repeated(subset))))
        # Bounded at the x1 count: at x10 and x100 every token is evicted before it comes round again.
        bounded = Verifier(Settings(**settings, token_cache_size=sizes.tokens))
        churn.append(Case(TOKENS_CHURN, each_batch(bounded.verify_token, subset if factor > 1 else _repeated(subset))))

    users = grid.setdefault(f"{USERS_RESOLVER} {_counts(sizes.users)}", [])
    sessions = [server.create_session(f"user-{i}").authorization for i in range(sizes.users * 100)]
    for factor in FACTORS:
        verifier = Verifier(Settings(**settings, mode="resolver"))
        closers.append(verifier)
        resolver = verifier.resolver
        assert resolver is not None
        subset = _repeated(sessions[: sizes.users * factor])
        users.append(Case(USERS_RESOLVER, each_batch(lambda a, r=resolver: r.resolve(a, None), subset)))

    with AuthgearTestServer() as keys_server:
        keys = "/".join(str(k) for k in sizes.keys)
        cold, warm = grid.setdefault(f"{KEYS_COLD} {keys}", []), grid.setdefault(f"{KEYS_WARM} {keys}", [])
        for count in sizes.keys:
            while len(keys_server.keys) < count:
                keys_server.rotate_keys(keep_old=True)
            pool = mint_pool(keys_server, sizes.key_pool, keys=keys_server.keys)
            verifier = Verifier(Settings(**keys_server.settings()))
            verifier.verify_token(pool[0])  # fetches the JWKS as it is now, with ``count`` keys, for 5 minutes
            if len(verifier.jwks.keys) != count:
                raise RuntimeError(f"expected {count} keys in the JWKS, the verifier holds {len(verifier.jwks.keys)}")
            cold.append(Case(KEYS_COLD, each_batch(verifier.verify_token, pool), _clear(verifier)))
            cached_verifier = Verifier(Settings(**keys_server.settings()))
            for token in pool:  # verified (and the JWKS fetched) now, while it holds ``count`` keys
                cached_verifier.verify_token(token)
            warm.append(Case(KEYS_WARM, each_batch(cached_verifier.verify_token, _repeated(pool))))
        run_rounds([case for row in grid.values() for case in row], sizes.rounds)
    for verifier in closers:
        verifier.close()
    return [(label, [case.median for case in row]) for label, row in grid.items()]


def _counts(base: int) -> str:
    return f"{base:,}/{base * 10:,}/{base * 100:,}"
