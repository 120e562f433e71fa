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

        dns = ClusterDNS(Client.in_process(service), config)
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
        except NodeUnavailable as e:
            log.error("no node on this host, running the control plane only: %s", e)
            await kubelet.stop()
        except Exception:
            log.exception("the kubelet failed to start; running the control plane only")
            await kubelet.stop()
    return started
