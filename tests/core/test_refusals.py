"""The set of refusal reasons: each with its own fixed, header-safe description, and a fix that names a real
setting."""

from __future__ import annotations

import dataclasses
import re

import pytest

from flask_authgear import Settings
from flask_authgear.core.refusals import Reason, TokenError, fingerprint

HEADER_SAFE = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]+")
SETTINGS = {f.name for f in dataclasses.fields(Settings)}


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_each_reason_answers_its_own_fixed_header_safe_description(reason: Reason) -> None:
    assert HEADER_SAFE.fullmatch(reason.description) and reason.description.endswith(".")
    error = TokenError(reason)
    assert (error.reason, error.description, error.status_code, error.error) == (
        reason,
        reason.description,
        401,
        "invalid_token",
    )
    assert error.www_authenticate() == (
        f'Bearer realm="authgear", error="invalid_token", error_description="{reason.description}"'
    )
    assert reason.meaning and reason.meaning[0].islower()
    assert reason.setting is None or (reason.setting in SETTINGS and reason.fix)


def test_no_two_reasons_share_a_code_or_a_description() -> None:
    assert len({r.value for r in Reason}) == len({r.description for r in Reason}) == len(Reason)


def test_the_code_is_the_string_logs_and_counters_use() -> None:
    assert Reason.AUD == "aud" and f"{Reason.EXPIRED}" == "expired" and Reason["UNKNOWN_KID"] == "unknown_kid"


def test_a_rule_may_answer_a_more_precise_description_of_its_own() -> None:
    error = TokenError(Reason.AUD, "The access token is not meant for this API.")
    assert (error.reason, error.description) == (Reason.AUD, "The access token is not meant for this API.")


def test_the_fingerprint_tells_tokens_apart_and_holds_no_part_of_them() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    assert re.fullmatch(r"[0-9a-f]{12}", fingerprint(token))
    assert fingerprint(token) == fingerprint(token) != fingerprint(token + "x")
    assert fingerprint(token) not in token
    assert fingerprint("\udcff\ud800 not text") != fingerprint("")  # any str a caller hands over, no error
