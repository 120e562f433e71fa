"""Pod startup latency on a real node vs `ctr run` of the same number of containers.

Starts `kubelite server --kubelet` in a temporary data dir (root, containerd, runc, CNI plugins),
imports a local busybox image, then measures create -> Running (container started, IP assigned)
for 1 pod at a time (repeated) and for a burst of N pods created at once; then the same counts
of `ctr run -d` on the node's containerd (no CNI network, no API: the floor). Prints p50/p99 and
the ratio, and the RSS of the kubelite process (API server, controllers and kubelet in one) and of
its containerd with the burst's pods running.

With --vs-swarm, the same scenarios on kubelite (a Deployment) and on Docker Engine in swarm mode (a
service), same busybox image and command, one after the other: 20 replicas to Running, scaling
20 -> 100, creating 100, and a rolling update of 100 replicas 10 at a time (kubelite: RollingUpdate
with maxSurge 0 and maxUnavailable 10; swarm: --update-parallelism 10 --update-delay 0s). Between
scenarios each side waits until its runtime holds no container of the last one. Prints both times and
the ratio. Usage: sudo python bench/pods.py [--burst 50] [--single 10] [--vs-swarm]
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
# exits at once on SIGTERM on both sides (busybox sh as PID 1 would otherwise ignore it)
WORKLOAD = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
SCENARIOS = ("20 replicas to Running", "scale 20 -> 100", "create 100", "rolling update of 100, 10 at a time")


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def containerd_pid(data_dir: str) -> int:
    """The private containerd of the node under `data_dir` (by its --config argument)."""
    config = os.path.join(data_dir, "containerd", "config.toml")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if config.encode() in f.read():
                    return int(pid)
        except OSError:
            continue
    return 0


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


async def runtime_idle(data_dir: str, timeout: float = 300) -> None:
    """Wait until the node's runtime holds no sandbox: deleted pods leave the API before the kubelet
    has removed their sandboxes, and the next scenario must not pay for that clean-up (Swarm's side
    waits for `docker ps -a` to be empty likewise)."""
    from kubelite.runtime.cri import RuntimeClient
    from kubelite.runtime.cri.containerd import ContainerdPaths

    rt = RuntimeClient("unix://" + ContainerdPaths(os.path.join(data_dir, "containerd")).socket)
    try:
        deadline = time.perf_counter() + timeout
        while await rt.list_pod_sandbox() and time.perf_counter() < deadline:
            await asyncio.sleep(0.25)
    finally:
        await rt.close()


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


async def run(args: argparse.Namespace, data_dir: str, node_pid: int) -> None:
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
        rss = (rss_kib(node_pid), rss_kib(containerd_pid(data_dir)))
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
        print(f"RSS with {args.burst} pods running: kubelite process (API server, controllers, kubelet) "
              f"{rss[0] / 1024:.0f} MiB, its containerd {rss[1] / 1024:.0f} MiB")
        await client.pods.delete_collection(ns)
        deadline = time.perf_counter() + 180  # the node idle again before anything else is measured
        while (await client.pods.list(ns))["items"] and time.perf_counter() < deadline:
            await asyncio.sleep(0.5)
        await runtime_idle(data_dir)
    finally:
        await client.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--single", type=int, default=10)
    ap.add_argument("--vs-swarm", action="store_true",
                    help="also run the Swarm scenarios on kubelite and on Docker Engine (apt-get install docker.io)")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("containerd"):
        print("needs root and containerd (apt-get install containerd runc containernetworking-plugins)")
        return 2
    from realnode import node_server  # bench/realnode.py

    with node_server() as node:
        asyncio.run(run(args, node.data_dir, node.proc.pid))
        if args.vs_swarm:
            ours = asyncio.run(kubelite_scenarios(node.data_dir))
    if args.vs_swarm:
        theirs = swarm_scenarios()
        print("\nkubelite (Deployment, RollingUpdate maxSurge 0 / maxUnavailable 10) vs Docker swarm (service, "
              "--update-parallelism 10 --update-delay 0s), seconds:")
        print(f"{'':38}{'kubelite':>10}{'swarm':>10}{'swarm/kubelite':>16}")
        for name in SCENARIOS:
            print(f"{name:38}{ours[name]:10.2f}{theirs[name]:10.2f}{theirs[name] / ours[name]:15.2f}x")
        print(f"host load average (1 min) after each side: kubelite {ours['load']:.1f}, swarm {theirs['load']:.1f} "
              f"on {os.cpu_count()} CPUs: other work on the host skews the ratio")
    return 0


class PodTracker:
    """The Running pods of one namespace, kept from a watch (what `Running` means for Swarm's tasks)."""

    def __init__(self, client, ns: str):
        self.client, self.ns = client, ns
        self.running: set[str] = set()
        self.present: set[str] = set()
        self._watch = client.pods.watch(ns)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                async for etype, pod in self._watch:
                    name = (pod.get("metadata") or {}).get("name")
                    if etype in ("BOOKMARK", "ERROR") or not name:
                        continue
                    self._observe(etype, name, pod)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # an ERROR event (410 Expired, a slow watcher dropped) raises
                print(f"  (pod watch ended: {e}; relisting)", file=sys.stderr)
            # the watch ended (timeout, expiry): resync from a list, then watch on from its version
            await self._watch.aclose()
            listing = await self.client.pods.list(self.ns)
            self.present.clear()
            self.running.clear()
            for pod in listing.get("items") or []:
                self._observe("ADDED", pod["metadata"]["name"], pod)
            rv = (listing.get("metadata") or {}).get("resourceVersion", "")
            self._watch = self.client.pods.watch(self.ns, resource_version=rv)

    def _observe(self, etype: str, name: str, pod: dict) -> None:
        st = pod.get("status") or {}
        css = st.get("containerStatuses") or []
        if etype == "DELETED":
            self.present.discard(name)
            self.running.discard(name)
            return
        self.present.add(name)
        if st.get("phase") == "Running" and css and "running" in css[0].get("state", {}) \
                and not pod["metadata"].get("deletionTimestamp"):
            self.running.add(name)
        else:
            self.running.discard(name)

    async def wait(self, pred, timeout: float = 600) -> None:
        deadline = time.perf_counter() + timeout
        while not pred():
            if self._task.done():  # the tracker itself failed: say so rather than time out on stale counts
                raise RuntimeError(f"pod tracker stopped: {self._task.exception()!r}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{len(self.running)} running, {len(self.present)} present")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._watch.aclose()


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 10}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 5, "containers": [
                                      {"name": "main", "image": BUSYBOX, "command": WORKLOAD}]}}}}


