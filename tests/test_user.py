"""The identity: every field comes from Authgear's exact claim names, and nothing about it can be changed."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone

import pytest

from flask_authgear import AuthgearUser, InvalidTokenError, Verifier
from flask_authgear.testing import AuthgearTestServer
from tests.support.auth import bearer_request
from tests.support.jwt import sign

USER_CLAIMS = "https://authgear.com/claims/user/"


def authenticate(verifier: Verifier, token: str) -> AuthgearUser:
    return verifier.authenticate(bearer_request(token))


def test_every_field_comes_from_the_claims(server: AuthgearTestServer, verifier: Verifier) -> None:
    auth_time = int(time.time()) - 120
    token = server.issue_token(
        "c1b0e5a2-user",
        roles=["admin", "editor"],
        is_verified=True,
        is_anonymous=False,
        can_reauthenticate=True,
        amr=["pwd", "mfa", "otp"],
        auth_time=auth_time,
    )
    user = authenticate(verifier, token)
    assert user.id == "c1b0e5a2-user"
    assert user.is_anonymous is False
    assert user.is_verified is True
    assert user.can_reauthenticate is True
    assert user.roles == frozenset({"admin", "editor"})
    assert user.amr == ("pwd", "mfa", "otp")
    assert user.authenticated_at == datetime.fromtimestamp(auth_time, tz=timezone.utc)
    assert user.authenticated_at.tzinfo is not None
    assert user.source == "jwt"
    assert user.claims["sub"] == "c1b0e5a2-user"
    assert user.claims["iss"] == server.endpoint
    assert user.claims[USER_CLAIMS + "roles"] == ("admin", "editor")
    assert user.client_id == server.client_id
    assert user.scopes == frozenset({"openid", "offline_access"})
    assert user.has_role("admin")
    assert not user.has_role("Admin")


def test_flags_are_read_from_their_own_claims(server: AuthgearTestServer, verifier: Verifier) -> None:
    # Each flag set alone proves each field reads its own claim name.
    anonymous = authenticate(verifier, server.issue_token(is_anonymous=True, is_verified=False))
    assert (anonymous.is_anonymous, anonymous.is_verified, anonymous.can_reauthenticate) == (True, False, True)
    cannot = authenticate(verifier, server.issue_token(is_verified=False, can_reauthenticate=False))
    assert (cannot.is_anonymous, cannot.is_verified, cannot.can_reauthenticate) == (False, False, False)


def test_user_claims_of_the_wrong_type_are_refused(server: AuthgearTestServer, verifier: Verifier) -> None:
    token = server.issue_token(
        "client_id_abc",
        amr=None,
        **{
            USER_CLAIMS + "is_anonymous": None,
            USER_CLAIMS + "is_verified": None,
            USER_CLAIMS + "can_reauthenticate": None,
            USER_CLAIMS + "roles": None,
        },
    )
    # A null claim is not an absent claim: the token is refused rather than read as "no roles".
    with pytest.raises(InvalidTokenError):
        authenticate(verifier, token)
    with pytest.raises(InvalidTokenError):
        authenticate(verifier, server.issue_token(roles=["admin", 1]))  # type: ignore[list-item]
    with pytest.raises(InvalidTokenError):
        authenticate(verifier, server.issue_token(**{USER_CLAIMS + "is_verified": "true"}))
    with pytest.raises(InvalidTokenError):
        authenticate(verifier, sign(server.claims_for(amr=None) | {"amr": "pwd"}, server.signing_key))


def test_absent_optional_claims_give_empty_values(server: AuthgearTestServer, verifier: Verifier) -> None:
    # Authgear omits amr when empty; machine-to-machine tokens carry none of the user claims.
    claims = server.claims_for("client_id_abc", amr=None)
    for name in ("is_anonymous", "is_verified", "can_reauthenticate", "roles"):
        del claims[USER_CLAIMS + name]
    del claims["auth_time"]
    user = authenticate(verifier, sign(claims, server.signing_key))
    assert user.id == "client_id_abc"
    assert user.roles == frozenset()
    assert user.amr == ()
    assert user.authenticated_at is None
    assert (user.is_anonymous, user.is_verified, user.can_reauthenticate) == (False, False, False)


def test_user_is_immutable(server: AuthgearTestServer, verifier: Verifier) -> None:
    user = authenticate(verifier, server.issue_token(roles=["admin"], extra={"nested": [1, {"k": "v"}]}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        user.id = "someone-else"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        user.roles = frozenset({"root"})  # type: ignore[misc]
    with pytest.raises(AttributeError):
        user.roles.add("root")  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        user.claims["sub"] = "someone-else"  # type: ignore[index]
    with pytest.raises(AttributeError):
        user.claims[USER_CLAIMS + "roles"].append("root")
    with pytest.raises(TypeError):
        user.claims["extra"]["nested"][1]["k"] = "changed"
    with pytest.raises(AttributeError):
        user.claims["aud"].append("https://evil.example")


def test_same_token_twice_gives_an_equal_unaltered_user(server: AuthgearTestServer, verifier: Verifier) -> None:
    token = server.issue_token("u-same", roles=["viewer"])
    first = authenticate(verifier, token)
    second = authenticate(verifier, token)
    assert first == second
    assert second.roles == frozenset({"viewer"})


def test_constructor_stores_immutable_copies() -> None:
    roles = ["a", "b"]
    amr = ["pwd"]
    claims = {"sub": "u", "list": [1, 2], "obj": {"x": [3]}}
    user = AuthgearUser(id="u", roles=roles, amr=amr, claims=claims)  # type: ignore[arg-type]
    roles.append("c")
    amr.append("otp")
    claims["list"].append(9)  # type: ignore[attr-defined]
    claims["sub"] = "other"
    assert user.roles == frozenset({"a", "b"})
    assert user.amr == ("pwd",)
    assert user.claims == {"sub": "u", "list": (1, 2), "obj": {"x": (3,)}}


def test_defaults() -> None:
    user = AuthgearUser(id="u")
    assert (user.is_anonymous, user.is_verified, user.can_reauthenticate) == (False, False, False)
    assert user.roles == frozenset()
    assert user.amr == ()
    assert user.authenticated_at is None
    assert dict(user.claims) == {}
    assert user.client_id is None
    assert user.scopes == frozenset()
    assert user.source == "jwt"


def test_users_from_different_sources_with_same_fields_are_distinguishable() -> None:
    assert AuthgearUser(id="u", source="jwt") != AuthgearUser(id="u", source="resolver")


def test_verified_users_are_the_same_as_constructed_ones(server: AuthgearTestServer, verifier: Verifier) -> None:
    """The verifiers build users without the public constructor's copies; nothing observable may differ."""
    at = int(time.time()) - 30
    user = authenticate(verifier, server.issue_token("u-1", roles=["b", "a"], amr=["pwd", "otp"], auth_time=at))
    expected = AuthgearUser(
        id="u-1",
        is_verified=True,
        can_reauthenticate=True,
        roles=["a", "b"],  # type: ignore[arg-type]
        amr=["pwd", "otp"],  # type: ignore[arg-type]
        authenticated_at=datetime.fromtimestamp(at, tz=timezone.utc),
        claims=dict(user.claims),
    )
    assert user == expected
    assert repr(user) == repr(expected)
    assert user.to_dict() == expected.to_dict()
    assert dict(user.claims) == dict(expected.claims)
    assert type(user.claims) is type(expected.claims)
    assert type(user.roles) is frozenset and type(user.amr) is tuple
    assert dataclasses.replace(user, id="u-2").claims == user.claims
    assert hash(user.roles) == hash(expected.roles)

    from flask_authgear.core.headers import parse_answer

    answered = parse_answer(
        {
            "x-authgear-session-valid": "true",
            "x-authgear-user-id": "u-1",
            "x-authgear-user-verified": "true",
            "x-authgear-user-can-reauthenticate": "true",
            "x-authgear-user-roles": "a,b",
            "x-authgear-session-amr": "pwd otp",
            "x-authgear-session-authenticated-at": str(at),
        }
    )
    assert answered == dataclasses.replace(expected, claims={}, source="resolver")
    assert dict(answered.claims) == {} and answered.claims is AuthgearUser(id="x").claims


def test_repr_lists_roles_in_one_order_whatever_the_set_order() -> None:
    """Equal users print the same, in every process: set iteration order depends on insertion and hash seed."""
    names = [f"role-{i}" for i in range(500)]
    forward = AuthgearUser(id="u", roles=frozenset(names))
    backward = AuthgearUser(id="u", roles=frozenset(reversed(names)))
    assert list(forward.roles) != list(backward.roles)  # the case the repr has to cover
    assert repr(forward) == repr(backward)
    assert repr(forward).index("'role-0'") < repr(forward).index("'role-1'") < repr(forward).index("'role-9'")


def test_repr_names_every_field() -> None:
    user = AuthgearUser(id="u", roles=["b", "a"], amr=["pwd"], source="resolver")  # type: ignore[arg-type]
    assert repr(user) == (
        "AuthgearUser(id='u', is_anonymous=False, is_verified=False, can_reauthenticate=False, "
        "roles=frozenset({'a', 'b'}), amr=('pwd',), authenticated_at=None, claims=mappingproxy({}), "
        "source='resolver', is_machine=False)"
    )
    assert "roles=frozenset()" in repr(AuthgearUser(id="u"))
