"""Authentication of ServiceAccount tokens, as upstream's pkg/serviceaccount/jwt.go and its validators.

A bound token (TokenRequest) is good while it has not expired, names one of the API audiences, and the
ServiceAccount (and the Pod/Secret/Node it is bound to) still exists with the uid in its claims. A legacy
token is good while its Secret exists, still holds that very token, and the ServiceAccount's uid matches.
Lookups read the store's in-memory objects: no extra request, no scan.
"""

from __future__ import annotations

import time
from typing import Any

from kubelite.apiserver.auth import UserInfo
from kubelite.apiserver.satoken import (
    LEGACY_ISSUER,
    InvalidToken,
    SigningKey,
    group_names,
    looks_like_jwt,
    make_username,
)

Obj = dict[str, Any]
LEEWAY = 60  # seconds of clock skew tolerated on exp/nbf, as upstream's jwt.DefaultLeeway
EXTRA_PREFIX = "authentication.kubernetes.io/"


async def get_object(service: Any, plural: str, namespace: str | None, name: str) -> Obj | None:
    """A core/v1 object from the store, or None."""
    res = service.registry.get("", "v1", plural)
    if res is None or not name:
        return None
    return await service.store.get(res.key(namespace if res.namespaced else None, name))


class ServiceAccountTokenAuthenticator:
    """Callable as an `Authenticator` token authenticator; `review` serves TokenReview."""

    def __init__(self, key: SigningKey, service: Any, issuer: str, api_audiences: list[str]):
        self.key = key
        self.service = service
        self.issuer = issuer
        self.api_audiences = list(api_audiences)

    async def __call__(self, token: str) -> UserInfo | None:
        try:
            found = await self.authenticate(token, self.api_audiences)
        except InvalidToken:
            return None
        return found[0] if found else None

    async def authenticate(self, token: str, audiences: list[str]) -> tuple[UserInfo, list[str]] | None:
        """(user, audiences the token is good for), None for a token that is not one of ours, or
        InvalidToken with upstream's reason when it is ours but no longer valid."""
        if not looks_like_jwt(token):
            return None
        try:
            claims = self.key.verify(token)
        except InvalidToken:
            return None
        if claims.get("iss") == LEGACY_ISSUER:
            return await self._legacy(token, claims), list(audiences)
        if claims.get("iss") != self.issuer:
            return None
        return await self._bound(claims, audiences)

    async def _legacy(self, token: str, claims: Obj) -> UserInfo:
        ns = claims.get("kubernetes.io/serviceaccount/namespace") or ""
        sa_name = claims.get("kubernetes.io/serviceaccount/service-account.name") or ""
        sa_uid = claims.get("kubernetes.io/serviceaccount/service-account.uid") or ""
        secret_name = claims.get("kubernetes.io/serviceaccount/secret.name") or ""
        if not (ns and sa_name and secret_name):
            raise InvalidToken("service account token claims are incomplete")
        secret = await get_object(self.service, "secrets", ns, secret_name)
        if secret is None or (secret.get("metadata") or {}).get("deletionTimestamp"):
            raise InvalidToken("Token has been invalidated")
        import base64

        stored = (secret.get("data") or {}).get("token") or ""
        try:
            stored_token = base64.b64decode(stored).decode()
        except ValueError:
            stored_token = ""
        if stored_token != token:
            raise InvalidToken("Token does not match server's copy")
        sa = await get_object(self.service, "serviceaccounts", ns, sa_name)
        if sa is None or (sa.get("metadata") or {}).get("deletionTimestamp") or sa["metadata"].get("uid") != sa_uid:
            raise InvalidToken("Token has been invalidated")
        return UserInfo(make_username(ns, sa_name), sa_uid, group_names(ns))

    async def _bound(self, claims: Obj, audiences: list[str]) -> tuple[UserInfo, list[str]]:
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if isinstance(exp, (int, float)) and now > exp + LEEWAY:
            raise InvalidToken("service account token has expired")
        if isinstance(nbf, (int, float)) and now < nbf - LEEWAY:
            raise InvalidToken("service account token is not valid yet")
        token_aud = claims.get("aud") or []
        if isinstance(token_aud, str):
            token_aud = [token_aud]
        good = [a for a in audiences if a in token_aud]
        if not good:
            raise InvalidToken(f"token audiences {_go_q(token_aud)} is invalid for the target audiences "
                               f"{_go_q(audiences)}")
        private = claims.get("kubernetes.io") or {}
        ns = private.get("namespace") or ""
        sa_ref = private.get("serviceaccount") or {}
        sa = await get_object(self.service, "serviceaccounts", ns, sa_ref.get("name") or "")
        if sa is None:
            raise InvalidToken(f'serviceaccounts "{sa_ref.get("name")}" not found')
        if sa["metadata"].get("deletionTimestamp"):
            raise InvalidToken(f"service account {ns}/{sa_ref.get('name')} has been deleted")
        if sa["metadata"].get("uid") != sa_ref.get("uid"):
            raise InvalidToken(f"service account UID ({sa['metadata'].get('uid')}) does not match claim "
                               f"({sa_ref.get('uid')})")
        extra: dict[str, tuple[str, ...]] = {}
        for kind, plural in (("pod", "pods"), ("secret", "secrets"), ("node", "nodes")):
            ref = private.get(kind)
            if not ref:
                continue
            obj = await get_object(self.service, plural, None if kind == "node" else ns, ref.get("name") or "")
            # a node reference beside a pod is informational (the pod's node), as upstream
            if kind == "node" and private.get("pod"):
                obj = obj or {"metadata": {"uid": ref.get("uid")}}
            if obj is None:
                raise InvalidToken(f'{plural} "{ref.get("name")}" not found')
            if obj["metadata"].get("deletionTimestamp") and kind != "node":
                raise InvalidToken(f"{kind} {ref.get('name')} has been deleted")
            if obj["metadata"].get("uid") != ref.get("uid"):
                raise InvalidToken(f"{kind} UID ({obj['metadata'].get('uid')}) does not match claim ({ref.get('uid')})")
            if kind in ("pod", "node"):
                extra[f"{EXTRA_PREFIX}{kind}-name"] = (ref.get("name") or "",)
                extra[f"{EXTRA_PREFIX}{kind}-uid"] = (ref.get("uid") or "",)
        if claims.get("jti"):
            extra[f"{EXTRA_PREFIX}credential-id"] = (f"JTI={claims['jti']}",)
        user = UserInfo(make_username(ns, sa["metadata"]["name"]), sa["metadata"].get("uid", ""),
                        group_names(ns), extra)
        return user, good


def _go_q(items: list[str]) -> str:
    from kubelite.apiserver.authz.rules import go_quote_list

    return go_quote_list(items)
