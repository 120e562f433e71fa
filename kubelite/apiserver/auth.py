"""Who is calling (authentication) and may they (authorization), as kube-apiserver decides it.

Authentication tries, in upstream's order: the TLS client certificate (CN = user, O = groups, signed by
the cluster CA), then a bearer token (static token file, then pluggable token authenticators such as
ServiceAccount tokens). Anyone authenticated gains the group `system:authenticated`.

Anonymous requests: kube-apiserver 1.32 lets an AuthenticationConfiguration restrict anonymous access to
chosen paths (KEP-4633, beta in 1.32); kubelite behaves as if configured with the health and version
endpoints that upstream's `system:public-info-viewer` role opens to everyone (/healthz, /livez, /readyz,
/version). There a request without credentials is `system:anonymous` in `system:unauthenticated`;
anywhere else it gets 401 Unauthorized. Credentials that are presented but wrong (an unknown bearer
token) get 401 everywhere, as upstream.
"""

from __future__ import annotations

import base64
import binascii
import csv
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import errors

log = logging.getLogger(__name__)

ANONYMOUS_USER = "system:anonymous"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
AUTHENTICATED_GROUP = "system:authenticated"
MASTERS_GROUP = "system:masters"
# upstream's system:public-info-viewer nonResourceURLs (exact matches, as RBAC compares them)
PUBLIC_INFO_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})
# the WebSocket subprotocol browsers use to carry a bearer token (upstream's wsstream authenticator)
WEBSOCKET_BEARER_PREFIX = "base64url.bearer.authorization.k8s.io."


@dataclass(frozen=True)
class UserInfo:
    """An authenticated identity, as upstream's user.Info."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)

    @property
    def anonymous(self) -> bool:
        return self.name == ANONYMOUS_USER


ANONYMOUS = UserInfo(ANONYMOUS_USER, "", (UNAUTHENTICATED_GROUP,))

# A token authenticator maps a bearer token to a user, or None if the token is not one of its own
# (sync, or async when it must look objects up, as the ServiceAccount token authenticator does).
TokenAuthenticator = Callable[[str], "UserInfo | None | Awaitable[UserInfo | None]"]

# The user a request acts as (after impersonation), for what runs inside the request: escalation checks,
# access reviews. None outside a request: the in-process components, which act as system:masters.
current_user: ContextVar[UserInfo | None] = ContextVar("current_user", default=None)


class TokenFileError(ValueError):
    pass


def load_token_file(path: str) -> dict[str, UserInfo]:
    """Read upstream's --token-auth-file CSV: `token,user,uid[,"group1,group2"]`, further columns ignored."""
    tokens: dict[str, UserInfo] = {}
    with open(path, newline="") as f:
        for num, record in enumerate((r for r in csv.reader(f) if r), start=1):
            if len(record) < 3:
                raise TokenFileError(
                    f"token file '{path}' must have at least 3 columns (token, user name, user uid), found {len(record)}")
            token, name, uid = record[0], record[1], record[2]
            if not token:
                log.warning("empty token has been found in token file '%s', record number '%d'", path, num)
                continue
            if token in tokens:
                log.warning("duplicate token has been found in token file '%s', record number '%d'", path, num)
            groups = tuple(record[3].split(",")) if len(record) >= 4 else ()
            tokens[token] = UserInfo(name, uid, groups)
    return tokens


