"""Fixtures that start a real kubelite and drive it with the real kubectl and the official client.

`cluster` is one server for the whole session (tests isolate themselves in their own namespaces);
`fresh_cluster` starts a private one for tests that restart or kill it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    data_dir: str
    port: int
    kubeconfig: str
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> None:
        log = open(os.path.join(self.data_dir, "server.log"), "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubelite", "server", "--data-dir", self.data_dir, "--port", str(self.port),
             *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kubelite exited with {self.proc.returncode}:\n{self.log_tail()}")
            if os.path.exists(os.path.join(self.data_dir, "tls", "ca.crt")):
                r = subprocess.run(
                    [sys.executable, "-m", "kubelite", "kubeconfig", "--data-dir", self.data_dir],
                    capture_output=True, text=True)
                if r.returncode == 0 and r.stdout.strip():
                    with open(self.kubeconfig, "w") as f:
                        f.write(r.stdout)
                    ok = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, "get", "--raw", "/readyz"],
                                        capture_output=True, text=True)
                    if ok.returncode == 0 and ok.stdout.strip() == "ok":
                        return
            time.sleep(0.1)
        raise RuntimeError(f"kubelite not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        try:
            with open(os.path.join(self.data_dir, "server.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess:
        # a cache of the cluster's own: a later cluster may reuse this port with other discovery data
        r = subprocess.run([KUBECTL, "--kubeconfig", self.kubeconfig, "--cache-dir",
                            os.path.join(self.data_dir, "kubectl-cache"), *args],
                           input=input, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def api_client(self):
        from kubernetes import config

        return config.new_client_from_config(config_file=self.kubeconfig)


def _make_cluster(tmp_path_factory: pytest.TempPathFactory, extra_args: list[str] | None = None) -> Cluster:
    d = str(tmp_path_factory.mktemp("kubelite"))
    return Cluster(d, free_port(), os.path.join(d, "kubeconfig"), extra_args or [])


def _running_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = _make_cluster(tmp_path_factory)
    c.start()
    yield c
    c.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from _running_cluster(tmp_path_factory)


@pytest.fixture(scope="module")
def module_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A cluster of the test module's own: for tests whose cluster-wide objects (webhooks, CRDs,
    storage classes) must not reach other modules."""
    yield from _running_cluster(tmp_path_factory)


@pytest.fixture
def fresh_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from _running_cluster(tmp_path_factory)


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    """A namespace of the test's own in the shared cluster."""
    name = "t-" + uuid.uuid4().hex[:8]
    cluster.kubectl("create", "-f", "-", input=f'{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}')
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pytest_configure(config: pytest.Config) -> None:
    # conformance tags are counted by CI; make sure the marker is known even without pyproject
    config.addinivalue_line("markers", "conformance(name): checks the named upstream conformance behaviour")


TEST_NODE = "endpoints-test-node"


@pytest.fixture
def core(cluster):
    """CoreV1Api on the session cluster, with TEST_TEST_NODE registered and heartbeating (pods placed on it by
    hand keep existing and stay ready)."""
    import threading

    from kubernetes import client

    api = cluster.api_client()
    v1 = client.CoreV1Api(api)
    # the pods' node must exist, or the pod garbage collector reaps them (pods of deleted nodes), and it
    # must heartbeat, or node lifecycle marks its pods not ready; it is cordoned so that the scheduler
    # places no other test's pods on it
    try:
        v1.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {"name": TEST_NODE},
                        "spec": {"unschedulable": True}})
    except client.ApiException as e:
        if e.status != 409:
            raise
    coord = client.CoordinationV1Api(api)
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.is_set():
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
            with_seconds = now[:19] + "Z"
            try:
                v1.patch_node_status(TEST_NODE, {"status": {"conditions": [
                    {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test node",
                     "lastHeartbeatTime": with_seconds, "lastTransitionTime": with_seconds}]}})
                lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": TEST_NODE, "namespace": "kube-node-lease"},
                         "spec": {"holderIdentity": TEST_NODE, "leaseDurationSeconds": 40, "renewTime": now}}
                try:
                    coord.replace_namespaced_lease(TEST_NODE, "kube-node-lease", lease)
                except client.ApiException as e:
                    if e.status != 404:
                        raise
                    coord.create_namespaced_lease("kube-node-lease", lease)
            except Exception:  # the cluster may be going away at the end of the session
                pass
            stop.wait(5)

    beat = threading.Thread(target=heartbeat, daemon=True)
    beat.start()
    yield v1
    stop.set()
    beat.join(10)
    api.close()
