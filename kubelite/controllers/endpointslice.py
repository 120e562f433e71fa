"""EndpointSlice controller: slices of at most 100 endpoints per selector Service (pkg/controller/endpointslice).

Watches services, pods and EndpointSlices; owns the slices labelled
`endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io`, each with a controller
ownerReference to its Service (the garbage collector removes them with it). One sync builds the
desired endpoints per address type and port mapping, keeps endpoints in the slices already holding
them, fills spare room before creating slices (upstream's reconcileByPortMapping), writes a
placeholder slice when a service has no endpoints, and refuses to act on a stale slice cache.
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
from kubelite.controllers import podutil
from kubelite.controllers.endpoints import (
    HEADLESS_LABEL,
    LAST_CHANGE_TRIGGER_TIME_ANNOTATION,
    TriggerTimeTracker,
    find_port,
    format_trigger_time,
    is_service_ip_set,
    pod_ip_for_family,
    service_selector_pods,
    should_pod_be_in_endpoints,
    should_set_hostname,
)
from kubelite.controllers.service_pods import pod_handlers

log = logging.getLogger(__name__)

Obj = dict[str, Any]

MAX_ENDPOINTS_PER_SLICE = 100
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
ZONE_LABEL = "topology.kubernetes.io/zone"
RESERVED_LABELS = (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)


def endpoint_key(ep: Obj) -> tuple:
    """hashEndpoint: an endpoint is identified by its addresses, hostname and target."""
    ref = ep.get("targetRef") or {}
    return tuple(ep.get("addresses") or ()), ep.get("hostname") or "", ref.get("namespace", ""), ref.get("name", "")


def _addr_sort_key(ep: Obj) -> tuple:
    addr = (ep.get("addresses") or [""])[0]
    try:
        ip = ipaddress.ip_address(addr)
        return ip.version, int(ip), addr
    except ValueError:
        return 9, 0, addr


def port_map_key(ports: list[Obj] | None) -> tuple:
    return tuple(sorted((p.get("name") or "", p.get("port") or 0, p.get("protocol") or "TCP",
                         p.get("appProtocol") or "") for p in ports or []))


def slice_prefix(name: str) -> str:
    """getEndpointSlicePrefix: `<name>-` unless that would be too long for a name."""
    return name + "-" if len(name) + 1 <= 253 - 5 else name


def service_address_types(svc: Obj) -> list[str]:
    return list((svc.get("spec") or {}).get("ipFamilies") or []) or ["IPv4"]


def slice_labels(svc: Obj, managed_by: str = CONTROLLER_NAME) -> dict[str, str]:
    """setEndpointSliceLabels: the service's labels minus the reserved ones, then the reserved ones."""
    labels = {k: v for k, v in (svc["metadata"].get("labels") or {}).items() if k not in RESERVED_LABELS}
    if not is_service_ip_set(svc):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = svc["metadata"]["name"]
    labels[MANAGED_BY_LABEL] = managed_by
    return labels


