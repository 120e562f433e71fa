"""Upstream's ServiceAccount admission: a new pod's service account must exist, and unless automounting
is turned off (on the pod, else on the account) every container gets the `kube-api-access-xxxxx`
projected volume (bound token, cluster CA, namespace) at /var/run/secrets/kubernetes.io/serviceaccount,
which is what `kubectl describe pod` shows under Mounts and Volumes on every upstream cluster."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from kubelite.api import errors
from kubelite.api.meta import generate_name
from kubelite.api.registry import Resource
from kubelite.apiserver.admission import AdmissionPlugin

Obj = dict[str, Any]

TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# serviceaccount.WarnOnlyBoundTokenExpirationSeconds: an hour plus seven seconds, so the server can tell
# an admission-made token from a requested one
TOKEN_EXPIRATION_SECONDS = 3607


def token_volume_source() -> Obj:
    """TokenVolumeSource(): the projected source admission adds (defaultMode set explicitly, as upstream)."""
    return {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}


def mount_service_account_token(spec: Obj) -> None:
    """mountServiceAccountToken: reuse a kube-api-access-* volume if the pod has one, mount it read-only
    in every (init) container that has nothing at the token path, add the volume if one was mounted."""
    volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
    name = next((v["name"] for v in volumes if isinstance(v, dict) and isinstance(v.get("name"), str)
                 and v["name"].startswith(VOLUME_PREFIX)), "")
    has_volume = bool(name)
    name = name or generate_name(VOLUME_PREFIX)
    needs_volume = False
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            mounts = c.get("volumeMounts") if isinstance(c.get("volumeMounts"), list) else []
            if any(isinstance(m, dict) and m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                continue
            c["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]
            needs_volume = True
    if needs_volume and not has_volume:
        spec["volumes"] = [*volumes, {"name": name, "projected": token_volume_source()}]


class ServiceAccountAdmission(AdmissionPlugin):
    """`require_existing`: off only when kubelite runs without its controller manager, where nothing
    would ever create the `default` account (upstream has no such mode; its controller always runs)."""

    def __init__(self, require_existing: bool = True):
        self.require_existing = require_existing

    async def _lookup(self, namespace: str, name: str) -> Obj | None:
        assert self._service is not None
        res = self._service.registry.get("", "v1", "serviceaccounts")
        if res is None:
            return None
        key = res.key(namespace, name)
        # the `default` account is made by a controller right after its namespace: give it the moment
        # upstream gives it (ten lookups 100-200 ms apart)
        attempts = 10 if name == "default" else 1
        interval = random.uniform(0.1, 0.2)
        for i in range(attempts):
            if i:
                await asyncio.sleep(interval)
            sa = await self._service.store.get(key)
            if sa is not None:
                return sa
        return None

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        if op != "CREATE" or res.group != "" or res.plural != "pods" or self._service is None:
            return
        meta = obj.get("metadata") or {}
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        # upstream names a pod by its generateName in admission errors (its name is not made yet):
        # `pods "web-5d4f8b7c9-" is forbidden: ...` in a ReplicaSet's FailedCreate event
        pod_name = meta.get("generateName") or meta.get("name") or ""
        if MIRROR_ANNOTATION in (meta.get("annotations") or {}):
            return
        namespace = meta.get("namespace") or ""
        sa_name = spec.get("serviceAccountName") or "default"
        spec["serviceAccountName"] = sa_name
        sa = await self._lookup(namespace, sa_name)
        if sa is None and (self.require_existing or sa_name != "default"):
            raise errors.new_forbidden("pods", "", pod_name, f"error looking up service account {namespace}/{sa_name}: "
                                       f'serviceaccount "{sa_name}" not found')
        automount = spec.get("automountServiceAccountToken")
        if automount is None:
            automount = (sa or {}).get("automountServiceAccountToken")
        if automount is None or automount:
            mount_service_account_token(spec)
        if not spec.get("imagePullSecrets") and (sa or {}).get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in sa["imagePullSecrets"]
                                        if isinstance(s, dict)]
