"""Where settings come from: ``app.config`` shared with other Authgear tools, and keyword arguments in code."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import pytest
from flask import Flask

from flask_authgear import Authgear, AuthgearMiddleware, ConfigurationError, Settings

ENDPOINT = "https://myapp.authgear.cloud"

#: Keys that other Authgear tools (SDKs, the OAuth client of a web app) read from the same config.
AUTHGEAR_TOOL_KEYS = [
    "AUTHGEAR_CLIENT_ID",
    "AUTHGEAR_CLIENT_SECRET",
    "AUTHGEAR_REDIRECT_URI",
    "AUTHGEAR_POST_LOGOUT_REDIRECT_URI",
    "AUTHGEAR_APP_ID",
    "AUTHGEAR_PROJECT_ID",
    "AUTHGEAR_ADMIN_API_KEY",
    "AUTHGEAR_ADMIN_API_ENDPOINT",
    "AUTHGEAR_SCOPE",
    "AUTHGEAR_SCOPES",
    "AUTHGEAR_DOMAIN",
]


def no_wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    raise AssertionError("never called")


# -- app.config: other Authgear keys are ignored, near misses warned about -------------------------------------


@pytest.mark.parametrize("key", AUTHGEAR_TOOL_KEYS)
def test_other_authgear_keys_are_ignored_silently(key: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT, key: "https://app.example.com/x,y"}, environ={})
    assert s == Settings(endpoint=ENDPOINT)


@pytest.mark.parametrize("key", ["AUTHGEAR_", "AUTHGEAR_EXTRA", "AUTHGEAR_endpoint_x_y_z"])
def test_unrelated_authgear_keys_are_ignored(key: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT, key: 1}, environ={}).endpoint == ENDPOINT


def test_a_flask_app_shared_with_an_authgear_client_starts() -> None:
    app = Flask(__name__)
    app.config.update(
        AUTHGEAR_ENDPOINT=ENDPOINT,
        AUTHGEAR_CLIENT_ID="client",
        AUTHGEAR_CLIENT_SECRET="secret",
        AUTHGEAR_REDIRECT_URI="https://app.example.com/callback",
    )
    assert Authgear(app).settings.endpoint == ENDPOINT


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("AUTHGEAR_AUDIANCE", "AUTHGEAR_AUDIENCE"),
        ("AUTHGEAR_ENDPONT", "AUTHGEAR_ENDPOINT"),
        ("AUTHGEAR_LEEWAYS", "AUTHGEAR_LEEWAY"),
        ("AUTHGEAR_ALGORITHM", "AUTHGEAR_ALGORITHMS"),
        ("AUTHGEAR_TRUSTED_PROXY", "AUTHGEAR_TRUSTED_PROXIES"),
        ("AUTHGEAR_WEBHOOK_SECRETS", "AUTHGEAR_WEBHOOK_SECRET"),
    ],
)
def test_a_near_miss_is_ignored_with_a_warning_naming_the_setting(key: str, meant: str) -> None:
    with pytest.warns(
        UserWarning, match=f"^{key} is not a flask-authgear setting and is ignored; did you mean {meant}"
    ):
        s = Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT, key: "https://api.example.com"}, environ={})
    assert s.audience == (ENDPOINT,)


def test_a_near_miss_warns_through_the_flask_extension() -> None:
    app = Flask(__name__)
    app.config.update(AUTHGEAR_ENDPOINT=ENDPOINT, AUTHGEAR_AUDIANCE="https://api.example.com")
    with pytest.warns(UserWarning, match="AUTHGEAR_AUDIENCE"):
        ext = Authgear(app)
    assert ext.settings.audience == (ENDPOINT,)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda app: Authgear(app), id="extension"),
        pytest.param(lambda app: Authgear().init_app(app), id="init_app"),
        pytest.param(lambda app: Settings.load(app.config, environ={}), id="config-alone"),
    ],
)
def test_a_near_miss_warning_points_at_the_callers_line(build: Any) -> None:
    app = Flask(__name__)
    app.config.update(AUTHGEAR_ENDPOINT=ENDPOINT, AUTHGEAR_AUDIANCE="https://api.example.com")
    with pytest.warns(UserWarning, match="AUTHGEAR_AUDIENCE") as caught:
        build(app)
    assert [w.filename for w in caught] == [__file__]


# -- keyword arguments: unknown ones are an error, with a suggestion -------------------------------------------


def test_unknown_keyword_names_the_setting_it_probably_means() -> None:
    with pytest.raises(ConfigurationError, match=r"^unknown setting 'audiance'; did you mean 'audience'\?$"):
        Settings.load(environ={}, endpoint=ENDPOINT, audiance="https://api.example.com")
    with pytest.raises(ConfigurationError, match=r"^unknown setting 'client_id'$"):
        Settings.load(environ={}, endpoint=ENDPOINT, client_id="x")


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Authgear(Flask(__name__), endpoint=ENDPOINT, audiance="x"), id="flask-extension"),
        pytest.param(lambda: AuthgearMiddleware(no_wsgi_app, endpoint=ENDPOINT, audiance="x"), id="wsgi-middleware"),
        pytest.param(lambda: Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT}, environ={}, audiance="x"), id="overrides"),
    ],
)
def test_unknown_keywords_are_an_error_in_every_adapter(build: Any) -> None:
    with pytest.raises(ConfigurationError, match="unknown setting 'audiance'; did you mean 'audience'"):
        build()


def test_init_app_refuses_unknown_keywords() -> None:
    with pytest.raises(ConfigurationError, match="did you mean 'leeway'"):
        Authgear().init_app(Flask(__name__), endpoint=ENDPOINT, leewey=5)


# -- messages name a setting as the user wrote it ---------------------------------------------------------------


def test_messages_from_app_config_use_the_config_keys() -> None:
    config = {"AUTHGEAR_ENDPOINT": "http://myapp.authgear.cloud"}
    with pytest.raises(
        ConfigurationError, match=r"^AUTHGEAR_ENDPOINT uses plain http.* set AUTHGEAR_ALLOW_INSECURE_HTTP"
    ):
        Settings.load(config, environ={})


def test_messages_from_keywords_use_the_keywords() -> None:
    with pytest.raises(ConfigurationError, match=r"^endpoint uses plain http.* set allow_insecure_http to true"):
        Settings.load(environ={}, endpoint="http://myapp.authgear.cloud")
    with pytest.raises(ConfigurationError, match=r"^endpoint uses plain http.* set allow_insecure_http to true"):
        AuthgearMiddleware(no_wsgi_app, endpoint="http://myapp.authgear.cloud")


def test_messages_name_the_key_as_written() -> None:
    with pytest.raises(ConfigurationError, match=r"^AUTHGEAR_Leeway must be between 0 and 600"):
        Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT, "AUTHGEAR_Leeway": 601}, environ={})


def test_an_override_is_named_as_a_keyword() -> None:
    with pytest.raises(ConfigurationError, match=r"^leeway must be between 0 and 600"):
        Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT, "AUTHGEAR_LEEWAY": 5}, environ={}, leeway=601)


def test_cross_setting_rules_name_the_config_keys() -> None:
    with pytest.raises(ConfigurationError, match=r"^proxy mode needs AUTHGEAR_TRUSTED_PROXIES"):
        Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT, "AUTHGEAR_MODE": "proxy"}, environ={})
    with pytest.raises(ConfigurationError, match=r"^AUTHGEAR_JWKS_URI uses plain http"):
        Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT, "AUTHGEAR_JWKS_URI": "http://keys.example.com"}, environ={})


# -- the environment: one rule for every door --------------------------------------------------------------------


def test_the_extension_reads_the_environment_below_app_config_and_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHGEAR_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("AUTHGEAR_LEEWAY", "30")
    monkeypatch.setenv("AUTHGEAR_REALM", "from-env")
    monkeypatch.setenv("AUTHGEAR_MODE", "auto")
    app = Flask(__name__)
    app.config.update(AUTHGEAR_REALM="from-config", AUTHGEAR_MODE="resolver")
    settings = Authgear(app, mode="jwt").settings
    assert (settings.endpoint, settings.leeway) == (ENDPOINT, 30.0)  # the environment fills what is not set
    assert settings.realm == "from-config"  # app.config wins over the environment
    assert settings.mode == "jwt"  # a keyword wins over both


def test_the_middleware_reads_the_environment_below_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHGEAR_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("AUTHGEAR_LEEWAY", "30")
    settings = AuthgearMiddleware(no_wsgi_app, leeway=5).settings
    assert (settings.endpoint, settings.leeway) == (ENDPOINT, 5.0)


def test_a_ready_settings_object_reads_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHGEAR_LEEWAY", "30")
    assert AuthgearMiddleware(no_wsgi_app, settings=Settings(endpoint=ENDPOINT)).settings.leeway == 60.0
    assert Settings.load({"AUTHGEAR_ENDPOINT": ENDPOINT}, environ={}).leeway == 60.0


@pytest.mark.parametrize(
    ("build", "words"),
    [
        pytest.param(lambda: Authgear(Flask(__name__)), "AUTHGEAR_ENDPOINT is required (in app.config or", id="app"),
        pytest.param(
            lambda: AuthgearMiddleware(no_wsgi_app), "endpoint is required (or AUTHGEAR_ENDPOINT in the", id="wsgi"
        ),
    ],
)
def test_a_missing_endpoint_names_every_place_it_can_come_from(build: Any, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build()
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("where", "label"),
    [("environment", "AUTHGEAR_LEEWAY (from the environment)"), ("config", "AUTHGEAR_LEEWAY"), ("keyword", "leeway")],
)
def test_a_bad_value_is_named_by_where_it_came_from(monkeypatch: pytest.MonkeyPatch, where: str, label: str) -> None:
    app = Flask(__name__)
    app.config["AUTHGEAR_ENDPOINT"] = ENDPOINT
    keywords = {}
    if where == "environment":
        monkeypatch.setenv("AUTHGEAR_LEEWAY", "9999")
    elif where == "config":
        app.config["AUTHGEAR_LEEWAY"] = 9999
    else:
        keywords["leeway"] = 9999
    with pytest.raises(ConfigurationError) as caught:
        Authgear(app, **keywords)
    assert str(caught.value) == f"{label} must be between 0 and 600"


def test_a_near_miss_in_the_environment_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHGEAR_AUDIANCE", "https://api.example.com")
    with pytest.warns(UserWarning, match=r"AUTHGEAR_AUDIANCE \(from the environment\) is not a flask-authgear"):
        Authgear(Flask(__name__), endpoint=ENDPOINT)


def test_a_setting_used_after_start_up_is_named_as_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The cache is opened by the resolver client: its message names AUTHGEAR_CACHE as the user set it."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AUTHGEAR_CACHE", f"sqlite:///{blocker}/cache.db")
    app = Flask(__name__)
    app.config.update(AUTHGEAR_ENDPOINT=ENDPOINT, AUTHGEAR_MODE="resolver")
    with pytest.raises(ConfigurationError, match=r"^AUTHGEAR_CACHE \(from the environment\): cannot open"):
        Authgear(app)
    app.config["AUTHGEAR_CACHE"] = f"sqlite:///{blocker}/cache.db"
    with pytest.raises(ConfigurationError, match=r"^AUTHGEAR_CACHE: cannot open"):
        Authgear(app)


# -- optional dependencies: a missing one says how to install it ---------------------------------------------------


def test_a_redis_cache_without_redis_gives_the_pip_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if not installed: importing it raises ImportError
    app = Flask(__name__)
    app.config.update(AUTHGEAR_ENDPOINT=ENDPOINT, AUTHGEAR_MODE="resolver", AUTHGEAR_CACHE="redis://127.0.0.1:1/0")
    with pytest.raises(
        ConfigurationError, match=r"AUTHGEAR_CACHE=redis:// needs .* pip install 'flask-authgear\[redis\]'"
    ):
        Authgear(app)


def test_a_redis_idempotency_store_without_redis_gives_the_pip_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_authgear.webhooks.dispatch import RedisIdempotencyStore

    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'flask-authgear\[redis\]'"):
        RedisIdempotencyStore.from_url("redis://127.0.0.1:1/0")
