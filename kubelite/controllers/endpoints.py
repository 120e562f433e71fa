"""Endpoints controller: each selector Service's Endpoints object, from its pods (pkg/controller/endpoint).

Watches services and pods; owns the Endpoints named after each Service with a selector (services
without one keep their hand-written Endpoints; ExternalName services get none). One sync lists the
selected pods, splits them into ready and not-ready addresses per resolved target port, repacks
the subsets as upstream's RepackSubsets, truncates past 1,000 addresses with the over-capacity
annotation, and writes only when something changed. The pod helpers here are shared with the
EndpointSlice controller, as upstream's endpointslice/util package is.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from datetime import UTC, datetime
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.api.selectors import selector_from_set
from kubelite.client.controller import Controller
from kubelite.client.informer import SharedInformerFactory, split_meta_namespace_key
from kubelite.controllers import podutil
from kubelite.controllers.service_pods import pod_handlers

log = logging.getLogger(__name__)

Obj = dict[str, Any]

MAX_CAPACITY = 1000
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
LAST_CHANGE_TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
HEADLESS_LABEL = "service.kubernetes.io/headless"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


# ------------------------------------------------------------------------------------------------
# pod and service helpers (k8s.io/endpointslice/util, pkg/api/v1/pod)


def is_service_ip_set(svc: Obj) -> bool:
    ip = (svc.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def is_headless(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """ShouldPodBeInEndpoints: not terminal, has an IP, and not being deleted unless asked."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    if not include_terminating and (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return True


def should_set_hostname(pod: Obj, svc: Obj) -> bool:
    """A pod's hostname is published when its subdomain names the service (same namespace)."""
    spec = pod.get("spec") or {}
    return bool(spec.get("hostname")) and spec.get("subdomain") == svc["metadata"]["name"] and \
        pod["metadata"].get("namespace") == svc["metadata"].get("namespace")


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or [] if p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


