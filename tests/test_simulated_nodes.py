"""Simulated nodes, end to end: given `kubelite server --simulated-nodes 3`, when a user looks at nodes and
runs pods with kubectl, then nodes are Ready with upstream's columns and heartbeats, pods go through
ContainerCreating to Running with IPs, Job pods complete, bad images get stuck pulling, deletions finish,
and `kubelite nodes add|kill|remove` changes the running cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import Cluster, _make_cluster
from tests.test_scheduler import get_pod, ready_nodes, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = _make_cluster(tmp_path_factory, ["--simulated-nodes", "3"])
    old = os.environ.get("KUBELITE_NODE_MONITOR_GRACE_PERIOD")
    os.environ["KUBELITE_NODE_MONITOR_GRACE_PERIOD"] = "8"  # killed nodes go NotReady quickly
    try:
        c.start()
    finally:
        if old is None:
            os.environ.pop("KUBELITE_NODE_MONITOR_GRACE_PERIOD", None)
        else:
            os.environ["KUBELITE_NODE_MONITOR_GRACE_PERIOD"] = old
    wait_for(lambda: len(ready_nodes(c)) >= 3, 30, "3 simulated nodes Ready")
    yield c
    c.stop()


@pytest.fixture
def ns(sim: Cluster) -> Iterator[str]:
    name = "n-" + uuid.uuid4().hex[:8]
    sim.kubectl("create", "namespace", name)
    yield name
    sim.kubectl("delete", "namespace", name, "--wait=false", check=False)


def kubelite_nodes(sim: Cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite", "nodes", "--kubeconfig", sim.kubeconfig, *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def pod_row(sim: Cluster, ns: str, name: str) -> list[str]:
    out = sim.kubectl("get", "pod", name, "-n", ns, check=False).stdout.splitlines()
    return out[1].split() if len(out) > 1 else []


def test_describe_node_shows_kubelet_and_controller_events(sim: Cluster) -> None:
    def events() -> list[tuple[str, str]]:
        text = sim.kubectl("describe", "node", "sim-node-1").stdout.split("\nEvents:", 1)[1]
        return [tuple(line.split(None, 4)[1:5:3]) for line in text.splitlines()[3:] if line.strip()]

    want = [("Starting", "Starting kubelet."),
            ("NodeHasSufficientMemory", "Node sim-node-1 status is now: NodeHasSufficientMemory"),
            ("NodeReady", "Node sim-node-1 status is now: NodeReady"),
            ("RegisteredNode", "Node sim-node-1 event: Registered Node sim-node-1 in Controller")]
    wait_for(lambda: all(w in events() for w in want), 20, "node events in describe")


def test_get_nodes_shows_ready_simulated_nodes(sim: Cluster) -> None:
    out = sim.kubectl("get", "nodes", "-o", "wide").stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
                              "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    rows = {r.split()[0]: r.split() for r in out[1:]}
    for name in ("sim-node-0", "sim-node-1", "sim-node-2"):
        row = rows[name]
        assert row[1:3] == ["Ready", "<none>"] and row[4].startswith("v1.32.")
        assert row[-1].startswith("containerd://")
    node = json.loads(sim.kubectl("get", "node", "sim-node-0", "-o", "json").stdout)
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "sim-node-0" and labels["kubernetes.io/os"] == "linux"
    assert labels["kubelite.io/simulated"] == "true"
    assert node["status"]["capacity"]["cpu"] == "32" and node["status"]["capacity"]["pods"] == "110"
    assert node["spec"]["podCIDR"].endswith("/24")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "KubeletReady" and ready["message"] == "kubelet is posting ready status"
    assert {c["type"] for c in node["status"]["conditions"]} == {"Ready", "MemoryPressure", "DiskPressure",
                                                                  "PIDPressure"}
    lease = json.loads(sim.kubectl("get", "lease", "sim-node-0", "-n", "kube-node-lease", "-o", "json").stdout)
    assert lease["spec"]["holderIdentity"] == "sim-node-0" and lease["spec"]["leaseDurationSeconds"] == 40
    first = lease["spec"]["renewTime"]
    wait_for(lambda: json.loads(sim.kubectl("get", "lease", "sim-node-0", "-n", "kube-node-lease", "-o", "json")
                                .stdout)["spec"]["renewTime"] != first, 15, "lease renewed")


@pytest.mark.conformance("Conformance tests minimum number of nodes.")
def test_at_least_two_untainted_schedulable_nodes(sim: Cluster, ns: str) -> None:
    nodes = json.loads(sim.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    untainted = [n["metadata"]["name"] for n in nodes
                 if not n["spec"].get("unschedulable") and not n["spec"].get("taints")
                 and any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])]
    assert len(untainted) >= 2, untainted
    # and pods do land on two of them: a required anti-affinity spreads two replicas apart
    sim.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "spread"}}, "template": {
            "metadata": {"labels": {"app": "spread"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app": "spread"}},
                    "topologyKey": "kubernetes.io/hostname"}]}}}}}}))

    def placed() -> set[str]:
        pods = json.loads(sim.kubectl("get", "pods", "-n", ns, "-l", "app=spread", "-o", "json").stdout)["items"]
        return {p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName")}

    wait_for(lambda: len(placed()) == 2, 30, "two replicas on two nodes")
    assert placed() <= set(untainted)


def kubelet_events(sim: Cluster, ns: str, pod: str) -> list[tuple[str, str, str]]:
    """(type, reason, message) of the kubelet's events about `pod`, oldest first."""
    out = sim.kubectl("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={pod},source=kubelet",
                      "-o", "json").stdout
    items = sorted(json.loads(out)["items"], key=lambda e: (e.get("firstTimestamp") or "", e["metadata"]["name"]))
    return [(e["type"], e["reason"], e["message"]) for e in items]


