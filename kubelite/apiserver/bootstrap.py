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
    if await service.store.get(key) is not None:
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


def _advertise_address(config: ServerConfig) -> str:
    if config.bind in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return config.bind
