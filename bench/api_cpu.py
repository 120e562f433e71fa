"""The API server's own CPU per write, without HTTP: what a create and a pod status update cost in
`APIService` (admission, validation, managed fields, the store), measured in process CPU time.

Run: python bench/api_cpu.py [--objects N]
Wall-clock benches (bench/api.py) mix in TLS, HTTP and the client; this one isolates the server's
request path, so that a change to it can be compared on a busy machine. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from api import free_port  # noqa: E402  (bench/ is not a package)

POD_SPEC = {"containers": [{"name": "c", "image": "busybox:1.36", "ports": [{"containerPort": 80}],
                            "env": [{"name": "A", "value": "1"}], "resources": {"requests": {"cpu": "100m"}}}]}
NOW = "2026-01-01T00:00:00Z"


def running_status(old: dict) -> dict:
    """What a kubelet writes once the pod runs (keeping what the API server set, as a kubelet does)."""
    status = dict(old.get("status") or {})
    status.update(phase="Running", podIP="10.42.0.9", podIPs=[{"ip": "10.42.0.9"}], hostIP="10.0.0.1",
                  hostIPs=[{"ip": "10.0.0.1"}], startTime=NOW)
    status["conditions"] = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": NOW}
                            for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                      "PodScheduled")]
    status["containerStatuses"] = [{"name": "c", "ready": True, "restartCount": 0, "image": "busybox:1.36",
                                    "imageID": "sha256:0", "containerID": "containerd://0", "started": True,
                                    "state": {"running": {"startedAt": NOW}}}]
    return status


async def main(n: int) -> None:
    from kubelite.apiserver.config import ServerConfig
    from kubelite.apiserver.controlplane import ControlPlane
    from kubelite.apiserver.server import tune_gc

    plane = ControlPlane(ServerConfig(data_dir=tempfile.mkdtemp(prefix="kl-bench-"), port=free_port(),
                                      controllers=False, scheduler=False, dns_listen=""))
    await plane.start()
    tune_gc()  # the collector as the server process runs it
    svc, reg = plane.service, plane.service.registry
    cms, pods = reg.get("", "v1", "configmaps"), reg.get("", "v1", "pods")
    await svc.create(reg.get("", "v1", "namespaces"), None, {"metadata": {"name": "b"}})
    await svc.create(reg.get("", "v1", "serviceaccounts"), "b", {"metadata": {"name": "default"}})

    async def timed(label: str, fn) -> None:
        t = time.process_time()
        for k in range(0, n, 50):  # 50 in flight, as many clients would keep
            await asyncio.gather(*(fn(i) for i in range(k, min(n, k + 50))))
        print(f"{label:<22} {(time.process_time() - t) / n * 1e3:7.3f} ms CPU per request  ({n} requests)")

    await timed("ConfigMap create", lambda i: svc.create(cms, "b", {"metadata": {"name": f"cm-{i}"},
                                                                       "data": {"k": "v" * 200}}, field_manager="bench"))
    await timed("Pod create", lambda i: svc.create(pods, "b", {"metadata": {"name": f"p-{i}", "labels": {"app": "x"}},
                                                                "spec": copy.deepcopy(POD_SPEC)},
                                                    field_manager="kube-controller-manager"))
    # the body a client would send: prepared outside the timing, as a client decodes and encodes its own
    bodies = {}
    for i in range(n):
        old = copy.deepcopy(await svc.get(pods, "b", f"p-{i}"))
        old["status"] = running_status(old)
        bodies[i] = old
    await timed("Pod status update", lambda i: svc.update(pods, "b", f"p-{i}", bodies[i], subresource="status",
                                                           field_manager="kubelet"))
    await timed("Pod GET", lambda i: svc.get(pods, "b", f"p-{i}"))
    await plane.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=2000)
    args = ap.parse_args()
    import uvloop

    uvloop.run(main(args.objects))
