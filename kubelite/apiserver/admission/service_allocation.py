"""Cluster IPs from the service CIDR and node ports from their range, never handed out twice.

Upstream does this in the Service REST storage with bitmap allocators persisted in etcd; here the
maps are rebuilt from the stored Services at start, which holds because every write goes through
this API server.
"""

from __future__ import annotations

import ipaddress
import random
from typing import TYPE_CHECKING, Any

from kubelite.api import errors
from kubelite.api.registry import Resource
from kubelite.apiserver.admission import AdmissionPlugin

if TYPE_CHECKING:
    from kubelite.apiserver.service import APIService

Obj = dict[str, Any]


def _cluster_ips(svc: Obj | None) -> set[str]:
    if not svc:
        return set()
    spec = svc.get("spec") or {}
    ips = set(spec.get("clusterIPs") or [])
    if spec.get("clusterIP"):
        ips.add(spec["clusterIP"])
    ips.discard("None")
    ips.discard("")
    return ips


def _node_ports(svc: Obj | None) -> set[int]:
    if not svc:
        return set()
    spec = svc.get("spec") or {}
    ports = {p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort")}
    if spec.get("healthCheckNodePort"):
        ports.add(spec["healthCheckNodePort"])
    return ports


def _needs_node_ports(spec: Obj) -> bool:
    if spec.get("type") == "NodePort":
        return True
    return spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


class ServiceAllocation(AdmissionPlugin):
    def __init__(self, service_cidr: str, node_port_range: tuple[int, int]):
        self.network = ipaddress.ip_network(service_cidr, strict=False)
        self.port_range = node_port_range
        self.ips: set[str] = set()
        self.ports: set[int] = set()

    def kubernetes_service_ip(self) -> str:
        return str(self.network.network_address + 1)

    async def start(self, service: APIService) -> None:
        res = service.registry.get("", "v1", "services")
        items, _, _ = await service.store.list(res.storage_prefix())
        for svc in items:
            self.ips |= _cluster_ips(svc)
            self.ports |= _node_ports(svc)

    # -- allocation --------------------------------------------------------------------------
    def _allocate_ip(self) -> str:
        first = int(self.network.network_address) + 1
        last = int(self.network.broadcast_address) - 1
        size = last - first + 1
        if len(self.ips) >= size:
            raise errors.StatusError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")
        start = random.randrange(size)
        for i in range(size):
            ip = str(ipaddress.ip_address(first + (start + i) % size))
            if ip not in self.ips and ip != self.kubernetes_service_ip():
                return ip
        raise errors.StatusError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")

    def _allocate_port(self) -> int:
        lo, hi = self.port_range
        size = hi - lo + 1
        start = random.randrange(size)
        for i in range(size):
            p = lo + (start + i) % size
            if p not in self.ports:
                return p
        raise errors.StatusError(500, "InternalError", "Internal error occurred: failed to allocate a nodePort: range is full")

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        if res.group != "" or res.plural != "services":
            return
        spec = obj.setdefault("spec", {})
        name = obj["metadata"].get("name", "")
        old_spec = (old or {}).get("spec") or {}
        fe: list[errors.FieldError] = []
        if spec.get("type") == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        else:
            if old and not spec.get("clusterIP") and old_spec.get("clusterIP"):
                spec["clusterIP"] = old_spec["clusterIP"]
                spec["clusterIPs"] = list(old_spec.get("clusterIPs") or [old_spec["clusterIP"]])
            ip = spec.get("clusterIP") or ((spec.get("clusterIPs") or [None])[0])
            old_ips = _cluster_ips(old)
            if not ip:
                ip = self._allocate_ip()
                self.ips.add(ip)
            elif ip != "None" and ip not in old_ips:
                fe += self._reserve_ip(ip)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        if _needs_node_ports(spec):
            old_ports = _node_ports(old)
            for i, port in enumerate(spec.get("ports") or []):
                np = port.get("nodePort")
                if not np:
                    # keep the node port a port had before (kubectl apply without nodePort)
                    prev = next((p.get("nodePort") for p in old_spec.get("ports") or []
                                 if p.get("port") == port.get("port") and p.get("protocol", "TCP") == port.get("protocol", "TCP")
                                 and p.get("nodePort")), None)
                    if prev:
                        port["nodePort"] = prev
                        continue
                    port["nodePort"] = self._allocate_port()
                    self.ports.add(port["nodePort"])
                elif np not in old_ports:
                    fe += self._reserve_port(np, f"spec.ports[{i}].nodePort")
            if spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local" and not spec.get("healthCheckNodePort"):
                spec["healthCheckNodePort"] = old_spec.get("healthCheckNodePort") or self._allocate_port()
                self.ports.add(spec["healthCheckNodePort"])
        else:
            for port in spec.get("ports") or []:
                port.pop("nodePort", None)
            spec.pop("healthCheckNodePort", None)
        if fe:
            self.release(res, obj, old)
            raise errors.new_invalid("Service", "", name, fe)

    def _reserve_ip(self, ip: str) -> list[errors.FieldError]:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return []  # the kind's validation words the syntax error
        if addr not in self.network or addr == self.network.network_address or addr == self.network.broadcast_address:
            return [errors.invalid("spec.clusterIPs", [ip], f"failed to allocate IP {ip}: the provided IP ({ip}) is not in "
                                   f"the valid range. The range of valid IPs is {self.network}")]
        if ip in self.ips:
            return [errors.invalid("spec.clusterIPs", [ip], f"failed to allocate IP {ip}: provided IP is already allocated")]
        self.ips.add(ip)
        return []

    def _reserve_port(self, port: int, path: str) -> list[errors.FieldError]:
        lo, hi = self.port_range
        if not lo <= port <= hi:
            return [errors.invalid(path, port, f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}")]
        if port in self.ports:
            return [errors.invalid(path, port, "provided port is already allocated")]
        self.ports.add(port)
        return []

    def release(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        if res.group != "" or res.plural != "services":
            return
        self.ips -= _cluster_ips(obj) - _cluster_ips(old)
        self.ports -= _node_ports(obj) - _node_ports(old)

    def committed(self, res: Resource, obj: Obj | None, old: Obj | None) -> None:
        if res.group != "" or res.plural != "services":
            return
        self.ips -= _cluster_ips(old) - _cluster_ips(obj)
        self.ports -= _node_ports(old) - _node_ports(obj)
