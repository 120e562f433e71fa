"""EndpointSliceMirroring controller: slices for hand-written Endpoints (pkg/controller/endpointslicemirroring).

Watches Endpoints, Services and EndpointSlices; owns the slices labelled
`endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io`, each with a
controller ownerReference to its Endpoints. Only Endpoints of an existing Service without a selector
are mirrored (the EndpointSlice controller covers the others), never those labelled
`endpointslice.kubernetes.io/skip-mirror=true`; at most 1,000 addresses per subset.

It also writes the `default/kubernetes` EndpointSlice from the `kubernetes` Endpoints, as
kube-apiserver's endpoint reconciler does (the bootstrap writes only the Endpoints, skip-mirror).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.informer import SharedInformerFactory, split_meta_namespace_key
from kubelite.client.owners import new_controller_ref
from kubelite.controllers.endpoints import LAST_CHANGE_TRIGGER_TIME_ANNOTATION, LEADER_ANNOTATION
from kubelite.controllers.endpointslice import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    SliceTracker,
    port_map_key,
    slice_prefix,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
MAX_ENDPOINTS_PER_SUBSET = 1000


def _family(ip: str) -> str | None:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return None


def address_to_endpoint(addr: Obj, ready: bool) -> Obj:
    ep: Obj = {"addresses": [addr["ip"]], "conditions": {"ready": ready}}
    if addr.get("hostname"):
        ep["hostname"] = addr["hostname"]
    if addr.get("nodeName"):
        ep["nodeName"] = addr["nodeName"]
    if addr.get("targetRef"):
        ep["targetRef"] = metautil.deep_copy(addr["targetRef"])
    return ep


def subset_ports(subset: Obj) -> list[Obj]:
    out = []
    for p in subset.get("ports") or []:
        port: Obj = {"name": p.get("name") or "", "port": p.get("port"), "protocol": p.get("protocol") or "TCP"}
        if p.get("appProtocol"):
            port["appProtocol"] = p["appProtocol"]
        out.append(port)
    return out


def desired_mirror_slices(endpoints: Obj) -> dict[tuple, tuple[list[Obj], list[Obj]]]:
    """(address type, port mapping) -> (ports, endpoints); ready addresses first, capped per subset."""
    out: dict[tuple, tuple[list[Obj], list[Obj]]] = {}
    for subset in endpoints.get("subsets") or []:
        ports = subset_ports(subset)
        pk = port_map_key(ports)
        budget = MAX_ENDPOINTS_PER_SUBSET
        for ready, field in ((True, "addresses"), (False, "notReadyAddresses")):
            for addr in subset.get(field) or []:
                family = _family(addr.get("ip") or "")
                if family is None or budget <= 0:
                    continue
                budget -= 1
                entry = out.setdefault((family, pk), (ports, []))
                entry[1].append(address_to_endpoint(addr, ready))
    return out


def apiserver_endpointslice(endpoints: Obj) -> Obj:
    """endpointSliceFromEndpoints of kube-apiserver's EndpointsAdapter: same name, first subset."""
    m = endpoints["metadata"]
    s: Obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": m["name"], "namespace": m["namespace"], "labels": {SERVICE_NAME_LABEL: m["name"]}},
              "addressType": "IPv4", "endpoints": []}
    subsets = endpoints.get("subsets") or []
    if subsets:
        ss = subsets[0]
        s["ports"] = [{"name": p.get("name") or "", "port": p.get("port"), "protocol": p.get("protocol") or "TCP"}
                      for p in ss.get("ports") or []]
        addrs = (ss.get("addresses") or []) + (ss.get("notReadyAddresses") or [])
        if addrs and all(_family(a.get("ip") or "") == "IPv6" for a in addrs):
            s["addressType"] = "IPv6"
        for ready, field in ((True, "addresses"), (False, "notReadyAddresses")):
            for a in ss.get(field) or []:
                s["endpoints"].append({"addresses": [a["ip"]], "conditions": {"ready": ready}})
    return s


