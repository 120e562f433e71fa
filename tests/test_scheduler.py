"""The scheduler, end to end: given a cluster with three simulated nodes, when a user creates pods with
kubectl, then they land where nodeSelector, affinity, taints, host ports, spreading and priorities say,
and unschedulable pods explain why in `kubectl describe pod` with upstream's words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import Cluster, _make_cluster

NODES = ["sim-node-0", "sim-node-1", "sim-node-2"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = _make_cluster(tmp_path_factory, ["--simulated-nodes", "3"])
    c.start()
    wait_for(lambda: len(ready_nodes(c)) >= 3, 30, "3 simulated nodes Ready")
    yield c
    c.stop()


@pytest.fixture
def ns(sim: Cluster) -> Iterator[str]:
    name = "s-" + uuid.uuid4().hex[:8]
    sim.kubectl("create", "namespace", name)
    yield name
    sim.kubectl("delete", "namespace", name, "--wait=false", check=False)


def wait_for(cond: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def ready_nodes(c: Cluster) -> list[str]:
    items = json.loads(c.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return [n["metadata"]["name"] for n in items
            if any(x["type"] == "Ready" and x["status"] == "True" for x in n["status"].get("conditions", []))]


def apply(c: Cluster, ns: str, obj: dict) -> None:
    c.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))


def pod(name: str, cpu: str = "", node_selector: dict | None = None, **spec: object) -> dict:
    container: dict = {"name": "c", "image": "nginx"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    ports = spec.pop("ports", None)
    if ports:
        container["ports"] = ports
    body: dict = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": spec.pop("labels", {})},
                  "spec": {"containers": [container], **spec}}
    if node_selector:
        body["spec"]["nodeSelector"] = node_selector
    return body


def get_pod(c: Cluster, ns: str, name: str) -> dict:
    return json.loads(c.kubectl("get", "pod", name, "-n", ns, "-o", "json").stdout)


def node_of(c: Cluster, ns: str, name: str, timeout: float = 15) -> str:
    return str(wait_for(lambda: get_pod(c, ns, name)["spec"].get("nodeName"), timeout, f"{name} scheduled"))


def scheduled_condition(c: Cluster, ns: str, name: str) -> dict:
    def cond() -> dict | None:
        p = get_pod(c, ns, name)
        for x in p["status"].get("conditions") or []:
            if x["type"] == "PodScheduled" and x["status"] == "False" and x.get("reason") == "Unschedulable":
                return x
        return None
    return wait_for(cond, 15, f"{name} Unschedulable")  # type: ignore[return-value]


def hostname(node: str) -> dict:
    return {"kubernetes.io/hostname": node}


# ---------------------------------------------------------------------------------------------


def test_pod_is_scheduled_and_runs_with_an_ip(sim: Cluster, ns: str) -> None:
    sim.kubectl("run", "web", "-n", ns, "--image=nginx")
    node = node_of(sim, ns, "web")
    assert node in NODES
    wait_for(lambda: "1/1" in sim.kubectl("get", "pod", "web", "-n", ns).stdout, 15, "web Running 1/1")
    out = sim.kubectl("get", "pod", "web", "-n", ns, "-o", "wide").stdout.splitlines()
    assert out[0].split()[:9] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE"]
    row = out[1].split()
    assert row[1:3] == ["1/1", "Running"] and row[5].startswith("10.42.") and row[6] == node
    desc = sim.kubectl("describe", "pod", "web", "-n", ns).stdout
    assert f"Successfully assigned {ns}/web to {node}" in desc
    assert "default-scheduler" in desc


@pytest.mark.conformance("Scheduler, node selector matching")
def test_node_selector_matching(sim: Cluster, ns: str) -> None:
    key = f"kubelite.io/e2e-{uuid.uuid4().hex[:6]}"
    sim.kubectl("label", "node", "sim-node-1", f"{key}=42")
    try:
        apply(sim, ns, pod("picky", node_selector={key: "42"}))
        assert node_of(sim, ns, "picky") == "sim-node-1"
    finally:
        sim.kubectl("label", "node", "sim-node-1", f"{key}-")


@pytest.mark.conformance("Scheduler, node selector not matching")
def test_node_selector_not_matching_explains_why(sim: Cluster, ns: str) -> None:
    apply(sim, ns, pod("nowhere", node_selector={"label": "nonempty"}))
    cond = scheduled_condition(sim, ns, "nowhere")
    want = ("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
            "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling..")
    assert cond["message"] == want
    desc = sim.kubectl("describe", "pod", "nowhere", "-n", ns).stdout
    assert "FailedScheduling" in desc and "Warning" in desc
    assert "didn't match Pod's node affinity/selector" in desc
    assert get_pod(sim, ns, "nowhere")["spec"].get("nodeName") is None


def test_required_node_affinity_match_fields(sim: Cluster, ns: str) -> None:
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["sim-node-2"]}]}]}}}
    apply(sim, ns, pod("pinned", affinity=aff))
    assert node_of(sim, ns, "pinned") == "sim-node-2"
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn",
                               "values": ["sim-node-0", "sim-node-1"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "preference": {"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["sim-node-0"]}]}}]}}
    apply(sim, ns, pod("notin", affinity=aff))
    assert node_of(sim, ns, "notin") == "sim-node-2"


def test_taints_and_tolerations(sim: Cluster, ns: str) -> None:
    sim.kubectl("taint", "node", "sim-node-0", "node-role.kubernetes.io/control-plane:NoSchedule")
    try:
        apply(sim, ns, pod("intolerant", node_selector=hostname("sim-node-0")))
        cond = scheduled_condition(sim, ns, "intolerant")
        assert cond["message"].startswith(
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
            "2 node(s) didn't match Pod's node affinity/selector.")
        tol = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]
        apply(sim, ns, pod("tolerant", node_selector=hostname("sim-node-0"), tolerations=tol))
        assert node_of(sim, ns, "tolerant") == "sim-node-0"
        for i in range(4):  # no toleration: never the tainted node
            apply(sim, ns, pod(f"free-{i}"))
            assert node_of(sim, ns, f"free-{i}") != "sim-node-0"
    finally:
        sim.kubectl("taint", "node", "sim-node-0", "node-role.kubernetes.io/control-plane:NoSchedule-")
    # the taint gone, the parked pod is woken by the node update and scheduled
    assert node_of(sim, ns, "intolerant") == "sim-node-0"


@pytest.mark.conformance("Scheduling, HostPort matching and HostIP and Protocol not-matching")
def test_host_ports_different_ip_or_protocol_share_a_node(sim: Cluster, ns: str) -> None:
    sel = hostname("sim-node-1")
    apply(sim, ns, pod("p1", node_selector=sel, ports=[{"containerPort": 8080, "hostPort": 54321,
                                                        "hostIP": "127.0.0.1", "protocol": "TCP"}]))
    apply(sim, ns, pod("p2", node_selector=sel, ports=[{"containerPort": 8080, "hostPort": 54321,
                                                        "hostIP": "127.0.0.2", "protocol": "TCP"}]))
    apply(sim, ns, pod("p3", node_selector=sel, ports=[{"containerPort": 8080, "hostPort": 54321,
                                                        "hostIP": "127.0.0.2", "protocol": "UDP"}]))
    for name in ("p1", "p2", "p3"):
        assert node_of(sim, ns, name) == "sim-node-1"


@pytest.mark.conformance("Scheduling, HostPort and Protocol match, HostIPs different but one is default HostIP (0.0.0.0)")
def test_host_port_conflict_with_wildcard_ip(sim: Cluster, ns: str) -> None:
    sel = hostname("sim-node-2")
    apply(sim, ns, pod("wild", node_selector=sel, ports=[{"containerPort": 8080, "hostPort": 54322,
                                                          "hostIP": "0.0.0.0", "protocol": "TCP"}]))
    assert node_of(sim, ns, "wild") == "sim-node-2"
    apply(sim, ns, pod("clash", node_selector=sel, ports=[{"containerPort": 8080, "hostPort": 54322,
                                                           "hostIP": "127.0.0.1", "protocol": "TCP"}]))
    cond = scheduled_condition(sim, ns, "clash")
    assert "1 node(s) didn't have free ports for the requested pod ports" in cond["message"]


def test_required_anti_affinity_spreads_and_blocks(sim: Cluster, ns: str) -> None:
    labels = {"app": "solo"}
    aff = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}]}}
    for i in range(3):
        apply(sim, ns, pod(f"solo-{i}", labels=labels, affinity=aff))
    nodes = {node_of(sim, ns, f"solo-{i}") for i in range(3)}
    assert nodes == set(NODES)
    apply(sim, ns, pod("solo-3", labels=labels, affinity=aff))
    cond = scheduled_condition(sim, ns, "solo-3")
    assert "3 node(s) didn't match pod anti-affinity rules" in cond["message"]


def test_required_pod_affinity_follows_the_target(sim: Cluster, ns: str) -> None:
    apply(sim, ns, pod("db", labels={"app": "db"}, node_selector=hostname("sim-node-2")))
    assert node_of(sim, ns, "db") == "sim-node-2"
    aff = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    for i in range(3):
        apply(sim, ns, pod(f"cache-{i}", affinity=aff))
        assert node_of(sim, ns, f"cache-{i}") == "sim-node-2"


def test_topology_spread_constraints(sim: Cluster, ns: str) -> None:
    labels = {"app": "spread"}
    tsc = [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": labels}}]
    for i in range(6):
        apply(sim, ns, pod(f"sp-{i}", labels=labels, topologySpreadConstraints=tsc))
        node_of(sim, ns, f"sp-{i}")  # one at a time: each sees the previous ones
    counts: dict[str, int] = {}
    for i in range(6):
        n = node_of(sim, ns, f"sp-{i}")
        counts[n] = counts.get(n, 0) + 1
    assert sorted(counts.values()) == [2, 2, 2]


def test_replicas_of_one_deployment_are_spread(sim: Cluster, ns: str) -> None:
    sim.kubectl("create", "deployment", "web", "-n", ns, "--image=nginx", "--replicas=6")

    def placed() -> list[str] | None:
        items = json.loads(sim.kubectl("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
        nodes = [p["spec"].get("nodeName") for p in items]
        return nodes if len(nodes) == 6 and all(nodes) else None
    nodes = wait_for(placed, 30, "6 replicas scheduled")
    assert len(set(nodes)) == 3  # type: ignore[arg-type]


@pytest.mark.conformance("Scheduler, resource limits")
def test_insufficient_cpu_then_a_node_is_added(sim: Cluster, ns: str) -> None:
    apply(sim, ns, pod("huge", cpu="48"))
    cond = scheduled_condition(sim, ns, "huge")
    assert cond["message"] == ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
                               "available: 3 No preemption victims found for incoming pod..")
    events = sim.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=huge").stdout
    assert "FailedScheduling" in events and "Insufficient cpu" in events
    r = subprocess.run([sys.executable, "-m", "kubelite", "nodes", "--kubeconfig", sim.kubeconfig, "add", "1",
                        "--name-prefix", "big-", "--cpu", "64"], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "node/big-0 added"
    try:
        assert node_of(sim, ns, "huge", timeout=30) == "big-0"
    finally:
        subprocess.run([sys.executable, "-m", "kubelite", "nodes", "--kubeconfig", sim.kubeconfig, "remove",
                        "big-0"], capture_output=True, text=True)
        wait_for(lambda: "big-0" not in sim.kubectl("get", "nodes").stdout, 30, "big-0 removed")


@pytest.mark.conformance("Scheduler, Basic Preemption")
def test_preemption_of_a_low_priority_pod(sim: Cluster, ns: str) -> None:
    low, high = f"low-{ns}", f"high-{ns}"
    sim.kubectl("create", "priorityclass", low, "--value=10")
    sim.kubectl("create", "priorityclass", high, "--value=1000")
    try:
        sel = hostname("sim-node-0")
        apply(sim, ns, pod("victim", cpu="30", node_selector=sel, priorityClassName=low))
        assert node_of(sim, ns, "victim") == "sim-node-0"
        apply(sim, ns, pod("preemptor", cpu="30", node_selector=sel, priorityClassName=high))
        assert node_of(sim, ns, "preemptor", timeout=30) == "sim-node-0"
        wait_for(lambda: "victim" not in sim.kubectl("get", "pods", "-n", ns).stdout, 30, "victim gone")
        events = sim.kubectl("get", "events", "-n", ns, "-o", "json").stdout
        assert "Preempted by pod" in events
    finally:
        sim.kubectl("delete", "priorityclass", low, high, check=False)


@pytest.mark.conformance("Verify the DisruptionTarget condition is added to the preempted pod")
def test_preempted_pod_gets_disruption_target(sim: Cluster, ns: str) -> None:
    low, high = f"low-{ns}", f"high-{ns}"
    sim.kubectl("create", "priorityclass", low, "--value=10")
    sim.kubectl("create", "priorityclass", high, "--value=1000")
    try:
        sel = hostname("sim-node-1")
        victim = pod("victim", cpu="30", node_selector=sel, priorityClassName=low)
        victim["metadata"]["finalizers"] = ["example.com/test-finalizer"]
        apply(sim, ns, victim)
        assert node_of(sim, ns, "victim") == "sim-node-1"
        apply(sim, ns, pod("preemptor", cpu="30", node_selector=sel, priorityClassName=high))

        def disrupted() -> dict | None:
            p = get_pod(sim, ns, "victim")
            return next((c for c in p["status"].get("conditions") or [] if c["type"] == "DisruptionTarget"), None)
        cond = wait_for(disrupted, 30, "DisruptionTarget on the victim")
        assert cond["status"] == "True" and cond["reason"] == "PreemptionByScheduler"  # type: ignore[index]
        pre = get_pod(sim, ns, "preemptor")
        assert pre["status"].get("nominatedNodeName") == "sim-node-1" or pre["spec"].get("nodeName") == "sim-node-1"
        sim.kubectl("patch", "pod", "victim", "-n", ns, "--type=json",
                    "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
        assert node_of(sim, ns, "preemptor", timeout=30) == "sim-node-1"
    finally:
        sim.kubectl("delete", "priorityclass", low, high, check=False)


def test_other_scheduler_names_are_left_alone(sim: Cluster, ns: str) -> None:
    apply(sim, ns, pod("custom", schedulerName="my-scheduler"))
    time.sleep(2)
    p = get_pod(sim, ns, "custom")
    assert not p["spec"].get("nodeName")
    assert not p["status"].get("conditions")
