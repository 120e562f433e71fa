"""Access control of one API server: who may call (authentication) and what they may do (RBAC).

Assembles what kube-apiserver wires from its flags: the client-certificate and static-token authenticators
plus ServiceAccount tokens, the RBAC authorizer with its watch-fed caches, the escalation admission check,
the TokenRequest subresource and the review kinds (TokenReview, *SubjectAccessReview, SelfSubjectRulesReview).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubelite.apiserver.auth import Authenticator, UserInfo, make_auth_middleware, with_authenticated_group
from kubelite.apiserver.satoken import DEFAULT_ISSUER, InvalidToken, SigningKey

log = logging.getLogger(__name__)


def issuer_for(cluster_domain: str) -> str:
    """--service-account-issuer as kubeadm sets it: https://kubernetes.default.svc.<cluster domain>."""
    return f"https://kubernetes.default.svc.{cluster_domain}" if cluster_domain else DEFAULT_ISSUER


class AccessControl:
    def __init__(self, service: Any, config: Any):
        from kubelite.apiserver.authz.escalation import RBACEscalationCheck
        from kubelite.apiserver.authz.rbac import RBACAuthorizer
        from kubelite.apiserver.satoken_authn import ServiceAccountTokenAuthenticator
        from kubelite.apiserver.tokenrequest import TokenRequestREST
        from kubelite.client.client import Client

        self.service = service
        self.issuer = issuer_for(getattr(config, "cluster_domain", ""))
        self.api_audiences = [self.issuer]
        self.key = SigningKey(config.tls_dir)
        self.authorizer = RBACAuthorizer(Client.in_process(service))
        self.sa_tokens = ServiceAccountTokenAuthenticator(self.key, service, self.issuer, self.api_audiences)
        self.authenticator = Authenticator(config.token_file, token_authenticators=[self.sa_tokens])
        self.escalation = RBACEscalationCheck(self.authorizer)
        self.token_request = TokenRequestREST(self.key, self.issuer, self.api_audiences)
        self._key_task: asyncio.Future | None = None

    async def start(self) -> None:
        from kubelite.api.kinds import authentication, authorization

        # the signing key is made off the event loop; the first token waits for it under the key's lock
        self._key_task = asyncio.get_running_loop().run_in_executor(None, self.key.ensure)
        await self.authorizer.start()
        self.service.add_admission_plugin(self.escalation)
        self.service.token_request = self.token_request
        authorization.bind(self.service.registry, self.authorizer)
        authentication.bind(self.service.registry, self.review_token)

    async def stop(self) -> None:
        await self.authorizer.stop()
        if self._key_task is not None:
            try:
                await self._key_task
            except Exception:  # a key that could not be written is reported when a token needs it
                log.exception("service account signing key")

    def add_routes(self, app: Any, server_url: str) -> None:
        """Service account issuer discovery (OIDC): /.well-known/openid-configuration and /openid/v1/jwks,
        readable by ServiceAccounts through system:service-account-issuer-discovery, as upstream."""
        from aiohttp import web

        headers = {"Cache-Control": "public, max-age=3600"}
        config = {"issuer": self.issuer, "jwks_uri": f"{server_url}/openid/v1/jwks",
                  "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                  "id_token_signing_alg_values_supported": ["ES256"]}

        async def openid_configuration(_request: web.Request) -> web.Response:
            return web.json_response(config, headers=headers)

        async def jwks(_request: web.Request) -> web.Response:
            keys = await asyncio.get_running_loop().run_in_executor(None, self.key.jwks)
            return web.json_response(keys, headers=headers, content_type="application/jwk-set+json")

        app.router.add_get("/.well-known/openid-configuration", openid_configuration)
        app.router.add_get("/openid/v1/jwks", jwks)

    def middleware(self) -> Any:
        return make_auth_middleware(self.authenticator, self.authorizer)

    async def review_token(self, token: str, audiences: list[str]) -> tuple[UserInfo | None, list[str], str]:
        """TokenReview: the user behind token for audiences (default: the API's), or upstream's error text."""
        wanted = audiences or self.api_audiences
        try:
            found = await self.sa_tokens.authenticate(token, wanted)
        except InvalidToken as e:
            return None, [], f"[invalid bearer token, {e}]"
        if found is not None:
            return with_authenticated_group(found[0]), found[1], ""
        user = await self.authenticator.authenticate_token(token)
        if user is None:
            return None, [], "invalid bearer token"
        return user, wanted, ""
