"""Impersonate-User/-Group/-Uid/-Extra-* headers, as upstream's endpoints/filters/impersonation.go.

Each requested identity part is authorized for the requester with verb `impersonate` (users, groups and
serviceaccounts in the core group; uids and userextras/<key> in authentication.k8s.io); the request then
runs as the impersonated user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from kubelite.api import errors
from kubelite.apiserver.auth import (
    ANONYMOUS_USER,
    AUTHENTICATED_GROUP,
    UNAUTHENTICATED_GROUP,
    RequestAttributes,
    UserInfo,
    forbidden_error,
)
from kubelite.apiserver.satoken import group_names, split_username

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
EXTRA_PREFIX = "impersonate-extra-"
AUTHN_GROUP = "authentication.k8s.io"


def _requests(headers: Any) -> list[tuple[str, str, str, str]]:
    """(kind, namespace, name, extra key) per requested part, in upstream's order."""
    out: list[tuple[str, str, str, str]] = []
    requested_user = headers.get(USER_HEADER, "")
    if requested_user:
        sa = split_username(requested_user)
        out.append(("ServiceAccount", sa[0], sa[1], "") if sa else ("User", "", requested_user, ""))
    for group in headers.getall(GROUP_HEADER, []):
        out.append(("Group", "", group, ""))
    for header, value in headers.items():
        if header.lower().startswith(EXTRA_PREFIX):
            out.append(("UserExtra", "", value, unquote(header[len(EXTRA_PREFIX):].lower())))
    uid = headers.get(UID_HEADER, "")
    if uid:
        out.append(("UID", "", uid, ""))
    return out


def _go_refs(reqs: list[tuple[str, str, str, str]]) -> str:
    """Go's %v of the []ObjectReference upstream reports (Kind Namespace Name UID APIVersion RV FieldPath)."""
    parts = []
    for kind, ns, name, key in reqs:
        api_version = f"{AUTHN_GROUP}/v1" if kind in ("UserExtra", "UID") else ""
        parts.append("{" + " ".join([kind, ns, name, "", api_version, "", key]) + "}")
    return "[" + " ".join(parts) + "]"


def impersonate(requester: UserInfo, headers: Any, path: str,
                authorize: Callable[[UserInfo, RequestAttributes], tuple[bool, str]]) -> UserInfo:
    """The user the request acts as: requester itself without Impersonate-* headers, else the impersonated
    user once every part is authorized. Raises StatusError (403, or 500 for a user-less request)."""
    reqs = _requests(headers)
    if not reqs:
        return requester
    if not headers.get(USER_HEADER, ""):
        raise errors.StatusError(500, "InternalError",
                                 f'Internal error occurred: requested {_go_refs(reqs)} without impersonating a user')
    groups_specified = bool(headers.getall(GROUP_HEADER, []))
    username, uid = "", ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for kind, ns, name, key in reqs:
        group, resource, subresource = "", "", ""
        if kind == "ServiceAccount":
            resource = "serviceaccounts"
            username = f"system:serviceaccount:{ns}:{name}"
            if not groups_specified:
                groups = list(group_names(ns))
        elif kind == "User":
            resource, username = "users", name
        elif kind == "Group":
            resource = "groups"
            groups.append(name)
        elif kind == "UserExtra":
            group, resource, subresource = AUTHN_GROUP, "userextras", key
            extra.setdefault(key, []).append(name)
        else:
            group, resource, uid = AUTHN_GROUP, "uids", name
        attrs = RequestAttributes(verb="impersonate", path=path, resource_request=True, api_group=group,
                                  api_version="v1", resource=resource, subresource=subresource, namespace=ns,
                                  name=name)
        allowed, reason = authorize(requester, attrs)
        if not allowed:
            raise forbidden_error(requester, attrs, reason)
    if username != ANONYMOUS_USER:
        if AUTHENTICATED_GROUP not in groups and UNAUTHENTICATED_GROUP not in groups:
            groups.append(AUTHENTICATED_GROUP)
    elif UNAUTHENTICATED_GROUP not in groups:
        groups.append(UNAUTHENTICATED_GROUP)
    return UserInfo(username, uid, tuple(groups), {k: tuple(v) for k, v in extra.items()})