class Authenticator:
    """Turns a request into a UserInfo, or None when it must be answered 401 Unauthorized."""

    def __init__(self, token_file: str | None = None, *,
                 token_authenticators: Sequence[TokenAuthenticator] = (),
                 anonymous_paths: Collection[str] = PUBLIC_INFO_PATHS):
        self._tokens = load_token_file(token_file) if token_file else {}
        self._token_authenticators: list[TokenAuthenticator] = list(token_authenticators)
        self.anonymous_paths = frozenset(anonymous_paths)

    def add_token_authenticator(self, authenticator: TokenAuthenticator) -> None:
        """Hook for later token kinds: ServiceAccount JWTs, bootstrap tokens. Tried after the token file.

        Must not block: verify signatures in memory and look objects up in an informer cache, as upstream does.
        """
        self._token_authenticators.append(authenticator)

    async def authenticate(self, request: Any) -> UserInfo | None:
        """`request` is an aiohttp request (needs .transport, .headers, .path)."""
        user = self._from_client_cert(request)
        if user is None:
            token = bearer_token(request.headers)
            if token is not None:
                user = await self.authenticate_token(token)
                if user is None:
                    return None  # a wrong token is refused even where anonymous access is allowed
            elif request.path in self.anonymous_paths:
                return ANONYMOUS
            else:
                return None
        return with_authenticated_group(user)

    async def authenticate_token(self, token: str) -> UserInfo | None:
        user = self._tokens.get(token)
        if user is not None:
            return with_authenticated_group(user)
        for authenticator in self._token_authenticators:
            found = authenticator(token)
            if inspect.isawaitable(found):
                found = await found
            if found is not None:
                return with_authenticated_group(found)
        return None

    @staticmethod
    def _from_client_cert(request: Any) -> UserInfo | None:
        transport = request.transport
        # the TLS transport decoded the peer certificate once, at the handshake
        return user_from_peer_cert(transport.get_extra_info("peercert")) if transport is not None else None


def with_authenticated_group(user: UserInfo) -> UserInfo:
    """Upstream's group adder: every authenticated user is also in system:authenticated."""
    if AUTHENTICATED_GROUP in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED_GROUP), user.extra)


def user_from_peer_cert(cert: dict | None) -> UserInfo | None:
    """CN is the user name, each O a group (upstream's x509 CommonNameUserConversion). The TLS layer has
    already verified the chain against the cluster CA (CERT_OPTIONAL): an unverified certificate never
    reaches here."""
    if not cert:
        return None
    return _user_of_subject(cert.get("subject", ()))


@functools.lru_cache(maxsize=256)
def _user_of_subject(subject: tuple) -> UserInfo | None:
    """Every request on a connection, and every connection of a client, carries the same subject."""
    cn = ""
    groups: list[str] = []
    for rdn in subject:
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                groups.append(value)
    if not cn:
        return None
    return UserInfo(cn, "", tuple(groups))


def bearer_token(headers: Any) -> str | None:
    """The token of `Authorization: Bearer <token>`, or, on a WebSocket upgrade, of the bearer subprotocol."""
    auth = headers.get("Authorization", "")
    parts = auth.split()
    if len(parts) >= 2 and parts[0].lower() == "bearer" and parts[1]:
        return parts[1]
    if headers.get("Upgrade", "").lower() != "websocket":
        return None
    for proto in headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(WEBSOCKET_BEARER_PREFIX):
            encoded = proto[len(WEBSOCKET_BEARER_PREFIX):]
            try:
                token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                return ""  # presented but malformed: refuse
            return token
    return None


# ---- authorization ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestAttributes:
    """What a request does, as upstream's authorizer.Attributes (RequestInfo + user)."""

    verb: str
    path: str
    resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


class Authorizer:
    """The authorizer interface, and the fallback when RBAC is not wired: system:masters and authenticated
    users may do anything, anonymous users only read the public-info paths. The control plane uses
    `kubelite.apiserver.authz.rbac.RBACAuthorizer`, which has the same `authorize` signature.
    """

    def authorize(self, user: UserInfo, attributes: RequestAttributes) -> tuple[bool, str]:
        if MASTERS_GROUP in user.groups:
            return True, ""
        if UNAUTHENTICATED_GROUP in user.groups or user.anonymous:
            if (not attributes.resource_request and attributes.verb == "get"
                    and attributes.path in PUBLIC_INFO_PATHS):
                return True, 'RBAC: allowed by ClusterRoleBinding "system:public-info-viewer"'
            return False, ""
        if AUTHENTICATED_GROUP in user.groups:
            return True, ""
        return False, ""


_NON_RESOURCE_VERBS = {"GET": "get", "HEAD": "get", "POST": "post", "PUT": "put", "PATCH": "patch",
                       "DELETE": "delete", "OPTIONS": "options"}


