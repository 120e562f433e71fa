"""The workload, node and policy controllers of kube-controller-manager, assembled on one informer factory.

`controllers(client, factory, config)` returns them unstarted (each has `start()` and `async stop()`)
for the ControllerManager. `python -m kubelite.controllers.workloads --kubeconfig FILE` runs them
alone against a server, as kube-controller-manager can run with `--controllers=`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import Any


def controllers(client: Any, factory: Any, config: Any = None) -> list[Any]:
    from kubelite.controllers.cronjob import CronJobController
    from kubelite.controllers.daemonset import DaemonSetController
    from kubelite.controllers.disruption import DisruptionController
    from kubelite.controllers.job import JobController
    from kubelite.controllers.node_lifecycle import NodeLifecycleController
    from kubelite.controllers.podgc import PodGCController
    from kubelite.controllers.resourcequota import ResourceQuotaController
    from kubelite.controllers.statefulset import StatefulSetController
    from kubelite.controllers.taint_eviction import TaintEvictionController
    from kubelite.controllers.ttl_after_finished import TTLAfterFinishedController

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
    ]


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