async def kubelite_scenarios(data_dir: str) -> dict[str, float]:
    from kubelite.client import Client

    client = Client.from_kubeconfig(os.path.join(data_dir, "kubeconfig"))
    ns = "swarmcmp"
    out: dict[str, float] = {}
    try:
        await client.namespaces.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        pods = PodTracker(client, ns)
        t0 = time.perf_counter()
        await client.deployments.create(deployment("bench", 20), ns)
        await pods.wait(lambda: len(pods.running) >= 20)
        out[SCENARIOS[0]] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await client.deployments.patch("bench", {"spec": {"replicas": 100}}, namespace=ns)
        await pods.wait(lambda: len(pods.running) >= 100)
        out[SCENARIOS[1]] = time.perf_counter() - t0
        await client.deployments.delete("bench", ns)
        await pods.wait(lambda: not pods.present)
        await runtime_idle(data_dir)
        t0 = time.perf_counter()
        await client.deployments.create(deployment("bench2", 100), ns)
        await pods.wait(lambda: len(pods.running) >= 100)
        out[SCENARIOS[2]] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await client.deployments.patch("bench2", {"spec": {"template": {"spec": {"containers": [
            {"name": "main", "env": [{"name": "ROLLED", "value": "1"}]}]}}}}, patch_type="strategic",
            namespace=ns)

        async def rolled() -> bool:
            d = await client.deployments.get("bench2", ns)
            st = d.get("status") or {}
            return (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
                    and st.get("updatedReplicas") == st.get("availableReplicas") == st.get("replicas") == 100)

        while not await rolled():
            await asyncio.sleep(0.1)
        await pods.wait(lambda: len(pods.running) >= 100 and len(pods.present) == 100)
        out[SCENARIOS[3]] = time.perf_counter() - t0
        await client.deployments.delete("bench2", ns)
        await pods.wait(lambda: not pods.present)
        await pods.close()
        out["load"] = os.getloadavg()[0]
    finally:
        await client.close()
    return out


def swarm_scenarios() -> dict[str, float]:
    import tempfile

    from swarm import swarm  # bench/swarm.py

    from kubelite.runtime import images

    out: dict[str, float] = {}
    with tempfile.NamedTemporaryFile(suffix=".tar") as rootfs:
        rootfs.write(images.busybox_layer())
        rootfs.flush()
        with swarm(rootfs.name) as s:
            def create(name: str, replicas: int) -> None:
                s.docker("service", "create", "--detach", "--no-resolve-image", "--init", "--name", name,
                         "--replicas", str(replicas), "--update-parallelism", "10", "--update-delay", "0s",
                         "--stop-grace-period", "5s", BUSYBOX, *WORKLOAD)

            def gone() -> None:
                while s.docker("ps", "-aq", check=False).strip():
                    time.sleep(0.25)

            t0 = time.perf_counter()
            create("bench", 20)
            s.wait_running("bench", 20)
            out[SCENARIOS[0]] = time.perf_counter() - t0
            t0 = time.perf_counter()
            s.docker("service", "scale", "--detach", "bench=100")
            s.wait_running("bench", 100)
            out[SCENARIOS[1]] = time.perf_counter() - t0
            s.docker("service", "rm", "bench")
            gone()
            t0 = time.perf_counter()
            create("bench2", 100)
            s.wait_running("bench2", 100)
            out[SCENARIOS[2]] = time.perf_counter() - t0
            t0 = time.perf_counter()
            s.docker("service", "update", "--detach", "--env-add", "ROLLED=1", "bench2")
            s.wait_updated("bench2")
            s.wait_running("bench2", 100)
            out[SCENARIOS[3]] = time.perf_counter() - t0
            out["load"] = os.getloadavg()[0]
            print(f"dockerd RSS with 100 tasks: {s.rss_kib() / 1024:.0f} MiB")
            s.docker("service", "rm", "bench2")
            gone()
    return out


if __name__ == "__main__":
    sys.exit(main())