def request_attributes(method: str, path: str, query: Any = None) -> RequestAttributes:
    """Upstream's RequestInfoFactory: /api/v1/namespaces/ns/pods/name/status -> get pods/status in ns.

    `query` is a mapping of query parameters (for `watch=` and `fieldSelector=metadata.name=`).
    """
    query = query or {}
    parts = [p for p in path.split("/") if p]
    verb = _NON_RESOURCE_VERBS.get(method.upper(), method.lower())
    if not parts or parts[0] not in ("api", "apis"):
        return RequestAttributes(verb=verb, path=path)
    if parts[0] == "api":
        group, rest = "", parts[1:]
    else:
        if len(parts) < 2:
            return RequestAttributes(verb=verb, path=path)
        group, rest = parts[1], parts[2:]
    if not rest:
        return RequestAttributes(verb=verb, path=path)
    version, rest = rest[0], rest[1:]
    if not rest:  # discovery of one group version
        return RequestAttributes(verb=verb, path=path)
    watch_prefix = False
    if rest[0] == "watch":
        watch_prefix, rest = True, rest[1:]
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace = rest[1]
        # /namespaces/ns/status and /finalize are subresources of the Namespace itself
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    m = method.upper()
    if m in ("GET", "HEAD"):
        verb = "get" if name else "list"
        if watch_prefix or _truthy(query.get("watch", "")):
            verb = "watch"
        if verb in ("list", "watch"):
            selector = query.get("fieldSelector", "")
            if selector.startswith("metadata.name=") and "," not in selector:
                name = selector[len("metadata.name="):]
    elif m == "POST":
        verb = "create"
    elif m == "PUT":
        verb = "update"
    elif m == "PATCH":
        verb = "patch"
    elif m == "DELETE":
        verb = "delete" if name else "deletecollection"
    return RequestAttributes(verb=verb, path=path, resource_request=True, api_group=group, api_version=version,
                             resource=resource, subresource=subresource, namespace=namespace, name=name)


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "t", "yes", "y")


def unauthorized_error() -> errors.StatusError:
    """The 401 body upstream sends: Status Failure, reason Unauthorized, message "Unauthorized"."""
    return errors.new_unauthorized("Unauthorized")


def forbidden_error(user: UserInfo, attributes: RequestAttributes, reason: str = "") -> errors.StatusError:
    """Upstream's forbidden wording, e.g. `pods is forbidden: User "bob" cannot list resource "pods" in
    API group "" in the namespace "default"`."""
    a = attributes
    if a.resource_request:
        resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        msg = f'User "{user.name}" cannot {a.verb} resource "{resource}" in API group "{a.api_group}"'
        msg += f' in the namespace "{a.namespace}"' if a.namespace else " at the cluster scope"
        if reason:
            msg += f": {reason}"
        return errors.new_forbidden(a.resource, a.api_group, a.name, msg)
    msg = f'User "{user.name}" cannot {a.verb} path "{a.path}"'
    if reason:
        msg += f": {reason}"
    return errors.StatusError(403, "Forbidden", f"forbidden: {msg}", {})


def make_auth_middleware(authenticator: Authenticator, authorizer: Any):
    """An aiohttp middleware answering 401/403 as Status objects. It applies Impersonate-* headers, then
    authorizes; sets request["user"] and request["attributes"] and `current_user` for what the request
    runs (audit, reviews, escalation checks)."""
    from aiohttp import web

    from kubelite.apiserver.authz.impersonation import impersonate

    def status_response(err: errors.StatusError) -> web.Response:
        import orjson

        return web.Response(status=err.code, body=orjson.dumps(err.status()), content_type="application/json")

    @web.middleware
    async def auth_middleware(request: web.Request, handler):
        user = await authenticator.authenticate(request)
        if user is None:
            return status_response(unauthorized_error())
        try:
            user = impersonate(user, request.headers, request.path, authorizer.authorize)
        except errors.StatusError as e:
            return status_response(e)
        attributes = request_attributes(request.method, request.path, request.query)
        allowed, reason = authorizer.authorize(user, attributes)
        if not allowed:
            return status_response(forbidden_error(user, attributes, reason))
        request["user"] = user
        request["attributes"] = attributes
        token = current_user.set(user)
        try:
            return await handler(request)
        finally:
            current_user.reset(token)

    return auth_middleware
