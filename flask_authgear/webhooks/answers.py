"""What a blocking hook answers Authgear: :class:`WebhookAnswer`, and the plain :func:`allow` and :func:`deny`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["ACKNOWLEDGED", "WebhookAnswer", "allow", "deny"]


def thaw(value: Any) -> Any:
    """A plain JSON-ready copy of a frozen or user-given structure."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


class WebhookAnswer:
    """What a blocking hook answers. Render with :meth:`to_dict` or :meth:`to_json`."""

    __slots__ = ("_body",)

    def __init__(self, body: Mapping[str, Any]) -> None:
        self._body = json.dumps(thaw(body), separators=(",", ":"), allow_nan=False).encode()

    def to_dict(self) -> dict[str, Any]:
        """A fresh copy of the JSON body."""
        out: dict[str, Any] = json.loads(self._body)
        return out

    def to_json(self) -> bytes:
        return self._body

    def headers(self) -> list[tuple[str, str]]:
        """The headers of the answer, as :meth:`WebhookError.headers` are an error's: JSON that no cache keeps."""
        return [("Content-Type", "application/json"), ("Cache-Control", "no-store")]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebhookAnswer) and other._body == self._body

    def __repr__(self) -> str:
        return f"WebhookAnswer({self._body.decode()})"


#: The answer to a non-blocking event: Authgear only reads the status.
ACKNOWLEDGED = WebhookAnswer({})


def allow() -> WebhookAnswer:
    """``{"is_allowed": true}``. For mutations, constraints and the like, use :meth:`WebhookEvent.allow`."""
    return WebhookAnswer({"is_allowed": True})


def deny(reason: str, title: str) -> WebhookAnswer:
    """``{"is_allowed": false, "reason": ..., "title": ...}``; both are shown to the end user, and required."""
    if not (isinstance(reason, str) and reason.strip() and isinstance(title, str) and title.strip()):
        raise ValueError("deny() needs a non-empty reason and title: Authgear shows them to the end user")
    return WebhookAnswer({"is_allowed": False, "reason": reason, "title": title})
