"""Node failure end to end: a node whose kubelet stops renewing its Lease turns Unknown, is tainted,
its pods go NotReady and are evicted by the NoExecute taint manager after their tolerationSeconds.
A private cluster with node-monitor-grace-period shortened through KUBELITE_NODE_MONITOR_GRACE_PERIOD."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
from conftest import Cluster, _make_cluster
from test_workloads_support import Kubelet, get, has_event, heartbeat, wait_until

GRACE = 4


@pytest.fixture(scope="module")
def ncluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The cluster, with one healthy node throughout: were every node lost, the node lifecycle
    controller would blame itself (full disruption) and evict nothing, as upstream's does."""
    old = os.environ.get("KUBELITE_NODE_MONITOR_GRACE_PERIOD")
    os.environ["KUBELITE_NODE_MONITOR_GRACE_PERIOD"] = str(GRACE)
    try:
        c = _make_cluster(tmp_path_factory)
        c.start()
    finally:
        if old is None:
            os.environ.pop("KUBELITE_NODE_MONITOR_GRACE_PERIOD", None)
        else:
            os.environ["KUBELITE_NODE_MONITOR_GRACE_PERIOD"] = old
    with Kubelet(c, "anchor-1"):
        yield c
    c.stop()


def node_pod(cluster: Cluster, ns: str, name: str, node: str, toleration_seconds: int | None) -> None:
    tolerations = []
    if toleration_seconds is not None:
        tolerations = [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": toleration_seconds}
                       for k in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"nodeName": node, "tolerations": tolerations,
                    "containers": [{"name": "main", "image": "nginx:1.25"}]}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(pod))
    cluster.kubectl("patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}))


def new_ns(cluster: Cluster) -> str:
    name = "nl-" + uuid.uuid4().hex[:8]
    cluster.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
    return name


def ready_condition(cluster: Cluster, node: str) -> dict:
    return next(c for c in get(cluster, "node", node)["status"]["conditions"] if c["type"] == "Ready")


def taints(cluster: Cluster, node: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in get(cluster, "node", node)["spec"].get("taints") or []}


@pytest.mark.slow
@pytest.mark.conformance("Pod Eviction, Toleration limits")
def test_lost_node_goes_unknown_tainted_and_its_pods_are_evicted(ncluster: Cluster) -> None:
    ns = new_ns(ncluster)
    with Kubelet(ncluster, "lost-1") as kubelet:
        node_pod(ncluster, ns, "short", "lost-1", 3)
        node_pod(ncluster, ns, "long", "lost-1", 3600)
        wait_until(lambda: ready_condition(ncluster, "lost-1")["status"] == "True", what="ready")
        assert not {k for k, _ in taints(ncluster, "lost-1")} & {"node.kubernetes.io/unreachable"}
        kubelet.stop()  # the kubelet dies: no more heartbeats, no more lease renewals
        wait_until(lambda: ready_condition(ncluster, "lost-1")["status"] == "Unknown", timeout=GRACE + 15,
                   what="Ready Unknown")
    cond = ready_condition(ncluster, "lost-1")
    assert cond["reason"] == "NodeStatusUnknown" and cond["message"] == "Kubelet stopped posting node status."
    others = {c["type"]: c for c in get(ncluster, "node", "lost-1")["status"]["conditions"]}
    assert {others[t]["status"] for t in ("MemoryPressure", "DiskPressure", "PIDPressure")} == {"Unknown"}
    wait_until(lambda: {("node.kubernetes.io/unreachable", "NoExecute"), ("node.kubernetes.io/unreachable",
                                                                         "NoSchedule")} <= taints(ncluster, "lost-1"),
               what="unreachable taints")
    no_exec = [t for t in get(ncluster, "node", "lost-1")["spec"]["taints"] if t["effect"] == "NoExecute"][0]
    assert no_exec.get("timeAdded")
    wait_until(lambda: has_event(ncluster, "default", "lost-1", "NodeNotReady", "Node lost-1 status is now: NodeNotReady"),
               what="node event")

    def pod_ready(name: str) -> str:
        pod = get(ncluster, "pod", name, "-n", ns)
        return next(c["status"] for c in pod["status"]["conditions"] if c["type"] == "Ready")

    wait_until(lambda: pod_ready("long") == "False", what="pods marked not ready")
    assert has_event(ncluster, ns, "long", "NodeNotReady", "Node is not ready")
    # the pod tolerating for 3 s is evicted (DisruptionTarget, then deletion); the other one stays
    wait_until(lambda: get(ncluster, "pod", "short", "-n", ns)["metadata"].get("deletionTimestamp"), timeout=20,
               what="short evicted")
    short = get(ncluster, "pod", "short", "-n", ns)
    target = next(c for c in short["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert target["reason"] == "DeletionByTaintManager"
    assert target["message"] == "Taint manager: deleting due to NoExecute taint"
    assert has_event(ncluster, ns, "short", "TaintManagerEviction", f"Marking for deletion Pod {ns}/short")
    assert not get(ncluster, "pod", "long", "-n", ns)["metadata"].get("deletionTimestamp")

    # the kubelet comes back: Ready again, taints lifted
    with Kubelet(ncluster, "lost-1"):
        wait_until(lambda: ready_condition(ncluster, "lost-1")["status"] == "True", what="ready again")
        wait_until(lambda: not {k for k, _ in taints(ncluster, "lost-1")} & {"node.kubernetes.io/unreachable"},
                   what="taints removed")
    ncluster.kubectl("delete", "node", "lost-1")


@pytest.mark.conformance("Taint, Pod Eviction on taint removal")
def test_removing_the_taint_cancels_the_eviction(ncluster: Cluster) -> None:
    ns = new_ns(ncluster)
    with Kubelet(ncluster, "taint-1"):
        node_pod(ncluster, ns, "keeper", "taint-1", None)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "patient", "namespace": ns},
               "spec": {"nodeName": "taint-1", "containers": [{"name": "main", "image": "nginx:1.25"}],
                        "tolerations": [{"key": "kubernetes.io/e2e-evict-taint-key", "operator": "Equal",
                                         "value": "evictTaintVal", "effect": "NoExecute", "tolerationSeconds": 4}]}}
        ncluster.kubectl("create", "-f", "-", input=json.dumps(pod))
        ncluster.kubectl("taint", "node", "taint-1", "kubernetes.io/e2e-evict-taint-key=evictTaintVal:NoExecute")
        # no toleration at all: evicted at once
        wait_until(lambda: ncluster.kubectl("get", "pod", "keeper", "-n", ns, check=False).returncode != 0 or
                   get(ncluster, "pod", "keeper", "-n", ns)["metadata"].get("deletionTimestamp"), what="keeper evicted")
        ncluster.kubectl("taint", "node", "taint-1", "kubernetes.io/e2e-evict-taint-key-")
        import time

        time.sleep(6)
        assert not get(ncluster, "pod", "patient", "-n", ns)["metadata"].get("deletionTimestamp")
        assert has_event(ncluster, ns, "patient", "TaintManagerEviction", f"Cancelling deletion of Pod {ns}/patient")
    ncluster.kubectl("delete", "node", "taint-1")


@pytest.mark.slow
def test_podgc_removes_pods_of_deleted_nodes(ncluster: Cluster) -> None:
    ns = new_ns(ncluster)
    with Kubelet(ncluster, "gone-1"):
        node_pod(ncluster, ns, "stranded", "gone-1", None)
    ncluster.kubectl("delete", "node", "gone-1")
    # quarantine (40 s) plus up to one gc period (20 s)
    wait_until(lambda: ncluster.kubectl("get", "pod", "stranded", "-n", ns, check=False).returncode != 0,
               timeout=90, interval=2, what="the stranded pod collected")


def test_node_reporting_not_ready_gets_the_not_ready_taints(ncluster: Cluster) -> None:
    with Kubelet(ncluster, "sick-1") as kubelet:
        kubelet.stop()  # this kubelet stays alive (lease renewed below) but reports NotReady
        ncluster.kubectl("patch", "node", "sick-1", "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                                        "message": "container runtime is down"}]}}))
        wait_until(lambda: {("node.kubernetes.io/not-ready", "NoExecute"),
                            ("node.kubernetes.io/not-ready", "NoSchedule")} <= taints(ncluster, "sick-1"),
                   what="not-ready taints")
        assert ready_condition(ncluster, "sick-1")["reason"] == "KubeletNotReady"
        ncluster.kubectl("cordon", "sick-1")
        wait_until(lambda: ("node.kubernetes.io/unschedulable", "NoSchedule") in taints(ncluster, "sick-1"),
                   what="unschedulable taint")
        heartbeat(ncluster, "sick-1")
        wait_until(lambda: not {k for k, _ in taints(ncluster, "sick-1")} & {"node.kubernetes.io/not-ready"},
                   what="not-ready taints lifted")
    ncluster.kubectl("delete", "node", "sick-1")


def test_zone_disruption_states() -> None:
    from kubelite.controllers.node_lifecycle import zone_state, zone_states

    def node(name: str, ready: str, zone: str = "") -> dict:
        labels = {"topology.kubernetes.io/zone": zone} if zone else {}
        return {"metadata": {"name": name, "labels": labels},
                "status": {"conditions": [{"type": "Ready", "status": ready}]}}

    assert zone_state(0, 1) == "FullDisruption"  # a one-node cluster whose node is lost evicts nothing
    assert zone_state(1, 1) == "Normal"
    assert zone_state(2, 2) == "Normal"  # at most two lost nodes are never a disruption
    assert zone_state(2, 3) == "PartialDisruption"
    states = zone_states([node("a", "True", "z1"), node("b", "Unknown", "z2"), node("c", "False", "z2")])
    assert {z.split(":")[-1]: st for z, (st, _) in states.items()} == {"z1": "Normal", "z2": "FullDisruption"}


@pytest.fixture(scope="module")
def simcluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    old = os.environ.get("KUBELITE_NODE_MONITOR_GRACE_PERIOD")
    os.environ["KUBELITE_NODE_MONITOR_GRACE_PERIOD"] = str(GRACE)
    try:
        c = _make_cluster(tmp_path_factory, ["--simulated-nodes", "3"])
        c.start()
    finally:
        if old is None:
            os.environ.pop("KUBELITE_NODE_MONITOR_GRACE_PERIOD", None)
        else:
            os.environ["KUBELITE_NODE_MONITOR_GRACE_PERIOD"] = old
    yield c
    c.stop()


@pytest.mark.slow
def test_killed_simulated_node_with_daemonset_and_evictions(simcluster: Cluster) -> None:
    """With the scheduler and simulated kubelets: a DaemonSet fills the nodes; killing one node's
    kubelet makes it Unknown and tainted; its ordinary pod is evicted after tolerationSeconds while
    the daemon pod, which tolerates unreachable nodes, stays."""
    c = simcluster
    ns = new_ns(c)
    wait_until(lambda: len(get(c, "nodes")["items"]) == 3, what="3 simulated nodes")
    c.kubectl("apply", "-n", ns, "-f", "-", input="""
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: main, image: busybox, command: [sleep, "3600"]}]
""")
    wait_until(lambda: (get(c, "ds", "agent", "-n", ns).get("status") or {}).get("numberAvailable") == 3, timeout=60,
               what="3 daemon pods available")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "worker", "namespace": ns},
           "spec": {"nodeName": "sim-node-1", "containers": [{"name": "main", "image": "busybox",
                                                              "command": ["sleep", "3600"]}],
                    "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                     "effect": "NoExecute", "tolerationSeconds": 3}]}}
    c.kubectl("create", "-f", "-", input=json.dumps(pod))
    wait_until(lambda: (get(c, "pod", "worker", "-n", ns).get("status") or {}).get("phase") == "Running",
               what="worker running")
    c.kubectl("patch", "configmap", "kubelite-simulated-nodes", "-n", "kube-system", "--type=merge",
              "-p", json.dumps({"data": {"sim-node-1": json.dumps({"state": "Killed"})}}))
    wait_until(lambda: ready_condition(c, "sim-node-1")["status"] == "Unknown", timeout=GRACE + 30,
               what="sim-node-1 Unknown")
    wait_until(lambda: ("node.kubernetes.io/unreachable", "NoExecute") in taints(c, "sim-node-1"), what="tainted")
    wait_until(lambda: get(c, "pod", "worker", "-n", ns)["metadata"].get("deletionTimestamp"), timeout=20,
               what="worker evicted")
    daemon = [p for p in get(c, "pods", "-n", ns, "-l", "app=agent")["items"]
              if p["spec"].get("nodeName") == "sim-node-1"]
    assert daemon and not daemon[0]["metadata"].get("deletionTimestamp")
    # as upstream: daemons do not tolerate unreachable:NoSchedule, so the lost node no longer counts as
    # desired and its surviving pod is reported misscheduled
    st = wait_until(lambda: (s := get(c, "ds", "agent", "-n", ns)["status"]).get("numberMisscheduled") == 1 and s,
                    what="status")
    assert st["desiredNumberScheduled"] == 2
