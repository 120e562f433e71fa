"""authentication.k8s.io/v1: SelfSubjectReview (`kubectl auth whoami`) and TokenReview, computed per request.

`register` serves both with no authenticator behind TokenReview (every token is refused); the control
plane calls `bind` to answer TokenReview with the API server's own authenticators.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.api import errors, schema
from kubelite.api.registry import Registry, Resource

Obj = dict[str, Any]
GROUP = "authentication.k8s.io"
# (token, audiences) -> (user or None, audiences the token is good for, error text)
TokenReviewer = Callable[[str, list[str]], Awaitable[tuple[Any, list[str], str]]]


def user_info(user: Any) -> Obj:
    """UserInfo as upstream serializes it (username, uid, groups, extra)."""
    if user is None:
        return {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
    info: Obj = {"username": user.name}
    if getattr(user, "uid", ""):
        info["uid"] = user.uid
    info["groups"] = list(user.groups)
    if getattr(user, "extra", None):
        info["extra"] = {k: list(v) for k, v in user.extra.items()}
    return info


def self_subject_review(obj: Obj, user: Any) -> Obj:
    return {"kind": "SelfSubjectReview", "apiVersion": f"{GROUP}/v1",
            "metadata": {"creationTimestamp": None}, "status": {"userInfo": user_info(user)}}


async def _refuse_all(token: str, audiences: list[str]) -> tuple[Any, list[str], str]:
    return None, [], "invalid bearer token"


def token_review(reviewer: TokenReviewer) -> Callable[[Obj, Any], Awaitable[Obj]]:
    """Upstream's TokenReview REST: authenticate spec.token for spec.audiences (default: the API's)."""

    async def review(obj: Obj, _user: Any) -> Obj:
        spec = dict(obj.get("spec") or {})
        token = spec.get("token") or ""
        if not token:
            raise errors.new_bad_request("token is required for TokenReview in authentication")
        user, audiences, error = await reviewer(token, list(spec.get("audiences") or []))
        status: Obj
        if user is not None:
            status = {"authenticated": True, "user": user_info(user)}
            if audiences:
                status["audiences"] = audiences
        else:
            status = {"user": {}, "error": error or "invalid bearer token"}
        metadata = dict(obj.get("metadata") or {})
        metadata.setdefault("creationTimestamp", None)
        return {"kind": "TokenReview", "apiVersion": f"{GROUP}/v1", "metadata": metadata, "spec": spec,
                "status": status}

    return review


def _resource(kind: str, plural: str, review: Callable) -> Resource:
    return Resource(group=GROUP, version="v1", kind=kind, plural=plural, namespaced=False, verbs=("create",),
                    definition=schema.definition_for_kind(GROUP, "v1", kind) or "", review=review)


def register(reg: Registry) -> None:
    reg.register(_resource("SelfSubjectReview", "selfsubjectreviews", self_subject_review))
    reg.register(_resource("TokenReview", "tokenreviews", token_review(_refuse_all)))


def bind(reg: Registry, reviewer: TokenReviewer) -> None:
    """Serve TokenReview from the API server's authenticators."""
    reg.register(_resource("TokenReview", "tokenreviews", token_review(reviewer)))
