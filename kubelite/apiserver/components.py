"""The components `kubelite server` runs beside the API server, each on the in-process client."""

from __future__ import annotations

import logging
from typing import Any

from kubelite.apiserver.config import ServerConfig

log = logging.getLogger(__name__)


async def start(service: Any, config: ServerConfig) -> list[Any]:
    """Start what the config asks for; each returned object has `async stop()`."""
    started: list[Any] = []
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
    if getattr(config, "kubelet", False):
        from kubelite.client.client import Client as _KClient
        from kubelite.kubelet import Kubelet, KubeletConfig, NodeUnavailable

        kubelet = Kubelet(_KClient.in_process(service), KubeletConfig.from_server_config(config))
        try:
            await kubelet.start()
            started.append(kubelet)
            if getattr(config, "kube_proxy", True):
                proxier = await _start_proxy(_KClient.in_process(service), config, kubelet)
                if proxier is not None:
                    started.append(proxier)
        except NodeUnavailable as e:
            log.error("no node on this host, running the control plane only: %s", e)
            await kubelet.stop()
        except Exception:
            log.exception("the kubelet failed to start; running the control plane only")
            await kubelet.stop()
    return started


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