def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """getEndpointPorts: each service port whose target port the pod has (named ports resolved per pod)."""
    out = []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        num = find_port(pod, sp)
        if num is None:
            continue
        p: Obj = {"name": sp.get("name") or "", "port": num, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            p["appProtocol"] = sp["appProtocol"]
        out.append(p)
    return out


def pod_to_endpoint(pod: Obj, node: Obj | None, svc: Obj, ip: str) -> Obj:
    """podToEndpoint: ready never true for a terminating pod unless publishNotReadyAddresses."""
    serving = podutil.is_pod_ready(pod)
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    ready = bool((svc.get("spec") or {}).get("publishNotReadyAddresses")) or (serving and not terminating)
    m = pod["metadata"]
    ep: Obj = {"addresses": [ip], "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    if should_set_hostname(pod, svc):
        ep["hostname"] = pod["spec"]["hostname"]
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        ep["nodeName"] = node_name
    ep["targetRef"] = {"kind": "Pod", "namespace": m.get("namespace", ""), "name": m["name"], "uid": m.get("uid", "")}
    zone = ((node or {}).get("metadata", {}).get("labels") or {}).get(ZONE_LABEL)
    if zone:
        ep["zone"] = zone
    return ep


def _version(obj: Obj) -> tuple[int, int]:
    """(generation, resourceVersion) to order two versions of a slice; the resourceVersion breaks ties
    where the server sets no generation (it is opaque upstream, an integer here)."""
    m = obj.get("metadata") or {}
    rv = m.get("resourceVersion") or "0"
    return m.get("generation") or 0, int(rv) if rv.isdigit() else 0


class SliceTracker:
    """EndpointSliceTracker: the version we last wrote of each slice of a service, so a sync from a
    cache that has not seen our own writes yet waits instead of duplicating endpoints."""

    def __init__(self) -> None:
        self._by_service: dict[str, dict[str, tuple[int, int] | None]] = {}

    def stale(self, svc_uid: str, slices: list[Obj]) -> bool:
        seen = {s["metadata"].get("uid"): _version(s) for s in slices}
        expected = self._by_service.get(svc_uid, {})
        for uid, version in list(expected.items()):
            if version is None:  # deleted by us
                if uid in seen:
                    return True
                del expected[uid]  # the cache has seen the deletion
            elif uid not in seen or seen[uid] < version:
                return True
        return False

    def written(self, svc_uid: str, obj: Obj) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            self._by_service.setdefault(svc_uid, {})[uid] = _version(obj)

    def deleted(self, svc_uid: str, obj: Obj) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            self._by_service.setdefault(svc_uid, {})[uid] = None

    def forget(self, svc_uid: str) -> None:
        self._by_service.pop(svc_uid, None)


class EndpointSliceController:
    """kube-controller-manager's endpointslice controller."""

    name = "endpointslice-controller"

    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 5,
                 max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE):
        self.slices = client.resource("discovery.k8s.io", "v1", "endpointslices")
        self.svc_informer = factory.informer("", "v1", "services")
        self.pod_informer = factory.informer("", "v1", "pods")
        self.slice_informer = factory.informer("discovery.k8s.io", "v1", "endpointslices")
        self.node_informer = factory.informer("", "v1", "nodes")
        self.max_per_slice = max_endpoints_per_slice
        self.triggers = TriggerTimeTracker()
        self.tracker = SliceTracker()
        self._svc_uids: dict[str, str] = {}
        self.controller = Controller(self.name, self.sync, workers=workers)
        self.controller.watch(self.svc_informer)
        self.pod_informer.add_handler(*pod_handlers(self.svc_informer.store, self.controller.enqueue))
        self.slice_informer.add_handler(self._slice_changed, lambda _old, new: self._slice_changed(new),
                                        self._slice_changed)

    # ---------------------------------------------------------------- event handlers

    def _slice_changed(self, s: Obj) -> None:
        labels = s["metadata"].get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME and labels.get(SERVICE_NAME_LABEL):
            self.controller.enqueue(f"{s['metadata'].get('namespace')}/{labels[SERVICE_NAME_LABEL]}")

    # ---------------------------------------------------------------- sync
    def _managed_slices(self, ns: str, name: str) -> list[Obj]:
        return [s for s in self.slice_informer.store.list(ns)
                if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == name
                and (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == CONTROLLER_NAME]

    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        svc = self.svc_informer.store.get(ns, name)
        if svc is None:
            # the garbage collector deletes the slices through their ownerReference
            self.triggers.delete(key)
            uid = self._svc_uids.pop(key, None)
            if uid:
                self.tracker.forget(uid)
            return None
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName" or spec.get("selector") is None:
            return None
        if svc["metadata"].get("deletionTimestamp"):
            return None
        uid = svc["metadata"].get("uid", "")
        self._svc_uids[key] = uid
        slices = self._managed_slices(ns, name)
        if self.tracker.stale(uid, slices):
            return 0.05  # our own writes are not in the cache yet: look again shortly
        pods = service_selector_pods(self.pod_informer.store, svc)
        trigger = self.triggers.compute(key, svc, pods)
        try:
            await self._reconcile(svc, pods, slices, trigger)
        except StatusError as e:
            if e.code == 403 and "being terminated" in e.message:
                return None
            if e.code == 409:  # our cache is behind: look again once it has caught up
                return 0.1
            raise
        return None

    async def _reconcile(self, svc: Obj, pods: list[Obj], existing: list[Obj], trigger: float | None) -> None:
        uid = svc["metadata"].get("uid", "")
        address_types = service_address_types(svc)
        to_create: list[Obj] = []
        to_update: list[Obj] = []
        to_delete: list[Obj] = []
        # slices of another incarnation of the service, or of an address type it no longer has
        keep: list[Obj] = []
        for s in existing:
            owners = [r.get("uid") for r in s["metadata"].get("ownerReferences") or [] if r.get("controller")]
            if owners != [uid] or s.get("addressType") not in address_types:
                to_delete.append(s)
            else:
                keep.append(s)
        for address_type in address_types:
            desired: dict[tuple, dict[tuple, Obj]] = {}
            ports_of: dict[tuple, list[Obj]] = {}
            for pod in pods:
                if not should_pod_be_in_endpoints(pod, True):
                    continue
                ip = pod_ip_for_family(pod, address_type)
                if ip is None:
                    continue
                ports = endpoint_ports(svc, pod)
                pk = port_map_key(ports)
                ports_of.setdefault(pk, ports)
                node = self.node_informer.store.get(None, (pod.get("spec") or {}).get("nodeName") or "")
                ep = pod_to_endpoint(pod, node, svc, ip)
                desired.setdefault(pk, {})[endpoint_key(ep)] = ep
            by_ports: dict[tuple, list[Obj]] = {}
            for s in keep:
                if s.get("addressType") == address_type:
                    by_ports.setdefault(port_map_key(s.get("ports")), []).append(s)
            for pk, eps in desired.items():
                c, u, d = self._reconcile_port_mapping(svc, address_type, ports_of[pk], by_ports.pop(pk, []), eps)
                to_create += c
                to_update += u
                to_delete += d
            for stale in by_ports.values():  # port mappings no pod has any more
                to_delete += stale
            # no slice would remain: a placeholder (no ports, no endpoints) says the service was seen
            typed = [s for s in existing if s.get("addressType") == address_type]
            deleting = [s for s in to_delete if s.get("addressType") == address_type]
            if len(typed) == len(deleting) and not any(s.get("addressType") == address_type for s in to_create):
                if len(deleting) == 1 and self._is_placeholder(deleting[0], svc):
                    to_delete = [s for s in to_delete if s is not deleting[0]]
                else:
                    to_create.append(self._new_slice(svc, address_type, []))
        annotation = format_trigger_time(trigger) if trigger else None
        for s in to_create:
            if annotation:
                s["metadata"].setdefault("annotations", {})[LAST_CHANGE_TRIGGER_TIME_ANNOTATION] = annotation
            created = await self.slices.create(s, namespace=svc["metadata"]["namespace"], field_manager=self.name)
            self.tracker.written(uid, created)
        for s in to_update:
            ann = dict(s["metadata"].get("annotations") or {})
            if annotation:
                ann[LAST_CHANGE_TRIGGER_TIME_ANNOTATION] = annotation
            else:
                ann.pop(LAST_CHANGE_TRIGGER_TIME_ANNOTATION, None)
            s["metadata"]["annotations"] = ann
            updated = await self.slices.update(s, field_manager=self.name)
            self.tracker.written(uid, updated)
        for s in to_delete:
            try:
                await self.slices.delete(s["metadata"]["name"], namespace=s["metadata"]["namespace"],
                                         preconditions={"uid": s["metadata"]["uid"]})
            except StatusError as e:
                if e.code not in (404, 409):
                    raise
            self.tracker.deleted(uid, s)

    def _is_placeholder(self, s: Obj, svc: Obj) -> bool:
        owners = [r.get("uid") for r in s["metadata"].get("ownerReferences") or [] if r.get("controller")]
        return not s.get("endpoints") and not s.get("ports") and owners == [svc["metadata"].get("uid")] and \
            (s["metadata"].get("labels") or {}) == slice_labels(svc)

    def _new_slice(self, svc: Obj, address_type: str, ports: list[Obj]) -> Obj:
        m = svc["metadata"]
        return {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": slice_prefix(m["name"]), "namespace": m["namespace"],
                         "labels": slice_labels(svc),
                         "ownerReferences": [new_controller_ref(svc, "Service", "v1")]},
            "addressType": address_type,
            "endpoints": [],
            "ports": metautil.deep_copy(ports),
        }

    def _reconcile_port_mapping(self, svc: Obj, address_type: str, ports: list[Obj], existing: list[Obj],
                                desired: dict[tuple, Obj]) -> tuple[list[Obj], list[Obj], list[Obj]]:
        """reconcileByPortMapping: keep endpoints where they are, drop the undesired ones, then fill."""
        remaining = dict(desired)
        labels = slice_labels(svc)
        to_update: list[Obj] = []
        to_delete: list[Obj] = []
        unchanged: list[Obj] = []
        for s in existing:
            new_eps: list[Obj] = []
            changed = False
            for ep in s.get("endpoints") or []:
                want = remaining.pop(endpoint_key(ep), None)
                if want is None:
                    changed = True
                    continue
                if want != ep:
                    changed = True
                new_eps.append(want)
            if changed and not new_eps:
                to_delete.append(s)
                continue
            if changed or (s["metadata"].get("labels") or {}) != labels:
                obj = metautil.deep_copy(s)
                obj["endpoints"] = new_eps
                obj["metadata"]["labels"] = dict(labels)
                to_update.append(obj)
            else:
                unchanged.append(s)
        left = sorted(remaining.values(), key=_addr_sort_key)
        # fill slices we are updating anyway
        for s in to_update:
            while left and len(s["endpoints"]) < self.max_per_slice:
                s["endpoints"].append(left.pop(0))
        to_create: list[Obj] = []
        while left:
            target = None
            if len(left) < self.max_per_slice and unchanged:
                fits = [s for s in unchanged if len(s.get("endpoints") or []) + len(left) <= self.max_per_slice]
                if fits:
                    best = max(fits, key=lambda s: len(s.get("endpoints") or []))
                    unchanged.remove(best)
                    target = metautil.deep_copy(best)
                    target["endpoints"] = list(target.get("endpoints") or [])
                    target["metadata"]["labels"] = dict(labels)
                    to_update.append(target)
            if target is None:
                target = self._new_slice(svc, address_type, ports)
                to_create.append(target)
            while left and len(target["endpoints"]) < self.max_per_slice:
                target["endpoints"].append(left.pop(0))
        return to_create, to_update, to_delete

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
