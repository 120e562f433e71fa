"""POST serviceaccounts/<name>/token: upstream's TokenREST (pkg/registry/core/serviceaccount/storage/token.go).

`kubectl create token SA [--duration D] [--audience A] [--bound-object-kind Pod --bound-object-name P]`
lands here. The token is a signed JWT whose claims bind it to the ServiceAccount's uid and, optionally, to
a Pod, Secret or Node: deleting any of them revokes it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from kubelite.api import errors, meta
from kubelite.apiserver.satoken import SigningKey, bound_claims
from kubelite.apiserver.satoken_authn import get_object

Obj = dict[str, Any]
GROUP = "authentication.k8s.io"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32
BOUND_KINDS = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}


class TokenRequestREST:
    def __init__(self, key: SigningKey, issuer: str, api_audiences: list[str]):
        self.key = key
        self.issuer = issuer
        self.api_audiences = list(api_audiences)

    def _validate(self, name: str, spec: Obj) -> None:
        fe: list[errors.FieldError] = []
        exp = spec.get("expirationSeconds")
        if exp is not None:
            if not isinstance(exp, int) or exp < MIN_EXPIRATION:
                fe.append(errors.invalid("spec.expirationSeconds", exp,
                                         "may not specify a duration less than 10 minutes"))
            elif exp > MAX_EXPIRATION:
                fe.append(errors.invalid("spec.expirationSeconds", exp,
                                         "may not specify a duration larger than 2^32 seconds"))
        ref = spec.get("boundObjectRef")
        if ref:
            if ref.get("kind") not in BOUND_KINDS:
                fe.append(errors.not_supported("spec.boundObjectRef.kind", ref.get("kind") or "",
                                               list(BOUND_KINDS)))
            if (ref.get("apiVersion") or "v1") != "v1":
                fe.append(errors.not_supported("spec.boundObjectRef.apiVersion", ref.get("apiVersion"), ["v1"]))
            if not ref.get("name"):
                fe.append(errors.required("spec.boundObjectRef.name", ""))
        if fe:
            raise errors.new_invalid("TokenRequest", GROUP, name, fe)

    async def create(self, service: Any, namespace: str, name: str, body: Obj, dry_run: bool) -> Obj:
        spec = dict(body.get("spec") or {})
        self._validate(name, spec)
        sa = await get_object(service, "serviceaccounts", namespace, name)
        if sa is None:
            raise errors.new_not_found("serviceaccounts", "", name)
        bound: dict[str, Obj] = {}
        ref = spec.get("boundObjectRef")
        if ref:
            kind = ref["kind"]
            obj = await get_object(service, BOUND_KINDS[kind], namespace, ref["name"])
            if obj is None:
                raise errors.new_not_found(BOUND_KINDS[kind], "", ref["name"])
            if ref.get("uid") and ref["uid"] != obj["metadata"].get("uid"):
                raise errors.new_conflict(kind, "", ref["name"],
                                          f"the UID in the bound object reference ({ref['uid']}) does not match "
                                          "the UID in record. The object might have been deleted and then recreated")
            if kind == "Pod":
                if ((obj.get("spec") or {}).get("serviceAccountName") or "default") != name:
                    raise errors.new_bad_request(f'cannot bind token for serviceaccount "{name}" to pod running '
                                                 "with different serviceaccount name.")
                node_name = (obj.get("spec") or {}).get("nodeName")
                node = await get_object(service, "nodes", None, node_name) if node_name else None
                if node is not None:
                    bound["node"] = node
            bound[kind.lower()] = obj
            spec["boundObjectRef"] = {"kind": kind, "apiVersion": "v1", "name": ref["name"],
                                      "uid": obj["metadata"].get("uid", "")}
        spec["audiences"] = list(spec.get("audiences") or self.api_audiences)
        spec.setdefault("expirationSeconds", DEFAULT_EXPIRATION)
        now = int(time.time())
        claims = bound_claims(self.issuer, spec["audiences"], namespace, sa, now, spec["expirationSeconds"],
                              str(uuid.uuid4()), pod=bound.get("pod"), secret=bound.get("secret"),
                              node=bound.get("node"))
        token = "" if dry_run else self.key.sign(claims)
        return {"kind": "TokenRequest", "apiVersion": f"{GROUP}/v1",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": meta.now_rfc3339(now)},
                "spec": spec,
                "status": {"token": token, "expirationTimestamp": meta.now_rfc3339(claims["exp"])}}
