"""The DNS server's view of the cluster: services, ready endpoints and (optionally) pods, fed by watches.

As CoreDNS's kubernetes plugin keeps informer caches and indexes (service by name, by cluster IP,
endpoints by IP), so a query never waits on the API server. Every change bumps `generation`, which
the server's answer cache compares against, and records what it touched (`take_changes`: the
service `("svc", ns, name)` and the addresses `("ip", ip)` whose answers may differ now), so the
cache drops only those answers; `modified` is the SOA serial.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubelite.client.informer import SharedInformerFactory

Obj = dict[str, Any]
ChangeKey = tuple[str, ...]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class EndpointPort:
    name: str
    port: int
    protocol: str  # lower case, as CoreDNS compares it


@dataclass(frozen=True)
class Endpoint:
    ip: str
    hostname: str  # the published hostname, or the IP with dashes (CoreDNS endpointHostname)
    ports: tuple[EndpointPort, ...]


NO_PORT = EndpointPort("", -1, "")  # a slice without ports still answers A queries (headless, no ports)


def dashed(ip: str) -> str:
    return ip.replace(".", "-") if "." in ip else ip.replace(":", "-")


def slice_endpoints(s: Obj) -> list[Endpoint]:
    """Ready endpoints of one slice, as CoreDNS's EndpointSliceToEndpoints (ready nil counts as ready)."""
    ports = tuple(EndpointPort(p.get("name") or "", p.get("port") if p.get("port") is not None else -1,
                               (p.get("protocol") or "TCP").lower()) for p in s.get("ports") or []) or (NO_PORT,)
    out = []
    for ep in s.get("endpoints") or []:
        if (ep.get("conditions") or {}).get("ready") is False:
            continue
        for ip in ep.get("addresses") or []:
            out.append(Endpoint(ip, ep.get("hostname") or dashed(ip), ports))
    return out


