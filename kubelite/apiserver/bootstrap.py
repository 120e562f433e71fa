"""What a fresh cluster holds before anyone asks: system namespaces, the `kubernetes` Service, ...

Each object is created only if missing, so restarts keep what users changed (as upstream's
bootstrap controllers do).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import yaml

from kubelite.api import errors, meta
from kubelite.apiserver.config import ServerConfig
from kubelite.apiserver.service import APIService

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def _ensure(service: APIService, group: str, version: str, plural: str, obj: dict[str, Any],
                  validate: bool = True) -> None:
    res = service.registry.get(group, version, plural)
    if res is None:
        return
    ns = obj["metadata"].get("namespace")
    key = res.key(ns, obj["metadata"]["name"])
    current = await service.store.get(key)
    if current is not None:
        if not validate and current.get("subsets") != obj.get("subsets"):
            # the endpoint reconciler keeps the kubernetes Endpoints at the server's current address
            await service.store.update(key, {**current, "subsets": obj["subsets"]})
        return
    if not validate:
        # upstream's endpoint reconciler writes the kubernetes Endpoints straight to storage: its
        # address may be loopback, which validation forbids for user-written Endpoints
        obj["metadata"].update(uid=meta.new_uid(), creationTimestamp=meta.now_rfc3339())
        await service.store.create(key, obj)
        return
    try:
        await service.create(res, ns, obj, field_manager="kube-apiserver")
    except errors.StatusError as e:
        if e.reason != "AlreadyExists":
            log.warning("bootstrap of %s %s failed: %s", plural, obj["metadata"]["name"], e.message)


def cluster_info_kubeconfig(server: str, ca_pem: bytes) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "", "cluster": {
            "certificate-authority-data": base64.b64encode(ca_pem).decode(), "server": server}}],
        "contexts": None, "current-context": "", "preferences": {}, "users": None,
    }, sort_keys=False)


async def bootstrap(service: APIService, config: ServerConfig, server_url: str, ca_pem: bytes,
                    kubernetes_service_ip: str) -> None:
    for ns in SYSTEM_NAMESPACES:
        await _ensure(service, "", "v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": ns}})
    await _ensure(service, "", "v1", "services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": kubernetes_service_ip, "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": config.port}]},
    })
    await _ensure(service, "", "v1", "endpoints", {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": _advertise_address(config)}],
                     "ports": [{"name": "https", "port": config.port, "protocol": "TCP"}]}],
    }, validate=False)
    await _ensure(service, "", "v1", "configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cluster-info", "namespace": "kube-public"},
        "data": {"kubeconfig": cluster_info_kubeconfig(server_url, ca_pem)},
    })
    await _ensure(service, "", "v1", "configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-root-ca.crt", "namespace": "default"},
        "data": {"ca.crt": ca_pem.decode()},
    })
    await bootstrap_rbac(service)
    try:
        from kubelite.api.kinds.scheduling import builtin_priority_classes

        for pc in builtin_priority_classes():
            await _ensure(service, "scheduling.k8s.io", "v1", "priorityclasses", pc)
    except ImportError:
        pass
    try:
        from kubelite.api.kinds.storage import builtin_local_path_storage_class

        await _ensure(service, "storage.k8s.io", "v1", "storageclasses", builtin_local_path_storage_class())
    except ImportError:
        pass
    from kubelite.api.kinds.core_cluster import builtin_component_statuses
    from kubelite.api.kinds.flowcontrol import GROUP as FLOWCONTROL
    from kubelite.api.kinds.flowcontrol import builtin_configurations

    for cs in builtin_component_statuses():  # read-only kind: written straight to storage
        await _ensure(service, "", "v1", "componentstatuses", cs, validate=False)
    for plural, obj in builtin_configurations():
        await _ensure(service, FLOWCONTROL, "v1", plural, obj)


async def bootstrap_rbac(service: APIService) -> None:
    """Upstream's RBAC bootstrap: create the default roles and bindings, and on every start add back what
    an object marked `autoupdate: "true"` is missing (rules, subjects, labels), as its reconciler does."""
    from kubelite.apiserver.authz import policy

    for plural, objs in (("clusterroles", policy.cluster_roles()),
                         ("clusterrolebindings", policy.cluster_role_bindings())):
        res = service.registry.get(policy.GROUP, "v1", plural)
        if res is None:
            continue
        for obj in objs:
            existing = await service.store.get(res.key(None, obj["metadata"]["name"]))
            if existing is None:
                await _ensure(service, policy.GROUP, "v1", plural, obj)
                continue
            wanted = _rbac_reconciled(existing, obj)
            if wanted is not None:
                try:
                    await service.update(res, None, obj["metadata"]["name"], wanted, field_manager="kube-apiserver")
                except errors.StatusError as e:
                    log.warning("reconciling %s %s failed: %s", plural, obj["metadata"]["name"], e.message)


def _rbac_reconciled(existing: dict[str, Any], default: dict[str, Any]) -> dict[str, Any] | None:
    """The existing object with what the default adds, or None when nothing is missing or autoupdate is off."""
    from kubelite.apiserver.authz.policy import AUTOUPDATE

    m = existing.get("metadata") or {}
    if (m.get("annotations") or {}).get(AUTOUPDATE, "true") != "true":
        return None
    new = meta.deep_copy(existing)
    labels = new["metadata"].setdefault("labels", {})
    changed = False
    for k, v in default["metadata"]["labels"].items():
        if labels.get(k) != v:
            labels[k], changed = v, True
    if default["kind"] == "ClusterRole":
        if "aggregationRule" in default and new.get("aggregationRule") != default["aggregationRule"]:
            new["aggregationRule"], changed = default["aggregationRule"], True
        elif "aggregationRule" not in default:
            rules = new.setdefault("rules", [])
            for rule in default["rules"]:
                if rule not in rules:
                    rules.append(rule)
                    changed = True
    else:
        subjects = new.setdefault("subjects", [])
        for subject in default.get("subjects") or []:
            if subject not in subjects:
                subjects.append(subject)
                changed = True
    return new if changed else None


def _advertise_address(config: ServerConfig) -> str:
    from kubelite.apiserver.pki import pod_facing_address

    pod_facing = pod_facing_address(config)
    if pod_facing:
        return pod_facing
    if config.bind in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return config.bind
