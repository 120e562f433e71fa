"""Controllers benchmark: a Deployment scaled to 1,000 replicas on 100 simulated nodes, then rolled.

Run: python bench/controllers.py [--nodes 100] [--replicas 1000]

Starts a real kubelite (`kubelite up --simulated-nodes N`, simulated pod start-up delays at their
defaults) and drives it with the real kubectl, as a user would:
- `kubectl create deployment` with one replica, then `kubectl scale --replicas=R`: the time until the
  Deployment reports R ready replicas (status.readyReplicas, watched by `kubectl wait`);
- `kubectl set image` on it: the time until the rollout is complete (`kubectl rollout status`).
Prints the figures (wall time, and the server process's CPU seconds, steadier on a loaded machine) and the
ratio to the issue's target (1,000 replicas Ready within 10 s); asserts
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


def server_pid(kubeconfig: str) -> int:
    """The pid of the kubelite server of a `simulated_cluster` (its data dir holds the kubeconfig)."""
    with open(os.path.join(os.path.dirname(kubeconfig), "kubelite.pid")) as f:
        return int(f.read().strip())


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far: on a loaded machine a steadier
    figure than wall time."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(k: Kubectl, name: str, replicas: int, timeout: float = 600) -> float:
    """Seconds until the Deployment reports `replicas` ready and updated replicas. `kubectl wait` watches
    (one request) rather than polling `kubectl get`, whose every call (a TLS handshake and a request)
    would add server CPU in proportion to the wait and blur the CPU figure."""
    t0 = time.perf_counter()
    for field in ("readyReplicas", "updatedReplicas"):
        left = max(1, int(timeout - (time.perf_counter() - t0)))
        try:
            k("wait", f"deployment/{name}", f"--for=jsonpath={{.status.{field}}}={replicas}",
              f"--timeout={left}s", timeout=left + 30)
        except subprocess.CalledProcessError as e:
            raise TimeoutError(f"{name} not ready after {timeout}s: {k.status(name)}") from e
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=1000)
    args = ap.parse_args()
    with simulated_cluster("kubelite-bench-ctl-", args.nodes) as kc:
        k = Kubectl(kc)
        pid = server_pid(kc)
        deadline = time.time() + 60
        while len(k("get", "nodes", "--no-headers").splitlines()) < args.nodes and time.time() < deadline:
            time.sleep(0.2)
        k("create", "deployment", "web", "--image=localhost/web:1", "--replicas=1")
        wait_ready(k, "web", 1)

        t0, c0 = time.perf_counter(), cpu_seconds(pid)
        k("scale", "deployment", "web", f"--replicas={args.replicas}")
        wait_ready(k, "web", args.replicas)
        scale_s, scale_cpu = time.perf_counter() - t0, cpu_seconds(pid) - c0

        t0, c0 = time.perf_counter(), cpu_seconds(pid)
        k("set", "image", "deployment/web", "web=localhost/web:2")
        k("rollout", "status", "deployment/web", "--timeout=600s")
        roll_s, roll_cpu = time.perf_counter() - t0, cpu_seconds(pid) - c0

        print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
        print(f"scale 1 -> {args.replicas} replicas Ready on {args.nodes} simulated nodes: {scale_s:6.2f} s   "
              f"(target < {TARGET_READY_S:g} s: {TARGET_READY_S / scale_s:.2f}x); server CPU {scale_cpu:6.2f} s")
        print(f"rolling update of {args.replicas} replicas (25% surge / 25% unavailable): {roll_s:6.2f} s; "
              f"server CPU {roll_cpu:6.2f} s")


if __name__ == "__main__":
    main()
