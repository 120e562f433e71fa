"""Legacy ServiceAccount token Secrets, as upstream's TokensController (pkg/controller/serviceaccount).

A Secret of type kubernetes.io/service-account-token naming a ServiceAccount in the annotation
`kubernetes.io/service-account.name` gets a non-expiring signed token, the cluster CA and its namespace
in `data`, and the ServiceAccount's uid in `kubernetes.io/service-account.uid`. A token Secret whose
ServiceAccount is gone (or was recreated with another uid) is deleted, which revokes its token.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.apiserver.satoken import SigningKey, legacy_claims
from kubelite.client.controller import Controller
from kubelite.client.informer import SharedInformerFactory

log = logging.getLogger(__name__)

Obj = dict[str, Any]
TOKEN_TYPE = "kubernetes.io/service-account-token"
NAME_ANNOTATION = "kubernetes.io/service-account.name"
UID_ANNOTATION = "kubernetes.io/service-account.uid"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class TokensController:
    def __init__(self, client: Any, factory: SharedInformerFactory, key: SigningKey, ca_pem: str | None,
                 workers: int = 2):
        self.secrets = client.resource("", "v1", "secrets")
        self.key = key
        self.ca_pem = ca_pem or ""
        self.sa_informer = factory.informer("", "v1", "serviceaccounts")
        self.secret_informer = factory.informer("", "v1", "secrets")
        self.secret_informer.store.add_index("serviceaccount", _token_secret_sa)
        self.controller = Controller("serviceaccount-token-controller", self.sync, workers=workers)
        self.controller.watch(self.secret_informer,
                              key=lambda s: None if s.get("type") != TOKEN_TYPE else _key(s))
        self.sa_informer.add_handler(on_add=self._sa_changed, on_update=lambda _o, n: self._sa_changed(n),
                                     on_delete=self._sa_changed)

    def _sa_changed(self, sa: Obj) -> None:
        m = sa.get("metadata") or {}
        for secret in self.secret_informer.store.by_index("serviceaccount", f"{m.get('namespace')}/{m.get('name')}"):
            self.controller.enqueue(_key(secret))

    async def sync(self, key: str) -> None:
        ns, _, name = key.partition("/")
        secret = self.secret_informer.store.get(ns, name)
        if secret is None or secret.get("type") != TOKEN_TYPE or secret["metadata"].get("deletionTimestamp"):
            return
        annotations = secret["metadata"].get("annotations") or {}
        sa = self.sa_informer.store.get(ns, annotations.get(NAME_ANNOTATION) or "")
        want_uid = annotations.get(UID_ANNOTATION)
        if sa is None or (want_uid and sa["metadata"].get("uid") != want_uid):
            await self._delete(secret)
            return
        data = secret.get("data") or {}
        if data.get("token") and data.get("namespace") and (data.get("ca.crt") or not self.ca_pem) \
                and want_uid == sa["metadata"].get("uid"):
            return
        updated = dict(secret)
        updated["metadata"] = dict(secret["metadata"])
        updated["metadata"]["annotations"] = dict(annotations, **{UID_ANNOTATION: sa["metadata"].get("uid", "")})
        new_data = dict(data)
        if not new_data.get("token"):
            new_data["token"] = _b64(self.key.sign(legacy_claims(sa, name)))
        new_data["namespace"] = _b64(ns)
        if self.ca_pem:
            new_data["ca.crt"] = _b64(self.ca_pem)
        updated["data"] = new_data
        try:
            await self.secrets.update(updated, namespace=ns)
        except StatusError as e:
            if e.reason in ("Conflict", "NotFound"):
                return
            raise

    async def _delete(self, secret: Obj) -> None:
        m = secret["metadata"]
        try:
            await self.secrets.delete(m["name"], namespace=m["namespace"], preconditions={"uid": m.get("uid")})
        except StatusError as e:
            if e.reason not in ("NotFound", "Conflict"):
                raise

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()


def _key(obj: Obj) -> str:
    m = obj.get("metadata") or {}
    return f"{m.get('namespace')}/{m.get('name')}"


def _token_secret_sa(secret: Obj) -> str | None:
    if secret.get("type") != TOKEN_TYPE:
        return None
    m = secret.get("metadata") or {}
    name = (m.get("annotations") or {}).get(NAME_ANNOTATION)
    return f"{m.get('namespace')}/{name}" if name else None