def ip_family(ip: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return ""


def service_ip_families(svc: Obj) -> list[str]:
    families = (svc.get("spec") or {}).get("ipFamilies") or []
    return list(families) or ["IPv4"]


def pod_ip_for_family(pod: Obj, family: str) -> str | None:
    for ip in pod_ips(pod):
        if ip_family(ip) == family:
            return ip
    return None


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """podutil.FindPort: a numeric targetPort as is, a named one from the pod's containers (and
    restartable init containers) with the same protocol; None when the pod has no such port."""
    target = service_port.get("targetPort")
    if target is None or target == "":
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for c in containers:
        for p in c.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return p.get("containerPort")
    return None


def service_selector_pods(pod_store: Any, svc: Obj) -> list[Obj]:
    selector = (svc.get("spec") or {}).get("selector") or {}
    return pod_store.list(svc["metadata"]["namespace"], selector_from_set(selector))


def format_trigger_time(t: float) -> str:
    """time.RFC3339Nano as Go prints it: no trailing zeros in the fraction."""
    dt = datetime.fromtimestamp(t, UTC)
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        s += ("." + f"{dt.microsecond:06d}").rstrip("0")
    return s + "Z"


class TriggerTimeTracker:
    """util/endpoint.TriggerTimeTracker: the time of the earliest change (a pod's Ready transition or
    the service's creation) not yet reflected in the endpoints, for the last-change-trigger-time
    annotation that latency SLIs read."""

    def __init__(self) -> None:
        self._states: dict[str, tuple[dict[str, float], float]] = {}

    def compute(self, key: str, svc: Obj, pods: list[Obj]) -> float | None:
        known = key in self._states
        last_pods, last_svc = self._states.get(key, ({}, 0.0))
        changed: float | None = None
        pod_times: dict[str, float] = {}
        for pod in pods:
            c = podutil.pod_ready_condition(pod)
            t = metautil.parse_time((c or {}).get("lastTransitionTime"))
            if t:
                name = pod["metadata"]["name"]
                pod_times[name] = t
                if t > last_pods.get(name, 0.0):
                    changed = t if changed is None else min(changed, t)
        svc_time = metautil.parse_time(svc["metadata"].get("creationTimestamp")) or 0.0
        if svc_time > last_svc:
            changed = svc_time if changed is None else min(changed, svc_time)
        self._states[key] = (pod_times, svc_time)
        if not known:
            return svc_time or None
        return changed

    def delete(self, key: str) -> None:
        self._states.pop(key, None)


# ------------------------------------------------------------------------------------------------
# subsets (pkg/api/v1/endpoints)


def _addr_key(addr: Obj) -> tuple[str, str]:
    return addr.get("ip", ""), (addr.get("targetRef") or {}).get("uid", "")


def _port_key(port: Obj) -> tuple:
    return port.get("name", ""), port.get("port", 0), port.get("protocol", "TCP"), port.get("appProtocol") or ""


def repack_subsets(subsets: list[Obj]) -> list[Obj]:
    """RepackSubsets: one subset per distinct set of addresses, carrying every port they share.
    Not-ready trumps ready for an address seen both ways on one port. Sorted deterministically."""
    all_addrs: dict[tuple[str, str], Obj] = {}
    port_objs: dict[tuple, Obj | None] = {}
    port_addrs: dict[tuple, dict[tuple[str, str], bool]] = {}
    for ss in subsets:
        ports = ss.get("ports") or [None]
        for port in ports:
            pk = _port_key(port) if port is not None else ("", -1, "", "")
            port_objs[pk] = port
            amap = port_addrs.setdefault(pk, {})
            for ready, field in ((True, "addresses"), (False, "notReadyAddresses")):
                for a in ss.get(field) or []:
                    ak = _addr_key(a)
                    all_addrs.setdefault(ak, a)
                    if amap.get(ak, True):
                        amap[ak] = ready
    groups: dict[tuple, tuple[dict, list[Obj]]] = {}
    for pk, amap in port_addrs.items():
        gk = tuple(sorted(amap.items()))
        entry = groups.setdefault(gk, (amap, []))
        port = port_objs[pk]
        if port is not None:
            entry[1].append(port)
    final: list[Obj] = []
    for amap, ports in groups.values():
        ready = sorted((all_addrs[k] for k, r in amap.items() if r), key=_addr_key)
        not_ready = sorted((all_addrs[k] for k, r in amap.items() if not r), key=_addr_key)
        ss: Obj = {}
        if ready:
            ss["addresses"] = ready
        if not_ready:
            ss["notReadyAddresses"] = not_ready
        if ports:
            ss["ports"] = sorted(ports, key=_port_key)
        final.append(ss)
    final.sort(key=lambda s: (_addr_key((s.get("addresses") or s.get("notReadyAddresses") or [{}])[0]),
                              [_port_key(p) for p in s.get("ports") or []]))
    return final


def truncate_subsets(subsets: list[Obj]) -> bool:
    """truncateEndpoints: cap at 1,000 addresses, ready ones first, spread proportionally over subsets."""
    total_ready = sum(len(s.get("addresses") or []) for s in subsets)
    total_not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if total_ready + total_not_ready <= MAX_CAPACITY:
        return False
    truncate_ready = total_ready > MAX_CAPACITY
    limit = MAX_CAPACITY if truncate_ready else MAX_CAPACITY - total_ready
    num_total = total_ready if truncate_ready else total_not_ready
    can_add = limit
    for ss in subsets:
        field = "addresses" if truncate_ready else "notReadyAddresses"
        n = len(ss.get(field) or [])
        to_add = min(int(math.ceil(n / num_total * limit)) if num_total else 0, can_add)
        if truncate_ready:
            ss["addresses"] = (ss.get("addresses") or [])[:to_add]
            ss.pop("notReadyAddresses", None)
            can_add -= len(ss["addresses"])
        else:
            ss["notReadyAddresses"] = (ss.get("notReadyAddresses") or [])[:to_add]
            can_add -= len(ss["notReadyAddresses"])
        for f in ("addresses", "notReadyAddresses"):
            if f in ss and not ss[f]:
                del ss[f]
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


def endpoint_address(pod: Obj, svc: Obj, ip: str) -> Obj:
    addr: Obj = {"ip": ip}
    if should_set_hostname(pod, svc):
        addr["hostname"] = pod["spec"]["hostname"]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    m = pod["metadata"]
    addr["targetRef"] = {"kind": "Pod", "namespace": m.get("namespace", ""), "name": m["name"], "uid": m.get("uid", "")}
    return addr


def desired_subsets(svc: Obj, pods: list[Obj]) -> list[Obj]:
    spec = svc.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    family = service_ip_families(svc)[0]
    subsets: list[Obj] = []
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, publish_not_ready):
            continue
        ip = pod_ip_for_family(pod, family)
        if ip is None:
            continue
        addr = endpoint_address(pod, svc, ip)
        field = "addresses" if publish_not_ready or podutil.is_pod_ready(pod) else "notReadyAddresses"
        ports = spec.get("ports") or []
        if not ports:
            if is_headless(svc):  # headless services may have no ports
                subsets.append({field: [addr]})
            continue
        for sp in ports:
            num = find_port(pod, sp)
            if num is None:
                continue
            ep: Obj = {"port": num, "protocol": sp.get("protocol") or "TCP"}
            if sp.get("name"):
                ep["name"] = sp["name"]
            if sp.get("appProtocol"):
                ep["appProtocol"] = sp["appProtocol"]
            subsets.append({field: [addr], "ports": [ep]})
    return repack_subsets(subsets)


