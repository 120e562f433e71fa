"""The workload, node and policy controllers of kube-controller-manager, assembled on one informer factory.

`controllers(client, factory, config)` returns them unstarted (each has `start()` and `async stop()`)
for the ControllerManager. `python -m kubelite.controllers.workloads --kubeconfig FILE` runs them
alone against a server, as kube-controller-manager can run with `--controllers=`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

CONFLICT_RETRY = 0.3


def requeue_on_conflict(sync: Callable[[Any, str], Awaitable[float | None]]) -> Callable[[Any, str], Awaitable[float | None]]:
    """A 409 from a write based on the informer cache only means the cache is behind our own last
    write: sync the key again shortly instead of logging an error and backing off."""
    @functools.wraps(sync)
    async def wrapper(self: Any, key: str) -> float | None:
        from kubelite.api.errors import StatusError

        try:
            return await sync(self, key)
        except StatusError as e:
            if e.code == 409 and e.reason == "Conflict":
                return CONFLICT_RETRY
            raise
    return wrapper


def controllers(client: Any, factory: Any, config: Any = None) -> list[Any]:
    from kubelite.controllers.cronjob import CronJobController
    from kubelite.controllers.daemonset import DaemonSetController
    from kubelite.controllers.disruption import DisruptionController
    from kubelite.controllers.flowschema_status import FlowSchemaStatusController
    from kubelite.controllers.job import JobController
    from kubelite.controllers.localpath import LocalPathProvisioner
    from kubelite.controllers.node_lifecycle import NodeLifecycleController
    from kubelite.controllers.persistentvolume import PersistentVolumeController
    from kubelite.controllers.podgc import PodGCController
    from kubelite.controllers.resourcequota import ResourceQuotaController
    from kubelite.controllers.statefulset import StatefulSetController
    from kubelite.controllers.taint_eviction import TaintEvictionController
    from kubelite.controllers.ttl_after_finished import TTLAfterFinishedController
    from kubelite.controllers.volume_protection import PVCProtectionController, PVProtectionController

    return [
        DaemonSetController(client, factory),
        StatefulSetController(client, factory),
        JobController(client, factory),
        CronJobController(client, factory),
        TTLAfterFinishedController(client, factory),
        NodeLifecycleController(client, factory),
        TaintEvictionController(client, factory),
        PodGCController(client, factory),
        DisruptionController(client, factory),
        ResourceQuotaController(client, factory),
        PersistentVolumeController(client, factory),
        PVCProtectionController(client, factory),
        PVProtectionController(client, factory),
        LocalPathProvisioner(client, factory, _storage_dir(config)),
        FlowSchemaStatusController(client, factory),
    ]


def _storage_dir(config: Any) -> str:
    """Where the local-path provisioner keeps volumes: `<data-dir>/storage` (k3s: .../k3s/storage)."""
    import os

    from kubelite.apiserver.config import default_data_dir

    return os.path.join(getattr(config, "data_dir", None) or default_data_dir(), "storage")


async def run(kubeconfig: str | None) -> None:
    from kubelite.client import Client, SharedInformerFactory

    client = Client.from_kubeconfig(kubeconfig)
    factory = SharedInformerFactory(client)
    ctrls = controllers(client, factory)
    await factory.start()
    await factory.wait_for_sync(60)
    for c in ctrls:
        c.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for c in reversed(ctrls):
        await c.stop()
    await factory.stop()
    await client.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m kubelite.controllers.workloads")
    p.add_argument("--kubeconfig")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args.kubeconfig))


if __name__ == "__main__":
    main()
