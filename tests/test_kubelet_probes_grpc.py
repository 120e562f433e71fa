"""gRPC probes: given a real node and a grpc.health.v1 server run by the test on the host, a
hostNetwork pod (its IP is the node's) probed on that server's port is Ready while the service is
SERVING and not Ready when it answers NOT_SERVING; a liveness probe restarts the container when its
service stops serving or when the port is wrong, and never while it serves. Failure messages are
upstream's prober's."""

from __future__ import annotations

import json
import threading
import time
from concurrent import futures

import grpc
import pytest

from tests.conftest import Cluster
from tests.images import BUSYBOX, node_namespace, real_node
from tests.test_kubelet_pods import cstatus, get_pod, running, wait_pod

pytestmark = [pytest.mark.root, pytest.mark.containerd]

SERVING, NOT_SERVING = 1, 2


class HealthServer:
    """A grpc.health.v1.Health server whose per-service status the test sets (unknown services get
    NOT_FOUND, as grpc's own health servicer answers)."""

    def __init__(self) -> None:
        self.status: dict[str, int] = {"": SERVING}
        self.calls = 0
        self.user_agents: set[str] = set()
        self._lock = threading.Lock()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(self._check, request_deserializer=self._service_of,
                                                      response_serializer=lambda status: bytes([0x08, status]))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("grpc.health.v1.Health", {"Check": handler}),))
        self.port = self.server.add_insecure_port("0.0.0.0:0")
        self.server.start()

    @staticmethod
    def _service_of(data: bytes) -> str:
        return data[2:2 + data[1]].decode() if len(data) >= 2 and data[0] == 0x0A else ""

    def _check(self, service: str, context: grpc.ServicerContext) -> int:
        with self._lock:
            self.calls += 1
            self.user_agents.update(v for k, v in context.invocation_metadata() if k == "user-agent")
            status = self.status.get(service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return status

    def set(self, service: str, status: int) -> None:
        with self._lock:
            self.status[service] = status

    def stop(self) -> None:
        self.server.stop(0)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    with real_node(tmp_path_factory) as c:
        yield c


@pytest.fixture(scope="module")
def health():
    h = HealthServer()
    yield h
    h.stop()


@pytest.fixture
def ns(node: Cluster):
    with node_namespace(node, "grpc-") as name:
        yield name


def host_network_pod(name: str, probes: dict) -> str:
    c = {"name": "main", "image": BUSYBOX, "command": ["sleep", "3600"], **probes}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"hostNetwork": True, "terminationGracePeriodSeconds": 1, "containers": [c]}})


def events_of(node: Cluster, ns: str, name: str) -> str:
    return node.kubectl("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}").stdout


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def test_grpc_readiness_follows_serving_status(node: Cluster, ns: str, health: HealthServer):
    health.set("ready", SERVING)
    probe = {"grpc": {"port": health.port, "service": "ready"}, "periodSeconds": 1, "failureThreshold": 1}
    node.kubectl("apply", "-n", ns, "-f", "-", input=host_network_pod("ready", {"readinessProbe": probe}))
    pod = wait_pod(node, ns, "ready", lambda p: running(p) and ready(p), what="Ready")
    assert pod["status"]["podIP"] == pod["status"]["hostIP"]
    assert "kube-probe/1.32" in " ".join(health.user_agents)

    health.set("ready", NOT_SERVING)
    pod = wait_pod(node, ns, "ready", lambda p: not ready(p), timeout=30, what="un-Ready")
    assert cstatus(pod)["ready"] is False and cstatus(pod)["restartCount"] == 0
    assert 'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")' in events_of(node, ns, "ready")

    health.set("ready", SERVING)
    wait_pod(node, ns, "ready", ready, timeout=30, what="Ready again")


@pytest.mark.conformance("Pod liveness probe, using grpc call, success")
def test_grpc_liveness_serving_never_restarts(node: Cluster, ns: str, health: HealthServer):
    probe = {"grpc": {"port": health.port}, "periodSeconds": 1, "failureThreshold": 1}
    node.kubectl("apply", "-n", ns, "-f", "-", input=host_network_pod("alive", {"livenessProbe": probe}))
    wait_pod(node, ns, "alive", running, what="Running")
    calls = health.calls
    time.sleep(6)
    assert health.calls >= calls + 3  # the probe did run, and passed each time
    assert cstatus(get_pod(node, ns, "alive"))["restartCount"] == 0


def test_grpc_liveness_not_serving_restarts(node: Cluster, ns: str, health: HealthServer):
    health.set("live", SERVING)
    probe = {"grpc": {"port": health.port, "service": "live"}, "periodSeconds": 1, "failureThreshold": 2}
    node.kubectl("apply", "-n", ns, "-f", "-", input=host_network_pod("flip", {"livenessProbe": probe}))
    wait_pod(node, ns, "flip", running, what="Running")
    health.set("live", NOT_SERVING)
    wait_pod(node, ns, "flip", lambda p: cstatus(p)["restartCount"] >= 1, timeout=60, what="restarted")
    health.set("live", SERVING)
    events = events_of(node, ns, "flip")
    assert 'Liveness probe failed: service unhealthy (responded with "NOT_SERVING")' in events
    assert "Container main failed liveness probe, will be restarted" in events


def test_grpc_probe_unknown_service_fails_with_rpc_error(node: Cluster, ns: str, health: HealthServer):
    probe = {"grpc": {"port": health.port, "service": "nosuch"}, "periodSeconds": 1, "failureThreshold": 1}
    node.kubectl("apply", "-n", ns, "-f", "-", input=host_network_pod("unknown", {"readinessProbe": probe}))
    wait_pod(node, ns, "unknown", running, what="Running")
    deadline = time.time() + 30
    want = "Readiness probe failed: error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"
    while want not in events_of(node, ns, "unknown"):
        assert time.time() < deadline, events_of(node, ns, "unknown")
        time.sleep(0.5)
    assert not ready(get_pod(node, ns, "unknown"))


@pytest.mark.conformance("Pod liveness probe, using grpc call, failure")
def test_grpc_liveness_wrong_port_restarts(node: Cluster, ns: str, health: HealthServer):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
    probe = {"grpc": {"port": port}, "periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 1}
    node.kubectl("apply", "-n", ns, "-f", "-", input=host_network_pod("wrongport", {"livenessProbe": probe}))
    wait_pod(node, ns, "wrongport", lambda p: cstatus(p)["restartCount"] >= 1, timeout=60, what="restarted")
    events = events_of(node, ns, "wrongport")
    assert "Liveness probe failed: timeout: failed to connect service" in events
    assert f':{port}" within 1s: context deadline exceeded' in events
