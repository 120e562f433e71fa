"""Controllers benchmark: a Deployment scaled to 1,000 replicas on 100 simulated nodes, then rolled.

Run: python bench/controllers.py [--nodes 100] [--replicas 1000]

Starts a real kubelite (`kubelite up --simulated-nodes N`, simulated pod start-up delays at their
defaults) and drives it with the real kubectl, as a user would:
- `kubectl create deployment` with one replica, then `kubectl scale --replicas=R`: the time until the
  Deployment reports R ready replicas (status.readyReplicas, read by polling `kubectl get`);
- `kubectl set image` on it: the time until the rollout is complete (`kubectl rollout status`).
Prints the figures and the ratio to the issue's target (1,000 replicas Ready within 10 s); asserts
nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_READY_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Kubectl:
    def __init__(self, kubeconfig: str):
        self.kubeconfig = kubeconfig

    def __call__(self, *args: str, input: str | None = None, timeout: float = 600) -> str:
        return subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, *args], check=True, input=input,
                              capture_output=True, text=True, timeout=timeout).stdout

    def status(self, name: str) -> dict:
        return json.loads(self("get", "deployment", name, "-o", "json"))["status"]


@contextlib.contextmanager
def simulated_cluster(prefix: str, nodes: int) -> Iterator[str]:
    """`kubelite up --simulated-nodes N` in a temporary data dir; yields the kubeconfig, then tears down."""
    data = tempfile.mkdtemp(prefix=prefix)
    kc = os.path.join(data, "kubeconfig")
    env = dict(os.environ, PYTHONPATH=REPO)
    try:
        subprocess.run([sys.executable, "-m", "kubelite", "up", "--data-dir", data, "--port", str(free_port()),
                        "--kubeconfig", kc, "--simulated-nodes", str(nodes)], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        yield kc
    finally:
        subprocess.run([sys.executable, "-m", "kubelite", "down", "--data-dir", data], env=env,
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(data, ignore_errors=True)


def wait_ready(k: Kubectl, name: str, replicas: int, timeout: float = 600) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        s = k.status(name)
        if s.get("readyReplicas", 0) >= replicas and s.get("updatedReplicas", 0) >= replicas:
            return time.perf_counter() - t0
        time.sleep(0.1)
    raise TimeoutError(f"{name} not ready after {timeout}s: {k.status(name)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=1000)
    args = ap.parse_args()
    with simulated_cluster("kubelite-bench-ctl-", args.nodes) as kc:
        k = Kubectl(kc)
        deadline = time.time() + 60
        while len(k("get", "nodes", "--no-headers").splitlines()) < args.nodes and time.time() < deadline:
            time.sleep(0.2)
        k("create", "deployment", "web", "--image=localhost/web:1", "--replicas=1")
        wait_ready(k, "web", 1)

        t0 = time.perf_counter()
        k("scale", "deployment", "web", f"--replicas={args.replicas}")
        wait_ready(k, "web", args.replicas)
        scale_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        k("set", "image", "deployment/web", "web=localhost/web:2")
        k("rollout", "status", "deployment/web", "--timeout=600s")
        roll_s = time.perf_counter() - t0

        print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
        print(f"scale 1 -> {args.replicas} replicas Ready on {args.nodes} simulated nodes: {scale_s:6.2f} s   "
              f"(target < {TARGET_READY_S:g} s: {TARGET_READY_S / scale_s:.2f}x)")
        print(f"rolling update of {args.replicas} replicas (25% surge / 25% unavailable): {roll_s:6.2f} s")


if __name__ == "__main__":
    main()