class EndpointsController:
    """kube-controller-manager's endpoint controller."""

    name = "endpoint-controller"

    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 5):
        self.endpoints = client.resource("", "v1", "endpoints")
        self.svc_informer = factory.informer("", "v1", "services")
        self.pod_informer = factory.informer("", "v1", "pods")
        self.ep_informer = factory.informer("", "v1", "endpoints")
        self.triggers = TriggerTimeTracker()
        self.controller = Controller(self.name, self.sync, workers=workers)
        self.controller.watch(self.svc_informer)
        self.pod_informer.add_handler(*pod_handlers(self.svc_informer.store, self.controller.enqueue))
        self._leftovers_checked = False

    # ---------------------------------------------------------------- event handlers

    # ---------------------------------------------------------------- sync
    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        svc = self.svc_informer.store.get(ns, name)
        if svc is None:
            # the service is gone: so are its endpoints (a leftover without a service, at startup too)
            current = self.ep_informer.store.get(ns, name)
            if current is not None and LEADER_ANNOTATION not in (current["metadata"].get("annotations") or {}):
                try:
                    await self.endpoints.delete(name, namespace=ns)
                except StatusError as e:
                    if e.code != 404:
                        raise
            self.triggers.delete(key)
            return None
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName" or spec.get("selector") is None:
            return None  # no endpoints from us; a selector-less service's are managed by hand
        pods = service_selector_pods(self.pod_informer.store, svc)
        trigger = self.triggers.compute(key, svc, pods)
        subsets = desired_subsets(svc, pods)
        truncated = truncate_subsets(subsets)

        current = self.ep_informer.store.get(ns, name)
        labels = dict(svc["metadata"].get("labels") or {})
        if is_service_ip_set(svc):
            labels.pop(HEADLESS_LABEL, None)
        else:
            labels[HEADLESS_LABEL] = ""
        if current is not None:
            cur_annotations = current["metadata"].get("annotations") or {}
            if (current.get("subsets") or []) == subsets and (current["metadata"].get("labels") or {}) == labels \
                    and (OVER_CAPACITY_ANNOTATION in cur_annotations) == truncated:
                return None
            obj = metautil.deep_copy(current)
        else:
            obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns}}
        m = obj["metadata"]
        annotations = dict(m.get("annotations") or {})
        if trigger:
            annotations[LAST_CHANGE_TRIGGER_TIME_ANNOTATION] = format_trigger_time(trigger)
        else:
            annotations.pop(LAST_CHANGE_TRIGGER_TIME_ANNOTATION, None)
        if truncated:
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        m["annotations"] = annotations
        if not annotations:
            m.pop("annotations")
        m["labels"] = labels
        obj["subsets"] = subsets
        try:
            if current is None:
                await self.endpoints.create(obj, namespace=ns, field_manager=self.name)
            else:
                await self.endpoints.update(obj, namespace=ns, field_manager=self.name)
        except StatusError as e:
            if e.code == 403 and "being terminated" in e.message:
                return None  # the namespace is going away: nothing to write
            if e.code == 409 or (e.code == 404 and current is not None):
                # our cache is behind (usually our own last write): look again once it has caught up
                self.triggers.delete(key)
                return 0.1
            raise
        return None

    async def _queue_leftovers(self) -> None:
        """checkLeftoverEndpoints: at start, every Endpoints object is reconciled once, so those whose
        service went away while we were down are removed."""
        await self.ep_informer.wait_for_sync()
        for ep in self.ep_informer.store.list():
            if LEADER_ANNOTATION in (ep["metadata"].get("annotations") or {}):
                continue
            self.controller.enqueue(ep)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        import asyncio

        self.controller.start()
        if not self._leftovers_checked:
            self._leftovers_checked = True
            self._leftover_task = asyncio.get_running_loop().create_task(self._queue_leftovers())

    async def stop(self) -> None:
        task = getattr(self, "_leftover_task", None)
        if task is not None:
            task.cancel()
        await self.controller.stop()
