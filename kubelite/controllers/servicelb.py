"""ServiceLB: LoadBalancer services on the nodes' own addresses, as k3s's ServiceLB (klipper-lb) does.

A single-host cluster has no cloud load balancer; k3s publishes each LoadBalancer service on its
nodes' addresses (status.loadBalancer.ingress = their ExternalIP, else InternalIP) and the node's
proxy accepts traffic to that address and port. Here the service proxy's `loadbalancer IP` rules do
the forwarding, so all this controller owns is the status. Simulated nodes carry no traffic and are
not used; services with a `loadBalancerClass` belong to another implementation and are left alone.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.api.meta import is_status_condition_true
from kubelite.client.controller import Controller
from kubelite.client.informer import SharedInformerFactory, meta_namespace_key, split_meta_namespace_key

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SIMULATED_LABEL = "kubelite.io/simulated"
FIELD_MANAGER = "service-lb-controller"


def node_addresses(nodes: list[Obj]) -> list[str]:
    """The address each ready real node is reached on (ExternalIP first, as k3s), sorted."""
    ips = set()
    for n in nodes:
        if (n["metadata"].get("labels") or {}).get(SIMULATED_LABEL) == "true" or not is_status_condition_true(n, "Ready"):
            continue
        addrs = (n.get("status") or {}).get("addresses") or []
        for kind in ("ExternalIP", "InternalIP"):
            found = [a["address"] for a in addrs if a.get("type") == kind and a.get("address")]
            if found:
                ips.update(found)
                break
    return sorted(ips, key=lambda ip: ipaddress.ip_address(ip).packed)


def desired_ingress(svc: Obj, nodes: list[Obj]) -> list[Obj]:
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer":
        return []
    return [{"ip": ip, "ipMode": "VIP"} for ip in node_addresses(nodes)]


class ServiceLBController:
    name = "service-lb-controller"

    def __init__(self, client: Any, factory: SharedInformerFactory):
        self.services = client.resource("", "v1", "services")
        self.svc_informer = factory.informer("", "v1", "services")
        self.node_informer = factory.informer("", "v1", "nodes")
        self.controller = Controller(self.name, self.sync, workers=2)
        self.controller.watch(self.svc_informer)
        self.node_informer.add_handler(self._nodes_changed, lambda old, new: self._nodes_changed(new),
                                       self._nodes_changed)

    def _nodes_changed(self, _node: Obj) -> None:
        for svc in self.svc_informer.store.list():
            if (svc.get("spec") or {}).get("type") == "LoadBalancer":
                self.controller.enqueue(meta_namespace_key(svc))

    async def sync(self, key: str) -> None:
        ns, name = split_meta_namespace_key(key)
        svc = self.svc_informer.store.get(ns, name)
        if svc is None or (svc.get("spec") or {}).get("loadBalancerClass"):
            return
        status = svc.get("status") or {}
        current = (status.get("loadBalancer") or {}).get("ingress") or []
        want = desired_ingress(svc, self.node_informer.store.list())
        if current == want:
            return
        lb = {"ingress": want} if want else {}
        try:
            await self.services.update_status({**svc, "status": {**status, "loadBalancer": lb}}, namespace=ns,
                                              field_manager=FIELD_MANAGER)
        except StatusError as e:
            if e.code not in (404, 409):
                raise
            if e.code == 409:
                self.controller.enqueue_after(key, 0.1)  # a newer version is on its way through the informer

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