class ClusterRecords:
    """Watch-fed indexes over services, EndpointSlices and pods."""

    def __init__(self, factory: SharedInformerFactory, watch_pods: bool = False):
        self.services = factory.informer("", "v1", "services")
        self.slices = factory.informer("discovery.k8s.io", "v1", "endpointslices")
        self.pods = factory.informer("", "v1", "pods") if watch_pods else None
        self.pods_affect_answers = False  # only with `pods verified`
        self.generation = 0
        self.modified = int(time.time())
        self._changes: set[ChangeKey] | None = set()  # None: anything may have changed
        self._by_cluster_ip: dict[str, tuple[str, str]] = {}
        self._slices: dict[tuple[str, str], dict[str, list[Endpoint]]] = {}
        self._endpoints: dict[tuple[str, str], list[Endpoint]] = {}
        self._by_endpoint_ip: dict[str, set[tuple[str, str, str]]] = {}
        self._pods_by_ip: dict[str, dict[str, set[str]]] = {}  # ip -> namespace -> pod names
        self.services.add_handler(self._svc_add, lambda old, new: (self._svc_del(old), self._svc_add(new)),
                                  self._svc_del)
        self.slices.add_handler(self._slice_add, lambda old, new: (self._slice_del(old), self._slice_add(new)),
                                self._slice_del)
        if self.pods is not None:
            self.pods.add_handler(self._pod_add, lambda old, new: (self._pod_del(old), self._pod_add(new)),
                                  self._pod_del)

    @property
    def synced(self) -> bool:
        return self.services.has_synced and self.slices.has_synced and (self.pods is None or self.pods.has_synced)

    def _changed(self, *keys: ChangeKey) -> None:
        """Record a change; no keys means one that may affect any answer."""
        self.generation += 1
        self.modified = int(time.time())
        if self._changes is not None:
            if keys:
                self._changes.update(keys)
            else:
                self._changes = None

    def take_changes(self) -> set[ChangeKey] | None:
        """What changed since the last call (None: anything may have)."""
        changes, self._changes = self._changes, set()
        return changes

    @staticmethod
    def _ip_keys(spec: Obj) -> list[ChangeKey]:
        return [("ip", ip) for ip in spec.get("clusterIPs") or [spec.get("clusterIP") or ""] if ip and ip != "None"]

    # ---------------------------------------------------------------- services
    def _svc_add(self, svc: Obj) -> None:
        m, spec = svc["metadata"], svc.get("spec") or {}
        for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
            if ip and ip != "None":
                self._by_cluster_ip[ip] = (m.get("namespace", ""), m["name"])
        self._changed(("svc", m.get("namespace", ""), m["name"]), *self._ip_keys(spec))

    def _svc_del(self, svc: Obj) -> None:
        key = (svc["metadata"].get("namespace", ""), svc["metadata"]["name"])
        spec = svc.get("spec") or {}
        for ip in spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []):
            if self._by_cluster_ip.get(ip) == key:
                del self._by_cluster_ip[ip]
        self._changed(("svc", *key), *self._ip_keys(spec))

    def service(self, namespace: str, name: str) -> Obj | None:
        return self.services.store.get(namespace, name)

    def service_by_ip(self, ip: str) -> tuple[str, str] | None:
        return self._by_cluster_ip.get(ip)

    # ---------------------------------------------------------------- endpoint slices
    @staticmethod
    def _slice_svc(s: Obj) -> tuple[str, str] | None:
        name = (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
        return (s["metadata"].get("namespace", ""), name) if name else None

    def _slice_add(self, s: Obj) -> None:
        key = self._slice_svc(s)
        if key is None:
            return
        self._slices.setdefault(key, {})[s["metadata"]["name"]] = slice_endpoints(s)
        self._reindex(key)

    def _slice_del(self, s: Obj) -> None:
        key = self._slice_svc(s)
        if key is None:
            return
        self._slices.get(key, {}).pop(s["metadata"]["name"], None)
        if not self._slices.get(key):
            self._slices.pop(key, None)
        self._reindex(key)

    def _reindex(self, key: tuple[str, str]) -> None:
        touched: set[ChangeKey] = {("svc", *key)}
        for ep in self._endpoints.pop(key, []):
            touched.add(("ip", ep.ip))
            names = self._by_endpoint_ip.get(ep.ip)
            if names is not None:
                names.discard((key[0], key[1], ep.hostname))
                if not names:
                    del self._by_endpoint_ip[ep.ip]
        eps = [ep for per_slice in self._slices.get(key, {}).values() for ep in per_slice]
        if eps:
            self._endpoints[key] = eps
        for ep in eps:
            self._by_endpoint_ip.setdefault(ep.ip, set()).add((key[0], key[1], ep.hostname))
            touched.add(("ip", ep.ip))
        self._changed(*touched)

    def endpoints(self, namespace: str, name: str) -> list[Endpoint]:
        return self._endpoints.get((namespace, name), [])

    def endpoint_names(self, ip: str) -> list[tuple[str, str, str]]:
        """(namespace, service, hostname) of each ready endpoint with this IP."""
        return sorted(self._by_endpoint_ip.get(ip, ()))

    # ---------------------------------------------------------------- pods (pods verified)
    def _pod_add(self, pod: Obj) -> None:
        ip = (pod.get("status") or {}).get("podIP")
        if ip and not pod["metadata"].get("deletionTimestamp"):
            m = pod["metadata"]
            self._pods_by_ip.setdefault(ip, {}).setdefault(m.get("namespace", ""), set()).add(m["name"])
            if self.pods_affect_answers:
                self._changed()

    def _pod_del(self, pod: Obj) -> None:
        ip = (pod.get("status") or {}).get("podIP")
        by_ns = self._pods_by_ip.get(ip or "")
        if by_ns is None:
            return
        m = pod["metadata"]
        ns = m.get("namespace", "")
        names = by_ns.get(ns)
        if names is not None:
            names.discard(m["name"])
            if not names:
                del by_ns[ns]
                if not by_ns:
                    del self._pods_by_ip[ip]
        if self.pods_affect_answers:
            self._changed()

    def pod_exists(self, namespace: str, ip: str) -> bool:
        return namespace in self._pods_by_ip.get(ip, ())
