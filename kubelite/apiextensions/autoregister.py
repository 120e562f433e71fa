"""One local APIService per served group-version, as kube-aggregator's autoregister controller keeps them.

Built-in group-versions carry the label `kube-aggregator.kubernetes.io/automanaged: onstart`, those of
CRDs `true`; an automanaged APIService whose group-version is no longer served is deleted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from kubelite.api import errors

if TYPE_CHECKING:
    from kubelite.apiserver.service import APIService

log = logging.getLogger(__name__)

AUTOMANAGED = "kube-aggregator.kubernetes.io/automanaged"
GROUP = "apiregistration.k8s.io"

# kube-apiserver's default priorities (groupPriorityMinimum, versionPriority) per group-version
PRIORITIES: dict[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1), ("apps", "v1"): (17800, 15), ("events.k8s.io", "v1"): (17750, 15),
    ("authentication.k8s.io", "v1"): (17700, 15), ("authorization.k8s.io", "v1"): (17600, 15),
    ("autoscaling", "v1"): (17500, 15), ("autoscaling", "v2"): (17500, 30), ("batch", "v1"): (17400, 15),
    ("certificates.k8s.io", "v1"): (17300, 15), ("networking.k8s.io", "v1"): (17200, 15),
    ("policy", "v1"): (17100, 15), ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("storage.k8s.io", "v1"): (16800, 15), ("admissionregistration.k8s.io", "v1"): (16700, 15),
    ("apiextensions.k8s.io", "v1"): (16700, 15), ("scheduling.k8s.io", "v1"): (16600, 15),
    ("coordination.k8s.io", "v1"): (16500, 15), ("node.k8s.io", "v1"): (16300, 15),
    ("discovery.k8s.io", "v1"): (16200, 15), ("flowcontrol.apiserver.k8s.io", "v1"): (16100, 21),
    ("apiregistration.k8s.io", "v1"): (18000, 15),
    ("metrics.k8s.io", "v1beta1"): (100, 100),  # as metrics-server's manifest registers it
}

def apiservice_name(group: str, version: str) -> str:
    return f"{version}.{group}"


def apiservice(group: str, version: str, custom: bool) -> dict[str, Any]:
    gpm, vp = PRIORITIES.get((group, version), (1000, 100) if custom else (15000, 15))
    spec: dict[str, Any] = {"groupPriorityMinimum": gpm, "versionPriority": vp}
    if group:
        spec = {"group": group, **spec}
    spec = {**spec, "version": version}
    return {
        "apiVersion": f"{GROUP}/v1", "kind": "APIService",
        "metadata": {"name": apiservice_name(group, version),
                     "labels": {AUTOMANAGED: "true" if custom else "onstart"}},
        "spec": spec,
    }


async def sync(service: APIService, lock: asyncio.Lock) -> None:
    """Create the APIServices of served group-versions, delete automanaged ones no longer served."""
    res = service.registry.get(GROUP, "v1", "apiservices")
    if res is None:
        return
    async with lock:
        try:
            wanted: dict[str, dict[str, Any]] = {}
            for r in service.registry.all():
                wanted.setdefault(apiservice_name(r.group, r.version), apiservice(r.group, r.version, r.custom))
            listed = await service.list(res, None)
            have = {o["metadata"]["name"]: o for o in listed["items"]}
            for name, obj in wanted.items():
                if name not in have:
                    try:
                        await service.create(res, None, obj, field_manager="kube-apiserver")
                    except errors.StatusError as e:
                        if e.reason != "AlreadyExists":
                            log.warning("apiservice %s: %s", name, e.message)
            for name, obj in have.items():
                if name not in wanted and (obj["metadata"].get("labels") or {}).get(AUTOMANAGED) == "true":
                    try:
                        await service.delete(res, None, name, {})
                    except errors.StatusError:
                        pass
        except Exception:
            log.exception("apiservice autoregistration")
