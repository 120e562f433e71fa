"""Service endpoint latency, as upstream's conformance test measures it (test/e2e/network/service_latency.go).

Starts `kubelite server --simulated-nodes 1` in a temporary data dir, runs a ReplicationController
of one pod, then creates `--services` Services selecting it, `--parallel` at a time (upstream: 200
services, 50 in flight, the first 100 recorded), and times each from its creation to the first
Endpoints object for it with the pod's address, seen through one watch with the official client.
Prints p50/p90/p99 against upstream's thresholds (p50 <= 20 s, p90 <= 50 s) and the ratio.

Usage: python bench/service_latency.py [--services 200] [--parallel 50]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def start(data_dir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kubelite", "server", "--data-dir", data_dir, "--port", str(port),
                             "--simulated-nodes", "1"], stdout=open(os.path.join(data_dir, "server.log"), "ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    kubeconfig = os.path.join(data_dir, "kubeconfig")
    deadline = time.time() + 60
    while time.time() < deadline:
        r = subprocess.run([sys.executable, "-m", "kubelite", "kubeconfig", "--data-dir", data_dir],
                           capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            with open(kubeconfig, "w") as f:
                f.write(r.stdout)
            ok = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "--raw", "/readyz"],
                                capture_output=True, text=True)
            if ok.stdout.strip() == "ok":
                return proc, kubeconfig
        time.sleep(0.2)
    raise RuntimeError("kubelite did not start")


def kubectl(kubeconfig: str, *args: str, input: str | None = None) -> str:
    return subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], input=input, capture_output=True,
                          text=True, check=True).stdout


def measure(kubeconfig: str, n: int, parallel: int) -> list[float]:
    from kubernetes import client, config, watch

    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    ns = "latency"
    kubectl(kubeconfig, "create", "namespace", ns)
    kubectl(kubeconfig, "apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "svc-latency-rc"},
        "spec": {"replicas": 1, "selector": {"name": "svc-latency-rc"}, "template": {
            "metadata": {"labels": {"name": "svc-latency-rc"}},
            "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]}}}}))
    kubectl(kubeconfig, "wait", "-n", ns, "--for=condition=Ready", "pod", "-l", "name=svc-latency-rc",
            "--timeout=60s")
    created: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()
    rv = api.list_namespaced_endpoints(ns).metadata.resource_version

    def watcher() -> None:
        for ev in watch.Watch().stream(api.list_namespaced_endpoints, ns, resource_version=rv, timeout_seconds=120):
            ep = ev["object"]
            if any(s.addresses for s in ep.subsets or []) and ep.metadata.name not in seen:
                seen[ep.metadata.name] = time.perf_counter()
                if len(seen) == n:
                    break
        done.set()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()

    def create(i: int) -> None:
        name = f"latency-svc-{i}"
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"selector": {"name": "svc-latency-rc"}, "ports": [{"port": 80, "targetPort": 80}]}}
        created[name] = time.perf_counter()
        api.create_namespaced_service(ns, body)

    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(create, range(n)))
    done.wait(130)
    return [seen[k] - created[k] for k in created if k in seen]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--parallel", type=int, default=50)
    args = ap.parse_args()
    data_dir = tempfile.mkdtemp(prefix="kubelite-svclat-")
    proc = None
    try:
        proc, kubeconfig = start(data_dir)
        lat = measure(kubeconfig, args.services, args.parallel)
        print(f"service endpoint latency: {len(lat)}/{args.services} services got endpoints, "
              f"{args.parallel} created at a time (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        for label, p, limit in (("p50", 50, 20.0), ("p90", 90, 50.0), ("p99", 99, None)):
            v = pct(lat, p)
            bound = f"upstream threshold {limit:.0f} s, {limit / v:,.0f}x margin" if limit else ""
            print(f"  {label}: {v * 1000:8.1f} ms   {bound}")
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
