"""Metrics benchmark: what one metrics-server scrape of simulated nodes costs, in CPU milliseconds.

Run: python bench/metrics.py [--nodes 100] [--pods 10] [--scrapes 20] [--cluster]

In process (always): N simulated nodes with P running pods each (two containers per pod, shaped as the
simulator writes their status). One scrape is what kubelite.metrics.server does every --metric-resolution:
per node, the simulated kubelet's stats (simulated_stats), its /metrics/resource text (render), reading that
text back (parse) and storing it (MetricsStorage: rates from two samples); then serving one PodMetrics list
of every pod and one NodeMetrics list (what `kubectl top pod -A` / `kubectl top node` cost the server).
Prints process CPU ms per scrape, per node and per pod, and the share of one core it takes at the default
15 s resolution and at 1 s.

With --cluster: a real `kubelite up --simulated-nodes N --metric-resolution 1s` running N x P pods, whose
server process CPU is sampled over 20 s, against the same cluster at --metric-resolution 1h (no scrapes):
the difference per second is the scrape cost as deployed. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from types import SimpleNamespace

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from kubelite.api.meta import now_rfc3339  # noqa: E402
from kubelite.metrics import resource_text  # noqa: E402
from kubelite.metrics.server import MetricsServer  # noqa: E402
from kubelite.runtime.simulated_stats import SimulatedNodeStats  # noqa: E402


def _pod(node: str, i: int, started: str) -> dict:
    containers = [{"name": n, "image": "nginx", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
                  for n in ("app", "sidecar")]
    return {"metadata": {"name": f"{node}-pod-{i}", "namespace": "bench", "labels": {"app": "bench"}},
            "spec": {"nodeName": node, "containers": containers},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": c["name"], "ready": True, "state": {"running": {"startedAt": started}}} for c in containers]}}


def in_process(nodes: int, pods: int, scrapes: int) -> float:
    started = now_rfc3339(time.time() - 60)
    node_objs = [{"metadata": {"name": f"sim-node-{n}", "labels": {"kubelite.io/simulated": "true"}}}
                 for n in range(nodes)]
    by_node = {n["metadata"]["name"]: [_pod(n["metadata"]["name"], i, started) for i in range(pods)]
               for n in node_objs}
    # never started: no informers run, only its storage and object building are used
    server = MetricsServer(client=SimpleNamespace(resource=lambda *_: None), registry=None, resolution=1.0)
    sims = {name: SimulatedNodeStats(name) for name in by_node}
    text_bytes = 0

    def scrape() -> None:
        nonlocal text_bytes
        text_bytes = 0
        for name, pod_list in by_node.items():
            now = time.time()
            text = resource_text.render(sims[name].collect(pod_list, now))
            text_bytes += len(text)
            server.storage.store(name, resource_text.parse(text, now))

    scrape()  # the first sample; rates need two
    time.sleep(0.05)
    cpu0 = time.process_time()
    for _ in range(scrapes):
        scrape()
    per_scrape = (time.process_time() - cpu0) / scrapes * 1000

    all_pods = [p for ps in by_node.values() for p in ps]
    cpu0 = time.process_time()
    for _ in range(scrapes):
        items = [o for o in (server.pod_metrics(p) for p in all_pods) if o is not None]
        nitems = [o for o in (server.node_metrics(n) for n in node_objs) if o is not None]
    per_list = (time.process_time() - cpu0) / scrapes * 1000
    assert len(items) == nodes * pods and len(nitems) == nodes, (len(items), len(nitems))

    total = nodes * pods
    print(f"in process: {nodes} simulated nodes x {pods} pods (2 containers each), {scrapes} scrapes")
    print(f"  scrape (stats + /metrics/resource text {text_bytes / nodes / 1024:.1f} KiB per node + parse + store): "
          f"{per_scrape:.1f} ms CPU per scrape = {per_scrape / nodes:.3f} ms per node = "
          f"{per_scrape / total * 1000:.0f} us per pod")
    print(f"  serving (what the API backends' list does): PodMetrics of all {total} pods + NodeMetrics of {nodes} nodes: {per_list:.1f} ms CPU")
    print(f"  share of one core: {per_scrape / 15000 * 100:.2f}% at the default 15 s resolution, "
          f"{per_scrape / 1000 * 100:.1f}% at 1 s")
    return per_scrape


def _server_cpu(data: str) -> float:
    with open(os.path.join(data, "kubelite.pid")) as f:
        pid = int(f.read().strip())
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def on_cluster(nodes: int, pods: int, in_process_ms: float, window: float = 20.0) -> None:
    import contextlib
    import shutil
    import socket
    import tempfile

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    results = {}
    for resolution in ("1h", "1s"):
        data = tempfile.mkdtemp(prefix="kubelite-bench-metrics-")
        kc = os.path.join(data, "kubeconfig")
        env = dict(os.environ, PYTHONPATH=REPO)
        try:
            subprocess.run([sys.executable, "-m", "kubelite", "up", "--data-dir", data, "--port", str(free_port()),
                            "--kubeconfig", kc, "--simulated-nodes", str(nodes), "--metric-resolution", resolution],
                           check=True, env=env, stdout=subprocess.DEVNULL)

            def kubectl(*args: str, kc: str = kc) -> str:
                return subprocess.run(["kubectl", "--kubeconfig", kc, *args], check=True, capture_output=True,
                                      text=True, timeout=900).stdout

            kubectl("create", "deployment", "bench", "--image=nginx", f"--replicas={nodes * pods}")
            kubectl("rollout", "status", "deployment/bench", "--timeout=900s")
            time.sleep(20)  # let the roll-out's work (pod status writes, endpoints) settle
            cpu0, t0 = _server_cpu(data), time.time()
            time.sleep(window)
            results[resolution] = (_server_cpu(data) - cpu0) / (time.time() - t0)
            if resolution == "1s":
                top = kubectl("top", "pod", "--no-headers")
                print(f"  kubectl top pod: {len(top.splitlines())} pods with metrics")
        finally:
            with contextlib.suppress(Exception):
                subprocess.run([sys.executable, "-m", "kubelite", "down", "--data-dir", data], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
            shutil.rmtree(data, ignore_errors=True)
    extra = (results["1s"] - results["1h"]) * 1000
    print(f"on a cluster: {nodes} simulated nodes, {nodes * pods} pods; server CPU {results['1h'] * 1000:.0f} ms/s "
          f"without scrapes, {results['1s'] * 1000:.0f} ms/s scraping every 1 s: {extra:.0f} ms CPU per scrape, "
          f"{extra / in_process_ms:.2f}x the in-process figure (one container per pod here, two there)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--pods", type=int, default=10)
    p.add_argument("--scrapes", type=int, default=20)
    p.add_argument("--cluster", action="store_true", help="also measure on a running kubelite")
    args = p.parse_args()
    per_scrape = in_process(args.nodes, args.pods, args.scrapes)
    if args.cluster:
        on_cluster(args.nodes, args.pods, per_scrape)


if __name__ == "__main__":
    main()
