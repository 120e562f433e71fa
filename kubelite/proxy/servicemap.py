"""What the proxy needs to know about Services and EndpointSlices, as plain values.

kube-proxy's ServicePortInfo and Endpoint: one entry per (service, port), with the addresses it is
reachable on and the ready endpoints behind it. Building them is pure, so the rule generator and
the bench work on synthetic objects without an API server.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_SECONDS = 10800


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    @property
    def address(self) -> str:
        """`ip:port`, the form upstream hashes into KUBE-SEP chain names and DNATs to."""
        return f"{self.ip}:{self.port}"


@dataclass
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str  # TCP, UDP, SCTP
    port: int
    cluster_ip: str
    node_port: int = 0
    external_ips: list[str] = field(default_factory=list)
    load_balancer_ips: list[str] = field(default_factory=list)
    external_policy_local: bool = False
    internal_policy_local: bool = False
    affinity_seconds: int = 0  # > 0: sessionAffinity ClientIP
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def port_name_string(self) -> str:
        """ServicePortName.String(): `ns/name` plus `:port` when the port is named."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base

    @property
    def has_external(self) -> bool:
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)


def _is_ip(value: str) -> bool:
    return bool(value) and value != "None"


def service_ports(svc: Obj) -> list[ServicePort]:
    """The proxied ports of a Service: none for ExternalName and headless services."""
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName" or not _is_ip(spec.get("clusterIP") or ""):
        return []
    meta = svc["metadata"]
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        affinity = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get(
            "timeoutSeconds") or DEFAULT_AFFINITY_SECONDS
    lb_ips = []
    if spec.get("type") == "LoadBalancer":
        lb_ips = [i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                  if i.get("ip")]
    external_local = spec.get("type") in ("NodePort", "LoadBalancer") and spec.get("externalTrafficPolicy") == "Local"
    out = []
    for p in spec.get("ports") or []:
        out.append(ServicePort(
            namespace=meta.get("namespace", ""), name=meta["name"], port_name=p.get("name") or "",
            protocol=p.get("protocol") or "TCP", port=int(p["port"]), cluster_ip=spec["clusterIP"],
            node_port=int(p.get("nodePort") or 0) if spec.get("type") in ("NodePort", "LoadBalancer") else 0,
            external_ips=list(spec.get("externalIPs") or []), load_balancer_ips=lb_ips,
            external_policy_local=external_local,
            internal_policy_local=spec.get("internalTrafficPolicy") == "Local",
            affinity_seconds=int(affinity)))
    return out


def slice_endpoints(slices: Iterable[Obj], port_name: str, protocol: str) -> list[Endpoint]:
    """The endpoints of one service port across the service's IPv4 EndpointSlices, deduplicated."""
    seen: dict[str, Endpoint] = {}
    for s in slices:
        if s.get("addressType", "IPv4") != "IPv4":
            continue
        port = next((p for p in s.get("ports") or [] if (p.get("name") or "") == port_name
                     and (p.get("protocol") or "TCP") == protocol and p.get("port")), None)
        if port is None:
            continue
        for ep in s.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False
            for ip in (ep.get("addresses") or [])[:1]:
                e = Endpoint(ip=ip, port=int(port["port"]), node_name=ep.get("nodeName") or "",
                             ready=ready, serving=cond.get("serving", ready) is not False,
                             terminating=cond.get("terminating") is True)
                if e.address not in seen or (e.ready and not seen[e.address].ready):
                    seen[e.address] = e
    return sorted(seen.values(), key=lambda e: (tuple(int(x) for x in e.ip.split(".")), e.port))


def usable(endpoints: list[Endpoint]) -> list[Endpoint]:
    """Ready endpoints; when none are, the serving terminating ones (upstream's graceful fallback)."""
    ready = [e for e in endpoints if e.ready]
    return ready or [e for e in endpoints if e.serving and e.terminating]


def build_service_map(services: Iterable[Obj], slices: Iterable[Obj]) -> list[ServicePort]:
    """Every proxied service port with its endpoints, in a stable order (so rule text is stable)."""
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for s in slices:
        meta = s.get("metadata") or {}
        name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if name:
            by_service.setdefault((meta.get("namespace", ""), name), []).append(s)
    out: list[ServicePort] = []
    for svc in services:
        ports = service_ports(svc)
        own = by_service.get((svc["metadata"].get("namespace", ""), svc["metadata"]["name"]), [])
        for sp in ports:
            sp.endpoints = slice_endpoints(own, sp.port_name, sp.protocol)
        out.extend(ports)
    out.sort(key=lambda sp: (sp.namespace, sp.name, sp.port_name, sp.protocol))
    return out