@pytest.mark.conformance("Pods, assigned hostip")
def test_pod_lifecycle_on_a_simulated_node(sim: Cluster, ns: str) -> None:
    sim.kubectl("run", "web", "-n", ns, "--image=nginx")
    wait_for(lambda: pod_row(sim, ns, "web")[1:3] == ["1/1", "Running"], 15, "web Running 1/1")
    p = get_pod(sim, ns, "web")
    st = p["status"]
    node = json.loads(sim.kubectl("get", "node", p["spec"]["nodeName"], "-o", "json").stdout)
    assert st["hostIP"] == next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert st["podIP"].rsplit(".", 1)[0] == node["spec"]["podCIDR"].rsplit(".", 1)[0]
    cs = st["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
    assert cs["containerID"].startswith("containerd://") and cs["image"] == "docker.io/library/nginx:latest"
    assert [c["type"] for c in st["conditions"]] == ["PodReadyToStartContainers", "Initialized", "Ready",
                                                     "ContainersReady", "PodScheduled"]
    assert all(c["status"] == "True" for c in st["conditions"]) and st["startTime"]
    # the kubelet's events, as `kubectl describe pod` lists them: pulled (or already present), created, started
    wait_for(lambda: len(kubelet_events(sim, ns, "web")) >= 3, 15, "kubelet events for web")
    events = {(t, r): m for t, r, m in kubelet_events(sim, ns, "web")}
    pulled = events[("Normal", "Pulled")]
    assert pulled.startswith('Successfully pulled image "nginx" in ') or \
        pulled == 'Container image "nginx" already present on machine', pulled
    assert events[("Normal", "Created")] == "Created container: web"
    assert events[("Normal", "Started")] == "Started container web"
    assert "Started container web" in sim.kubectl("describe", "pod", "web", "-n", ns).stdout


def test_readiness_probe_delays_ready(sim: Cluster, ns: str) -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "slow"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "readinessProbe": {
                "httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": 3}}]}}
    sim.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body))
    wait_for(lambda: pod_row(sim, ns, "slow")[1:3] == ["0/1", "Running"], 15, "slow Running 0/1")
    wait_for(lambda: pod_row(sim, ns, "slow")[1:3] == ["1/1", "Running"], 15, "slow Ready")


def test_job_pod_completes(sim: Cluster, ns: str) -> None:
    sim.kubectl("create", "job", "hello", "-n", ns, "--image=alpine", "--", "sh", "-c", "echo hello; sleep 1")
    wait_for(lambda: "Complete" in sim.kubectl("get", "job", "hello", "-n", ns).stdout, 30, "job Complete")
    pods = json.loads(sim.kubectl("get", "pods", "-n", ns, "-l", "job-name=hello", "-o", "json").stdout)["items"]
    assert pods[0]["status"]["phase"] == "Succeeded"
    term = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    assert pod_row(sim, ns, pods[0]["metadata"]["name"])[2] == "Completed"


def test_failing_command_fails_the_pod(sim: Cluster, ns: str) -> None:
    sim.kubectl("run", "oops", "-n", ns, "--image=busybox", "--restart=Never", "--", "sh", "-c", "exit 3")
    wait_for(lambda: get_pod(sim, ns, "oops")["status"].get("phase") == "Failed", 15, "oops Failed")
    term = get_pod(sim, ns, "oops")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error"
    assert pod_row(sim, ns, "oops")[2] == "Error"


