"""An app written the way a flask-login user writes one, with Authgear proving who the user is.

An application factory, one module-level extension, a user loader over the app's own member store, a site
whose template reads ``current_user.is_authenticated`` and ``current_app_user``, and a JSON API blueprint that
only members reach.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, current_app, render_template_string

from flask_authgear import Authgear, AuthgearUser, current_app_user, current_user, require_auth


@dataclass
class Member:
    """The app's own record of a person; Authgear's user id is the key."""

    id: str
    name: str


class MemberStore:
    """A dict-backed store, standing in for the app's database."""

    def __init__(self, members: Mapping[str, str]) -> None:
        self._members = {id: Member(id, name) for id, name in members.items()}

    def get(self, member_id: str) -> Member | None:
        return self._members.get(member_id)

    def remove(self, member_id: str) -> bool:
        return self._members.pop(member_id, None) is not None


DEFAULT_MEMBERS = {"alice": "Alice Liddell", "bob": "Bob Cratchit"}

HOME = """\
{% if current_user.is_authenticated %}Welcome back, {{ current_app_user.name }}!\
{% else %}Welcome, guest. Please sign in.{% endif %}"""

auth = Authgear()
site = Blueprint("site", __name__)
api = auth.protect(Blueprint("api", __name__, url_prefix="/api"), roles=["member"])


def members() -> MemberStore:
    store: MemberStore = current_app.extensions["members"]
    return store


@auth.user_loader
def load_member(user: AuthgearUser) -> Member | None:
    return members().get(user.id)


@site.get("/")
@require_auth(optional=True)
def home() -> str:
    return render_template_string(HOME)


@api.get("/profile")
def profile() -> dict[str, Any]:
    return {"id": current_user.id, "name": current_app_user.name, "roles": sorted(current_user.roles)}


@api.delete("/members/<member_id>")
@require_auth(roles=["admin"])
def delete_member(member_id: str) -> tuple[str, int]:
    return ("", 204) if members().remove(member_id) else ("", 404)


def create_app(config: Mapping[str, Any] | None = None, member_names: Mapping[str, str] | None = None) -> Flask:
    """Build the app from ``config`` (``AUTHGEAR_*`` keys) with its own member store."""
    app = Flask(__name__)
    app.config.update(config or {})
    app.extensions["members"] = MemberStore(DEFAULT_MEMBERS if member_names is None else member_names)
    auth.init_app(app)
    app.register_blueprint(site)
    app.register_blueprint(api)
    return app
