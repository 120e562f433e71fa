"""ControllerManager: kube-controller-manager in one object, every controller on one SharedInformerFactory.

`kubelite/apiserver/components.py` builds it on the in-process client:
    manager = ControllerManager(Client.in_process(service), config); await manager.start()
and calls `await manager.stop()` on shutdown.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from kubelite.api.registry import default_registry
from kubelite.client.informer import SharedInformerFactory
from kubelite.controllers.deployment import DeploymentController
from kubelite.controllers.endpoints import EndpointsController
from kubelite.controllers.endpointslice import EndpointSliceController
from kubelite.controllers.endpointslice_mirroring import EndpointSliceMirroringController
from kubelite.controllers.garbagecollector import GarbageCollector
from kubelite.controllers.namespace import NamespaceController
from kubelite.controllers.podautoscaler import HorizontalPodAutoscalerController
from kubelite.controllers.replicaset import REPLICA_SET, REPLICATION_CONTROLLER, ReplicaSetController
from kubelite.controllers.serviceaccount import RootCACertPublisher, ServiceAccountsController
from kubelite.controllers.servicelb import ServiceLBController
from kubelite.controllers.workloads import controllers as workload_controllers

log = logging.getLogger(__name__)


def _read_ca(config: Any) -> str | None:
    tls_dir = getattr(config, "tls_dir", None)
    if not tls_dir:
        return None
    try:
        with open(os.path.join(tls_dir, "ca.crt")) as f:
            return f.read()
    except OSError:
        return None


def _auth_controllers(client: Any, factory: SharedInformerFactory, config: Any) -> list[Any]:
    """clusterrole-aggregation, and the legacy token controller when the signing key's dir is known."""
    from kubelite.controllers.clusterrole_aggregation import ClusterRoleAggregationController

    out: list[Any] = [ClusterRoleAggregationController(client, factory)]
    if getattr(config, "tls_dir", None):
        from kubelite.apiserver.satoken import SigningKey
        from kubelite.controllers.serviceaccount_tokens import TokensController

        out.append(TokensController(client, factory, SigningKey(config.tls_dir), _read_ca(config)))
    return out


class ControllerManager:
    def __init__(self, client: Any, config: Any = None, registry: Any = None):
        self.client = client
        self.config = config
        self.registry = registry or default_registry()
        self.factory = SharedInformerFactory(client, trim_managed_fields=True)
        f = self.factory
        self.controllers: list[Any] = [
            ReplicaSetController(client, f, REPLICA_SET),
            ReplicaSetController(client, f, REPLICATION_CONTROLLER),
            DeploymentController(client, f),
            NamespaceController(client, f, self.registry),
            ServiceAccountsController(client, f),
            RootCACertPublisher(client, f, ca_pem=_read_ca(config)),
            EndpointsController(client, f),
            EndpointSliceController(client, f),
            EndpointSliceMirroringController(client, f),
            ServiceLBController(client, f),
            *workload_controllers(client, f, config),
            *_auth_controllers(client, f, config),
        ]
        self.controllers.append(HorizontalPodAutoscalerController(
            client, f, self.registry, sync_period=float(getattr(config, "hpa_sync_period", 15.0) or 15.0)))
        self.garbage_collector = GarbageCollector(client, f, self.registry)
        self._started = False

    async def start(self) -> None:
        """Start informers, wait (bounded) for their first list, then the workers."""
        await self.factory.start()
        if not await self.factory.wait_for_sync(timeout=30):
            log.warning("controller manager: some informers have not synced after 30s; starting anyway")
        for c in self.controllers:
            c.start()
        self.garbage_collector.start()
        self._started = True
        log.info("controller manager started %d controllers and the garbage collector", len(self.controllers))

    async def stop(self) -> None:
        for c in [*self.controllers, self.garbage_collector]:
            try:
                await c.stop()
            except Exception:
                log.exception("stopping %r", c)
        await self.factory.stop()