def test_unpullable_image_gets_stuck(sim: Cluster, ns: str) -> None:
    sim.kubectl("run", "bad", "-n", ns, "--image=localhost/does-not-exist:0")
    wait_for(lambda: pod_row(sim, ns, "bad")[2:3] == ["ErrImagePull"], 15, "ErrImagePull")
    wait_for(lambda: pod_row(sim, ns, "bad")[2:3] == ["ImagePullBackOff"], 15, "ImagePullBackOff")
    assert get_pod(sim, ns, "bad")["status"]["phase"] == "Pending"
    image = "localhost/does-not-exist:0"
    want = [("Normal", "Pulling", f'Pulling image "{image}"'), ("Warning", "Failed", "Error: ErrImagePull"),
            ("Normal", "BackOff", f'Back-off pulling image "{image}"'), ("Warning", "Failed", "Error: ImagePullBackOff")]
    wait_for(lambda: all(w in kubelet_events(sim, ns, "bad") for w in want), 15, "image pull events")
    assert any(t == "Warning" and r == "Failed" and m.startswith(f'Failed to pull image "{image}": ')
               for t, r, m in kubelet_events(sim, ns, "bad"))


def test_bad_image_rollout_gets_stuck(sim: Cluster, ns: str) -> None:
    sim.kubectl("create", "deployment", "worker", "-n", ns, "--image=dockercoins/worker:v0.2", "--replicas=4")
    sim.kubectl("rollout", "status", "deploy/worker", "-n", ns, "--timeout=60s")
    sim.kubectl("set", "image", "deploy/worker", "-n", ns, "worker=dockercoins/worker:v0.3")

    def stuck() -> bool:
        out = sim.kubectl("get", "pods", "-n", ns).stdout
        return "ErrImagePull" in out or "ImagePullBackOff" in out
    wait_for(stuck, 30, "new pods stuck pulling")
    r = sim.kubectl("rollout", "status", "deploy/worker", "-n", ns, "--timeout=3s", check=False)
    assert r.returncode != 0


def test_graceful_deletion_completes(sim: Cluster, ns: str) -> None:
    sim.kubectl("run", "gone", "-n", ns, "--image=nginx")
    wait_for(lambda: pod_row(sim, ns, "gone")[2:3] == ["Running"], 15, "gone Running")
    t = time.time()
    sim.kubectl("delete", "pod", "gone", "-n", ns, "--timeout=20s")
    assert time.time() - t < 10
    assert "NotFound" in sim.kubectl("get", "pod", "gone", "-n", ns, check=False).stderr
    wait_for(lambda: ("Normal", "Killing", "Stopping container gone") in kubelet_events(sim, ns, "gone"), 15,
             "Killing event")


def test_nodes_add_kill_remove(sim: Cluster, ns: str) -> None:
    r = kubelite_nodes(sim, "add", "1", "--name-prefix", "extra-", "--label", "tier=gold")
    assert r.returncode == 0 and r.stdout.strip() == "node/extra-0 added", r.stderr
    wait_for(lambda: "extra-0" in ready_nodes(sim), 20, "extra-0 Ready")
    assert "tier=gold" in sim.kubectl("get", "node", "extra-0", "--show-labels").stdout
    assert "extra-0" in kubelite_nodes(sim, "list").stdout
    r = kubelite_nodes(sim, "kill", "extra-0")
    assert r.returncode == 0 and r.stdout.strip() == "node/extra-0 killed"
    time.sleep(1)
    before = json.loads(sim.kubectl("get", "lease", "extra-0", "-n", "kube-node-lease", "-o", "json").stdout)
    time.sleep(11)
    after = json.loads(sim.kubectl("get", "lease", "extra-0", "-n", "kube-node-lease", "-o", "json").stdout)
    assert before["spec"]["renewTime"] == after["spec"]["renewTime"]  # no more heartbeats
    r = kubelite_nodes(sim, "revive", "extra-0")
    assert r.returncode == 0
    wait_for(lambda: json.loads(sim.kubectl("get", "lease", "extra-0", "-n", "kube-node-lease", "-o", "json")
                                .stdout)["spec"]["renewTime"] != after["spec"]["renewTime"], 15, "heartbeats again")
    r = kubelite_nodes(sim, "remove", "extra-0")
    assert r.returncode == 0 and r.stdout.strip() == "node/extra-0 removed"
    wait_for(lambda: "extra-0" not in sim.kubectl("get", "nodes").stdout, 20, "extra-0 deleted")
    r = kubelite_nodes(sim, "remove", "extra-0")
    assert r.returncode != 0 and 'simulated node "extra-0" not found' in r.stderr