class EndpointSliceMirroringController:
    """kube-controller-manager's endpointslicemirroring controller."""

    name = "endpointslicemirroring-controller"

    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 5):
        self.slices = client.resource("discovery.k8s.io", "v1", "endpointslices")
        self.ep_informer = factory.informer("", "v1", "endpoints")
        self.svc_informer = factory.informer("", "v1", "services")
        self.slice_informer = factory.informer("discovery.k8s.io", "v1", "endpointslices")
        self.tracker = SliceTracker()
        self.controller = Controller(self.name, self.sync, workers=workers)
        self.controller.watch(self.ep_informer)
        self.controller.watch(self.svc_informer)
        self.slice_informer.add_handler(self._slice_changed, lambda _old, new: self._slice_changed(new),
                                        self._slice_changed)

    def _slice_changed(self, s: Obj) -> None:
        m = s["metadata"]
        labels = m.get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME and labels.get(SERVICE_NAME_LABEL):
            self.controller.enqueue(f"{m.get('namespace')}/{labels[SERVICE_NAME_LABEL]}")
        elif m.get("namespace") == "default" and m.get("name") == "kubernetes":
            self.controller.enqueue("default/kubernetes")

    def _mirrored(self, ns: str, name: str) -> list[Obj]:
        return [s for s in self.slice_informer.store.list(ns)
                if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == name
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == CONTROLLER_NAME]

    async def sync(self, key: str) -> float | None:
        try:
            return await self._sync(key)
        except StatusError as e:
            if e.code == 409:  # our cache is behind: look again once it has caught up
                return 0.1
            raise

    async def _sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        endpoints = self.ep_informer.store.get(ns, name)
        svc = self.svc_informer.store.get(ns, name)
        if key == "default/kubernetes":
            await self._sync_apiserver_slice(endpoints)
        existing = self._mirrored(ns, name)
        labels = (endpoints or {}).get("metadata", {}).get("labels") or {}
        annotations = (endpoints or {}).get("metadata", {}).get("annotations") or {}
        if endpoints is None or svc is None or (svc.get("spec") or {}).get("selector") is not None or \
                labels.get(SKIP_MIRROR_LABEL) == "true" or LEADER_ANNOTATION in annotations:
            for s in existing:
                await self._delete(s)
            return None
        uid = endpoints["metadata"].get("uid", "")
        if self.tracker.stale(uid, existing):
            return 0.05  # our own writes are not in the cache yet: look again shortly
        desired = desired_mirror_slices(endpoints)
        by_key: dict[tuple, list[Obj]] = {}
        for s in existing:
            by_key.setdefault((s.get("addressType"), port_map_key(s.get("ports"))), []).append(s)
        for k, (ports, eps) in desired.items():
            want = self._slice(endpoints, k[0], ports, eps)
            have = by_key.pop(k, [])
            current = next((s for s in have if self._owned(s, endpoints)), None)
            for s in have:
                if s is not current:
                    await self._delete(s)
                    self.tracker.deleted(uid, s)
            if current is None:
                self.tracker.written(uid, await self.slices.create(want, namespace=ns, field_manager=self.name))
            elif any(current.get(f) != want.get(f) for f in ("endpoints", "ports")) or \
                    (current["metadata"].get("labels") or {}) != want["metadata"]["labels"] or \
                    (current["metadata"].get("annotations") or {}) != want["metadata"].get("annotations", {}):
                obj = metautil.deep_copy(current)
                obj["endpoints"], obj["ports"] = want["endpoints"], want["ports"]
                obj["metadata"]["labels"] = want["metadata"]["labels"]
                obj["metadata"]["annotations"] = want["metadata"].get("annotations", {})
                self.tracker.written(uid, await self.slices.update(obj, field_manager=self.name))
        for rest in by_key.values():
            for s in rest:
                await self._delete(s)
                self.tracker.deleted(uid, s)
        return None

    @staticmethod
    def _owned(s: Obj, endpoints: Obj) -> bool:
        refs = [r.get("uid") for r in s["metadata"].get("ownerReferences") or [] if r.get("controller")]
        return refs == [endpoints["metadata"].get("uid")]

    def _slice(self, endpoints: Obj, address_type: str, ports: list[Obj], eps: list[Obj]) -> Obj:
        m = endpoints["metadata"]
        labels = dict(m.get("labels") or {})
        labels[SERVICE_NAME_LABEL] = m["name"]
        labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
        annotations = {k: v for k, v in (m.get("annotations") or {}).items()
                       if k not in (LAST_CHANGE_TRIGGER_TIME_ANNOTATION, LAST_APPLIED_ANNOTATION)}
        meta: Obj = {"generateName": slice_prefix(m["name"]), "namespace": m["namespace"], "labels": labels,
                     "ownerReferences": [new_controller_ref(endpoints, "Endpoints", "v1")]}
        if annotations:
            meta["annotations"] = annotations
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta,
                "addressType": address_type, "ports": ports, "endpoints": eps}

    async def _delete(self, s: Obj) -> None:
        try:
            await self.slices.delete(s["metadata"]["name"], namespace=s["metadata"]["namespace"],
                                     preconditions={"uid": s["metadata"]["uid"]})
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    async def _sync_apiserver_slice(self, endpoints: Obj | None) -> None:
        if endpoints is None:
            return
        want = apiserver_endpointslice(endpoints)
        current = self.slice_informer.store.get("default", "kubernetes")
        try:
            if current is None:
                await self.slices.create(want, namespace="default", field_manager="kube-apiserver")
            elif any(current.get(f) != want.get(f) for f in ("endpoints", "ports", "addressType")) or \
                    (current["metadata"].get("labels") or {}) != want["metadata"]["labels"]:
                obj = metautil.deep_copy(current)
                for f in ("endpoints", "ports", "addressType"):
                    obj[f] = want.get(f)
                obj["metadata"]["labels"] = want["metadata"]["labels"]
                await self.slices.update(obj, field_manager="kube-apiserver")
        except StatusError as e:
            if e.code != 409:  # 409: our cache is behind; the slice's own event brings us back
                raise

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
