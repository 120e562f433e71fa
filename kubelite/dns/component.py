"""ClusterDNS: the in-process cluster DNS component (the part of a cluster CoreDNS plays), on the client.

On start it binds the server to `config.dns_listen` (`host:port`; port 0 picks a free one, the
default for non-root single-machine use), writes the bound address to `<data_dir>/dns.addr`,
and makes sure `kube-system/kube-dns` (cluster IP `config.cluster_dns`) and the `coredns`
ConfigMap exist. The Service has no selector: no pod backs it, so when the server listens on a
routable (non-loopback) address the component writes the Service's Endpoints itself, for the
service proxy to send 10.43.0.10:53 there, as the API server does for `kubernetes`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.client.client import Client
from kubelite.client.informer import SharedInformerFactory
from kubelite.dns.corefile import CorefileSettings, default_corefile, parse_corefile
from kubelite.dns.forward import Forwarder, Upstream, parse_target
from kubelite.dns.records import ClusterRecords
from kubelite.dns.resolver import KubernetesResolver
from kubelite.dns.server import DNSServer

log = logging.getLogger(__name__)

FIELD_MANAGER = "kubelite-dns"


def split_host_port(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port or 53)


def kube_dns_service(cluster_ip: str) -> dict:
    """kube-system/kube-dns as k3s and kubeadm install it (labels, ports, cluster IP), minus the
    selector: nothing in the cluster runs CoreDNS pods."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                "kubernetes.io/name": "CoreDNS"},
                     "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]},
    }


def _routable(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast)


class ClusterDNS:
    def __init__(self, client: Client, config: Any):
        self.client = client
        self.config = config
        self.factory = SharedInformerFactory(client)
        self.records = ClusterRecords(self.factory, watch_pods=True)
        self.settings = CorefileSettings()
        self.resolver = KubernetesResolver(self.records, config.cluster_domain, self.settings.ttl,
                                           self.settings.pods_mode, config.cluster_dns)
        self.forwarder = Forwarder([])
        self.server = DNSServer(self.resolver, self.forwarder, lambda: self.records.generation,
                                self.records.take_changes)
        self.corefile = self.factory.informer("", "v1", "configmaps", field_selector="metadata.name=coredns")
        self.corefile.add_handler(self._corefile_changed, lambda _old, new: self._corefile_changed(new))
        self._ensure_task: asyncio.Task | None = None

    @property
    def address(self) -> tuple[str, int] | None:
        return self.server.address

    # ---------------------------------------------------------------- configuration
    def _corefile_changed(self, cm: dict) -> None:
        if cm["metadata"].get("namespace") != "kube-system":
            return
        self.apply_settings(parse_corefile((cm.get("data") or {}).get("Corefile") or ""))

    def apply_settings(self, s: CorefileSettings) -> None:
        self.settings = s
        self.resolver.ttl = s.ttl
        self.resolver.pods_mode = s.pods_mode
        self.records.pods_affect_answers = s.pods_mode == "verified"
        upstreams: list[Upstream] = []
        for target in s.forward:
            upstreams += parse_target(target)
        own = {self.config.cluster_dns}
        if self.server.address:
            own.add(f"{self.server.address[0]}:{self.server.address[1]}")
        self.forwarder.upstreams = [u for u in upstreams if u[0] not in own and f"{u[0]}:{u[1]}" not in own]
        self.server.invalidate()
        log.info("dns: pods %s, ttl %d, forwarding to %s", s.pods_mode, s.ttl,
                 ", ".join(f"{h}:{p}" for h, p in self.forwarder.upstreams) or "nobody")

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        host, port = split_host_port(self.config.dns_listen)
        bound = await self.server.start(host, port)
        self.apply_settings(self.settings)  # /etc/resolv.conf until the ConfigMap is seen
        try:
            with open(os.path.join(self.config.data_dir, "dns.addr"), "w") as f:
                f.write(f"{bound[0]}:{bound[1]}\n")
        except OSError as e:
            log.warning("dns: cannot record the listen address: %s", e)
        await self.factory.start()
        self._ensure_task = asyncio.get_running_loop().create_task(self._ensure_objects())
        log.info("cluster DNS for %s listening on %s:%d (udp, tcp)", self.config.cluster_domain, *bound)

    async def stop(self) -> None:
        if self._ensure_task is not None:
            self._ensure_task.cancel()
            await asyncio.gather(self._ensure_task, return_exceptions=True)
        await self.server.stop()
        await self.factory.stop()

    async def _ensure_objects(self) -> None:
        """Create what is missing, retrying until the API accepts (it may still be bootstrapping)."""
        delay = 0.2
        while True:
            try:
                await self._ensure(self.client.configmaps, {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "coredns", "namespace": "kube-system"},
                    "data": {"Corefile": default_corefile(self.config.cluster_domain)}})
                await self._ensure(self.client.services, kube_dns_service(self.config.cluster_dns))
                host, port = self.server.address or ("", 0)
                if _routable(host):
                    await self._ensure(self.client.endpoints, replace_subsets=True, obj={
                        "apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": "kube-dns", "namespace": "kube-system"},
                        "subsets": [{"addresses": [{"ip": host}],
                                     "ports": [{"name": "dns", "port": port, "protocol": "UDP"},
                                               {"name": "dns-tcp", "port": port, "protocol": "TCP"}]}]})
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("dns: cannot create kube-dns objects yet: %s", e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    @staticmethod
    async def _ensure(resource: Any, obj: dict, replace_subsets: bool = False) -> None:
        """Create `obj` if missing; with `replace_subsets`, also correct an existing object's subsets
        (the port is picked anew at each start, and the service proxy DNATs to what is written)."""
        m = obj["metadata"]
        try:
            current = await resource.get(m["name"], namespace=m["namespace"])
            if replace_subsets and current.get("subsets") != obj["subsets"]:
                await resource.update({**current, "subsets": obj["subsets"]}, namespace=m["namespace"],
                                      field_manager=FIELD_MANAGER)
            return
        except StatusError as e:
            if e.code != 404:
                raise
        try:
            await resource.create(obj, namespace=m["namespace"], field_manager=FIELD_MANAGER)
        except StatusError as e:
            if e.reason != "AlreadyExists":
                raise
