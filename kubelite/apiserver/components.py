"""The components `kubelite server` runs beside the API server, each on the in-process client."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubelite.apiserver.config import ServerConfig

log = logging.getLogger(__name__)


async def start(service: Any, config: ServerConfig) -> list[Any]:
    """Start what the config asks for; each returned object has `async stop()`.

    A real node starts beside the control-plane components: most of its start is waiting for
    containerd to come up, which the components' informer syncs fill."""
    started: list[Any] = []
    node = None
    if getattr(config, "kubelet", False):
        node = asyncio.get_running_loop().create_task(_start_node(service, config), name="kubelite-node")
    try:
        await _start_control_plane(service, config, started)
    except BaseException:
        if node is not None:
            node.cancel()
            await asyncio.gather(node, return_exceptions=True)
        raise
    if node is not None:
        started += await node
    return started


async def _start_control_plane(service: Any, config: ServerConfig, started: list[Any]) -> None:
    if config.controllers:
        from kubelite.client.client import Client
        from kubelite.controllers.manager import ControllerManager

        manager = ControllerManager(Client.in_process(service), config, registry=service.registry)
        await manager.start()
        started.append(manager)
    if config.dns_listen:
        from kubelite.client.client import Client
        from kubelite.dns import ClusterDNS

        dns = ClusterDNS(Client.in_process(service), _dns_config(config))
        await dns.start()
        started.append(dns)
    # simulated nodes (kwok-style) always run: `kubelite nodes add` may ask for some at any time
    from kubelite.client.client import Client as _Client
    from kubelite.runtime.simulated import SimulatedNodes

    simulator = SimulatedNodes(_Client.in_process(service), config.simulated_nodes, config.cluster_cidr)
    await simulator.start()
    started.append(simulator)
    if config.scheduler:
        from kubelite.scheduler import Scheduler

        scheduler = Scheduler(_Client.in_process(service))
        await scheduler.start()
        started.append(scheduler)
    # the API server's kubelet client (logs/exec proxy), and a real node when asked (`--kubelet`)
    from kubelite.kubelet.proxy import KubeletClient

    service.kubelet_client = KubeletClient(config.tls_dir)
    # metrics-server's part: the resource metrics API (kubectl top, the HPA's Resource metrics)
    from kubelite.metrics.server import MetricsServer

    metrics = MetricsServer(_Client.in_process(service), service.registry, service.kubelet_client,
                            resolution=getattr(config, "metric_resolution", 15.0))
    await metrics.start()
    started.append(metrics)


async def _start_node(service: Any, config: ServerConfig) -> list[Any]:
    """The kubelet and its service proxy; a node that cannot start leaves the control plane running."""
    from kubelite.client.client import Client
    from kubelite.kubelet import Kubelet, KubeletConfig, NodeUnavailable

    kubelet = Kubelet(Client.in_process(service), KubeletConfig.from_server_config(config))
    started: list[Any] = []
    try:
        await kubelet.start()
        started.append(kubelet)
        if getattr(config, "kube_proxy", True):
            started.append(_InBackground(_start_proxy(Client.in_process(service), config, kubelet)))
    except NodeUnavailable as e:
        log.error("no node on this host, running the control plane only: %s", e)
        await kubelet.stop()
    except Exception:
        log.exception("the kubelet failed to start; running the control plane only")
        await kubelet.stop()
    except asyncio.CancelledError:  # the control plane failed to start: leave nothing running
        for comp in reversed(started or [kubelet]):
            await comp.stop()
        raise
    return started


class _InBackground:
    """A component the server's readiness does not wait for, as kube-proxy is its own process
    upstream: its start runs as a task; stop() cancels a start still running, else stops it."""

    def __init__(self, start: Any):
        self._task = asyncio.get_running_loop().create_task(start, name="kubelite-background-start")

    async def stop(self) -> None:
        self._task.cancel()
        (comp,) = await asyncio.gather(self._task, return_exceptions=True)
        if comp is not None and not isinstance(comp, BaseException):
            await comp.stop()


def _dns_config(config: ServerConfig) -> ServerConfig:
    """With a real node and its service proxy, cluster DNS must be reachable from pods: the default
    loopback listener moves to the node's address (a free port), so kube-dns's Endpoints point
    there and the proxy DNATs the kube-dns ClusterIP (:53) to it. Without a node, or with an
    explicit --dns-listen, the setting stands."""
    import dataclasses

    if not (getattr(config, "kubelet", False) and getattr(config, "kube_proxy", True)
            and config.dns_listen == ServerConfig.dns_listen):
        return config
    from kubelite.apiserver.pki import primary_ip

    node_ip = config.node_ip or primary_ip()
    return dataclasses.replace(config, dns_listen=f"{node_ip}:0") if node_ip else config


async def _start_proxy(client: Any, config: ServerConfig, kubelet: Any) -> Any:
    """kube-proxy beside the kubelet, on the node's name and address; a host without iptables
    still gets a node, only without services."""
    from kubelite.proxy import Proxier, ProxyConfig
    from kubelite.proxy.iptables import IPTables
    from kubelite.proxy.nftables import NFTables

    mode = getattr(config, "proxy_mode", "iptables") or "iptables"
    if not (NFTables.available() if mode == "nftables" else IPTables.available()):
        log.error("no %s on this host: services will not be reachable from this node",
                  "nft" if mode == "nftables" else "iptables/iptables-restore")
        return None
    proxier = Proxier(client, ProxyConfig(node_name=kubelet.config.node_name, node_ip=kubelet.node_ip,
                                          cluster_cidr=config.cluster_cidr, service_cidr=config.service_cidr,
                                          chain_prefix=getattr(config, "proxy_chain_prefix", "KUBE") or "KUBE",
                                          mode=mode))
    try:
        await proxier.start()
        return proxier
    except Exception:
        log.exception("the service proxy failed to start")
        await proxier.stop()
        return None
    except asyncio.CancelledError:  # the server stops before the proxy's first sync
        await proxier.stop()
        raise
