"""Pod startup latency on a real node vs `ctr run` of the same number of containers.

Starts `kubelite server --kubelet` in a temporary data dir (root, containerd, runc, CNI plugins),
imports a local busybox image, then measures create -> Running (container started, IP assigned)
for 1 pod at a time (repeated) and for a burst of N pods created at once; then the same counts
of `ctr run -d` on the node's containerd (no CNI network, no API: the floor). Prints p50/p99 and
the ratio. Usage: sudo python bench/pods.py [--burst 50] [--single 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

BUSYBOX = "localhost/busybox:1"


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


async def measure_pods(client, names: list[str], ns: str) -> list[float]:
    """Create all pods at once; seconds from each create call to the watch showing it Running."""
    t0: dict[str, float] = {}
    done: dict[str, float] = {}
    watch = client.pods.watch(ns)

    async def watcher() -> None:
        async for _etype, pod in watch:
            st = pod.get("status") or {}
            css = st.get("containerStatuses") or []
            name = pod["metadata"]["name"]
            if name in t0 and name not in done and st.get("phase") == "Running" and st.get("podIP") and css \
                    and "running" in css[0].get("state", {}):
                done[name] = time.perf_counter() - t0[name]
                if len(done) == len(names):
                    return

    task = asyncio.create_task(watcher())
    await asyncio.sleep(0.2)

    async def create(name: str) -> None:
        t0[name] = time.perf_counter()
        await client.pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                  "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                                      {"name": "main", "image": BUSYBOX, "command": ["sleep", "3600"]}]}}, ns)

    await asyncio.gather(*(create(n) for n in names))
    await asyncio.wait_for(task, 300)
    await watch.aclose()
    return [done[n] for n in names]


def ctr_runs(sock: str, count: int, parallel: bool) -> list[float]:
    ids = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(count)]

    def cmd(cid: str) -> list[str]:
        return ["ctr", "-a", sock, "-n", "k8s.io", "run", "-d", BUSYBOX, cid, "sleep", "3600"]

    times: list[float] = []
    if parallel:
        t0 = time.perf_counter()
        procs = [(subprocess.Popen(cmd(i), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)) for i in ids]
        for p in procs:
            p.wait()
            times.append(time.perf_counter() - t0)
    else:
        for i in ids:
            t0 = time.perf_counter()
            subprocess.run(cmd(i), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - t0)
    for i in ids:
        subprocess.run(["ctr", "-a", sock, "-n", "k8s.io", "task", "kill", "-s", "SIGKILL", i], capture_output=True)
    time.sleep(0.5)
    for i in ids:
        subprocess.run(["ctr", "-a", sock, "-n", "k8s.io", "task", "rm", "-f", i], capture_output=True)
        subprocess.run(["ctr", "-a", sock, "-n", "k8s.io", "container", "rm", i], capture_output=True)
    return times


async def run(args: argparse.Namespace, data_dir: str, port: int) -> None:
    from kubelite.client import Client

    client = Client.from_kubeconfig(os.path.join(data_dir, "kubeconfig"))
    try:
        ns = "bench"
        await client.namespaces.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        await measure_pods(client, ["warmup"], ns)
        single = []
        for i in range(args.single):
            single += await measure_pods(client, [f"single-{i}"], ns)
        burst = await measure_pods(client, [f"burst-{i}" for i in range(args.burst)], ns)
        from kubelite.runtime.cri.containerd import ContainerdPaths

        sock = ContainerdPaths(os.path.join(data_dir, "containerd")).socket
        ctr_single = ctr_runs(sock, args.single, parallel=False)
        ctr_burst = ctr_runs(sock, args.burst, parallel=True)
        print(f"{'':28}{'p50':>9}{'p99':>9}{'all done':>10}")
        for label, v in (("kubelite pod, one at a time", single), (f"kubelite pods, burst of {args.burst}", burst),
                         ("ctr run -d, one at a time", ctr_single), (f"ctr run -d, {args.burst} parallel", ctr_burst)):
            print(f"{label:28}{statistics.median(v):9.3f}{pct(v, 99):9.3f}{max(v):10.3f}")
        print(f"ratio kubelite/ctr, single p50: {statistics.median(single) / statistics.median(ctr_single):.2f}x")
        print(f"ratio kubelite/ctr, burst of {args.burst} (all done): {max(burst) / max(ctr_burst):.2f}x")
        await client.pods.delete_collection(ns)
        await asyncio.sleep(3)
    finally:
        await client.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--single", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("containerd"):
        print("needs root and containerd (apt-get install containerd runc containernetworking-plugins)")
        return 2
    from realnode import node_server  # bench/realnode.py

    with node_server() as node:
        asyncio.run(run(args, node.data_dir, node.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
