"""Every answer the library builds, judged by Authgear's own schemas and answer cases (tests/vectors/authgear-hooks).

Authgear validates a blocking hook's answer against its event's JSON schema and aborts the user's operation when it
fails. The schemas and the 40 pass/fail cases are Authgear's, vendored unchanged; ``jsonschema`` plays Authgear.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from flask_authgear.testing.events import EventResponse, HookError, _judge_answer
from flask_authgear.webhooks import BLOCKING_EVENTS, WebhookAnswer, WebhookEvent
from flask_authgear.webhooks.answers import _ANSWER_FIELDS, AMR_VALUES, RATE_LIMIT_NAMES, answer_problem

VECTORS = Path(__file__).parent.parent / "vectors" / "authgear-hooks"
CASES = json.loads((VECTORS / "answer_cases.json").read_text())
SCHEMAS = {
    event_type: jsonschema.Draft202012Validator(json.loads((VECTORS / f"{event_type}.schema.json").read_text()))
    for event_type in sorted(BLOCKING_EVENTS)
}
TOKEN = {"sub": "user-1", "iss": "https://auth.example.com", "exp": 1_800_000_000}


def test_the_vectors_cover_every_blocking_event() -> None:
    assert set(SCHEMAS) == set(_ANSWER_FIELDS) == BLOCKING_EVENTS and len(CASES) == 40
    assert {case["event"] for case in CASES} <= BLOCKING_EVENTS


def authgear_accepts(event_type: str, answer: Any) -> bool:
    return SCHEMAS[event_type].is_valid(answer)


def event(event_type: str) -> WebhookEvent:
    payload = {"user": {"id": "user-1"}, "jwt": {"payload": TOKEN}, "id_token": {"payload": TOKEN}}
    return WebhookEvent("0000000000000001", event_type, 1, payload, {}, None)


# -- the one rule, against Authgear's cases and schemas -----------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[f"{c['event']}-{c['name']}" for c in CASES])
def test_the_rule_agrees_with_authgears_own_cases(case: dict[str, Any]) -> None:
    assert authgear_accepts(case["event"], case["answer"]) is case["valid"]  # the vendored schema itself
    assert (answer_problem(case["event"], case["answer"]) is None) is case["valid"]
    if case["valid"]:  # anything Authgear accepts can be sent: through allow() or, built by hand, checked
        assert WebhookAnswer.checked(case["event"], case["answer"]).to_dict() == case["answer"]
    else:
        with pytest.raises(ValueError):
            WebhookAnswer.checked(case["event"], case["answer"])


@pytest.mark.parametrize("case", CASES, ids=[f"{c['event']}-{c['name']}" for c in CASES])
def test_the_local_authgear_judges_the_cases_as_authgear(case: dict[str, Any]) -> None:
    reply = EventResponse(200, {"Content-Type": "application/json"}, json.dumps(case["answer"]).encode())
    if case["valid"]:
        assert _judge_answer(case["event"], reply) == case["answer"]
    else:
        with pytest.raises(HookError, match="Authgear refuses the answer"):
            _judge_answer(case["event"], reply)


#: Answers near the edges of each schema: the rule and the schema must agree on each, for every blocking event.
EDGE_ANSWERS: list[Any] = [
    None,
    [],
    "yes",
    {},
    {"is_allowed": "true"},
    {"is_allowed": 1},
    {"is_allowed": False},
    {"is_allowed": False, "title": "t", "reason": "r"},
    {"is_allowed": False, "title": 1},
    {"is_allowed": False, "reason": None},
    {"is_allowed": False, "mutations": {}},
    {"is_allowed": True, "title": "t"},
    {"is_allowed": True, "extra": 1},
    {"is_allowed": True, "mutations": {}},
    {"is_allowed": True, "mutations": []},
    {"is_allowed": True, "mutations": {"user": {}}},
    {"is_allowed": True, "mutations": {"user": []}},
    {"is_allowed": True, "mutations": {"user": {"standard_attributes": {"name": "A"}, "roles": ["a"]}}},
    {"is_allowed": True, "mutations": {"user": {"standard_attributes": []}}},
    {"is_allowed": True, "mutations": {"user": {"custom_attributes": "x"}}},
    {"is_allowed": True, "mutations": {"jwt": {"payload": {"a": 1}}}},
    {"is_allowed": True, "mutations": {"jwt": {"payload": []}}},
    {"is_allowed": True, "mutations": {"jwt": []}},
    {"is_allowed": True, "mutations": {"jwt": {"other": 1}}},
    {"is_allowed": True, "mutations": {"id_token": {"payload": {"a": 1}}}},
    {"is_allowed": True, "mutations": {"id_token": {"payload": 1}}},
    {"is_allowed": True, "mutations": {"roles": []}},
    {"is_allowed": True, "constraints": {}},
    {"is_allowed": True, "constraints": {"amr": []}},
    {"is_allowed": True, "constraints": {"amr": sorted(AMR_VALUES)}},
    {"is_allowed": True, "constraints": {"amr": ["x_passkey"]}},
    {"is_allowed": True, "constraints": {"amr": ["x_biometric"]}},
    {"is_allowed": True, "constraints": {"amr": [1]}},
    {"is_allowed": True, "constraints": {"amr": "mfa"}},
    {"is_allowed": True, "constraints": {"acr": []}},
    {"is_allowed": True, "constraints": []},
    {"is_allowed": True, "bot_protection": {}},
    {"is_allowed": True, "bot_protection": {"mode": "never"}},
    {"is_allowed": True, "bot_protection": {"mode": "sometimes"}},
    {"is_allowed": True, "bot_protection": {"mode": "always", "x": 1}},
    {"is_allowed": True, "bot_protection": "always"},
    {"is_allowed": True, "rate_limits": {}},
    {"is_allowed": True, "rate_limits": {name: {"weight": 0} for name in RATE_LIMIT_NAMES}},
    {"is_allowed": True, "rate_limits": {"authentication.general": {}}},
    {"is_allowed": True, "rate_limits": {"authentication.general": {"weight": 2}}},
    {"is_allowed": True, "rate_limits": {"authentication.general": {"weight": -1}}},
    {"is_allowed": True, "rate_limits": {"authentication.general": {"weight": "2"}}},
    {"is_allowed": True, "rate_limits": {"authentication.general": {"weight": True}}},
    {"is_allowed": True, "rate_limits": {"authentication.general": {"weight": None}}},
    {"is_allowed": True, "rate_limits": {"authentication.general": {"weight": 1, "burst": 2}}},
    {"is_allowed": True, "rate_limits": {"authentication.general": 2}},
    {"is_allowed": True, "rate_limits": {"authentication.login": {"weight": 1}}},
    {"is_allowed": True, "constraints": {"amr": ["mfa"]}, "rate_limits": {}, "bot_protection": {"mode": "never"}},
]


@pytest.mark.parametrize("event_type", sorted(BLOCKING_EVENTS))
@pytest.mark.parametrize("answer", EDGE_ANSWERS, ids=[json.dumps(a)[:60] for a in EDGE_ANSWERS])
def test_the_rule_is_the_schema_at_its_edges(event_type: str, answer: Any) -> None:
    assert (answer_problem(event_type, answer) is None) is authgear_accepts(event_type, answer)


def test_a_non_blocking_event_has_no_answer_to_judge() -> None:
    assert "not a blocking event" in (answer_problem("user.created", {"is_allowed": True}) or "")


# -- every option of allow() and deny(), for every blocking event ---------------------------------------------

#: Each option of WebhookEvent.allow() with values Authgear accepts, and the events whose answer may carry it.
USER_EVENTS = {
    "user.pre_create",
    "user.profile.pre_update",
    "user.pre_schedule_deletion",
    "user.pre_schedule_anonymization",
}
AUTH_EVENTS = {"authentication.pre_initialize", "authentication.post_identified", "authentication.pre_authenticated"}
OPTIONS: list[tuple[str, Any, set[str]]] = [
    ("standard_attributes", {"name": "Ann", "email": "ann@example.com"}, USER_EVENTS),
    ("standard_attributes", {}, USER_EVENTS),
    ("custom_attributes", {"tier": "gold", "score": 3}, USER_EVENTS),
    ("roles", ["admin", "staff"], USER_EVENTS),
    ("roles", [], USER_EVENTS),
    ("groups", ["beta"], USER_EVENTS),
    ("jwt_claims", {"tier": "gold", "n": 1.5}, {"oidc.jwt.pre_create"}),
    ("id_token_claims", {"tier": "gold"}, {"oidc.id_token.pre_create"}),
    *[("amr", [value], AUTH_EVENTS) for value in sorted(AMR_VALUES)],
    ("amr", sorted(AMR_VALUES), AUTH_EVENTS),
    ("amr", [], AUTH_EVENTS),
    *[("rate_limits", {name: {"weight": w}}, AUTH_EVENTS) for name in sorted(RATE_LIMIT_NAMES) for w in (0, 1.5, 10)],
    ("rate_limits", {name: {"weight": 2} for name in RATE_LIMIT_NAMES}, AUTH_EVENTS),
    ("bot_protection", "always", {"authentication.pre_initialize", "authentication.post_identified"}),
    ("bot_protection", "never", {"authentication.pre_initialize", "authentication.post_identified"}),
]


@pytest.mark.parametrize("event_type", sorted(BLOCKING_EVENTS))
@pytest.mark.parametrize(("option", "value", "events"), OPTIONS, ids=[f"{o}={json.dumps(v)}" for o, v, _ in OPTIONS])
def test_every_option_builds_what_authgear_accepts_or_is_refused(
    event_type: str, option: str, value: Any, events: set[str]
) -> None:
    if event_type in events:
        answer = event(event_type).allow(**{option: value}).to_dict()
        assert authgear_accepts(event_type, answer), answer
    else:
        with pytest.raises(ValueError):
            event(event_type).allow(**{option: value})


@pytest.mark.parametrize("event_type", sorted(BLOCKING_EVENTS))
def test_every_combination_authgear_accepts_is_buildable(event_type: str) -> None:
    usable = [(option, value) for option, value, events in OPTIONS if event_type in events]
    names = sorted({option for option, _ in usable})
    for size in range(len(names) + 1):
        for chosen in itertools.combinations(names, size):
            options = {name: next(v for o, v in usable if o == name) for name in chosen}
            answer = event(event_type).allow(**options).to_dict()
            assert authgear_accepts(event_type, answer), answer
    refusal = event(event_type).deny("Sign-ups are closed.", "Closed")
    assert authgear_accepts(event_type, refusal.to_dict())


@pytest.mark.parametrize(
    ("event_type", "options", "message"),
    [
        ("authentication.pre_authenticated", {"bot_protection": "always"}, "does not accept bot_protection"),
        ("authentication.pre_initialize", {"bot_protection": "sometimes"}, '"always" or "never"'),
        ("authentication.pre_initialize", {"amr": ["x_passkey"]}, "not x_passkey"),
        ("authentication.post_identified", {"amr": ["mfa", "x_biometric"]}, "not x_biometric"),
        ("authentication.pre_authenticated", {"amr": ["MFA"]}, "not MFA"),
        ("authentication.pre_initialize", {"rate_limits": {"authentication.login": {"weight": 1}}}, "does not accept"),
        ("authentication.pre_initialize", {"rate_limits": {"authentication.general": {"weight": -1}}}, ">= 0"),
        ("authentication.pre_initialize", {"rate_limits": {"authentication.general": {"weight": "2"}}}, ">= 0"),
        ("authentication.pre_initialize", {"rate_limits": {"authentication.general": {"weight": True}}}, ">= 0"),
        ("authentication.pre_initialize", {"rate_limits": {"authentication.general": {"weight": 2, "x": 1}}}, "x"),
        ("authentication.pre_initialize", {"rate_limits": {"authentication.general": 2}}, "JSON object"),
        (
            "authentication.pre_initialize",
            {"rate_limits": {"authentication.general": {"weight": float("inf")}}},
            "must be JSON",
        ),
        ("user.pre_create", {"standard_attributes": {"tags": {1, 2}}}, "must be JSON"),
    ],
)
def test_answers_authgear_would_refuse_are_refused_when_built(
    event_type: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        event(event_type).allow(**options)


# -- iterables are read once -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda values: iter(values), id="iterator"),
        pytest.param(lambda values: (v for v in values), id="generator"),
        pytest.param(lambda values: map(str, values), id="map"),
        pytest.param(lambda values: tuple(values), id="tuple"),
        pytest.param(lambda values: dict.fromkeys(values).keys(), id="dict-keys"),
    ],
)
def test_iterables_are_read_once_and_sent_whole(make: Any) -> None:
    user = event("user.profile.pre_update").allow(roles=make(["admin", "staff"]), groups=make(["beta"])).to_dict()
    assert user["mutations"]["user"] == {"roles": ["admin", "staff"], "groups": ["beta"]}
    amr = event("authentication.pre_authenticated").allow(amr=make(["mfa", "x_secondary_totp"])).to_dict()
    assert amr["constraints"] == {"amr": ["mfa", "x_secondary_totp"]}


@pytest.mark.parametrize("value", ["admin", b"admin", {"admin": True}, 3, [""], ["ok", 1]])
def test_a_role_list_that_is_not_one_is_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="list of non-empty strings"):
        event("user.pre_create").allow(roles=value)
