"""DaemonSets end to end: one pod per eligible node, rolling updates, history, and the course's
conversion of the rng Deployment into a DaemonSet. A private cluster, so its Nodes cannot disturb
the other tests; the tests play the kubelet (Ready pods) since no node agent runs."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator

import pytest
import yaml
from conftest import Cluster, _make_cluster
from test_workloads_support import (
    Kubelet,
    apply,
    finish_terminations,
    get,
    has_event,
    make_running,
    pods,
    register_node,
    target_node,
    wait_until,
)

NODES = ("ds-n1", "ds-n2", "ds-n3")


@pytest.fixture(scope="module")
def dcluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = _make_cluster(tmp_path_factory)
    c.start()
    with contextlib.ExitStack() as kubelets:
        for name in NODES:
            kubelets.enter_context(Kubelet(c, name, labels={"disk": "ssd" if name != "ds-n3" else "hdd"}, interval=5))
        yield c
    c.stop()


@pytest.fixture
def dns(dcluster: Cluster) -> Iterator[str]:
    name = "ds-" + uuid.uuid4().hex[:8]
    dcluster.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
    yield name
    dcluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def ds_manifest(name: str, image: str = "nginx:1.25", node_selector: str = "", tolerations: str = "",
                strategy: str = "") -> str:
    return f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
{strategy}  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
{node_selector}{tolerations}      containers:
      - name: main
        image: {image}
"""


def placed(cluster: Cluster, ns: str, app: str) -> dict[str, str]:
    """node -> pod name of the live daemon pods (the nodes' kubelets finish pending deletions first)."""
    finish_terminations(cluster, ns, f"app={app}")
    return {target_node(p): p["metadata"]["name"] for p in pods(cluster, ns, f"app={app}")}


@pytest.mark.conformance("DaemonSet-Creation")
def test_daemonset_runs_one_pod_per_node_and_replaces_deleted_pods(dcluster: Cluster, dns: str) -> None:
    apply(dcluster, dns, ds_manifest("daemon"))
    wait_until(lambda: set(placed(dcluster, dns, "daemon")) == set(NODES), what="a pod on every node")
    pod = pods(dcluster, dns, "app=daemon")[0]
    # pinned to its node through required node affinity, tolerating what upstream adds to daemons
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchFields"][0]["key"] == "metadata.name"
    tolerated = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
    assert {("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule")} <= tolerated
    assert pod["metadata"]["labels"]["controller-revision-hash"]
    assert pod["metadata"]["generateName"] == "daemon-"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"

    make_running(dcluster, dns, "app=daemon")
    wait_until(lambda: (get(dcluster, "ds", "daemon", "-n", dns).get("status") or {}).get("numberAvailable") == 3,
               what="3 available")
    st = get(dcluster, "ds", "daemon", "-n", dns)["status"]
    assert st["desiredNumberScheduled"] == 3 and st["currentNumberScheduled"] == 3 and st["numberReady"] == 3
    assert st["updatedNumberScheduled"] == 3 and st["numberMisscheduled"] == 0
    assert st["observedGeneration"] == 1
    out = dcluster.kubectl("get", "ds", "daemon", "-n", dns).stdout.split("\n")
    assert out[0].split()[:7] == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE"]
    assert out[1].split()[:6] == ["daemon", "3", "3", "3", "3", "3"]

    victim = placed(dcluster, dns, "daemon")["ds-n2"]
    dcluster.kubectl("delete", "pod", victim, "-n", dns, "--wait=false")
    wait_until(lambda: placed(dcluster, dns, "daemon").get("ds-n2") not in (None, victim), what="a replacement on ds-n2")
    assert has_event(dcluster, dns, "daemon", "SuccessfulCreate", "Created pod: daemon-")


@pytest.mark.conformance("DaemonSet-NodeSelection")
def test_daemonset_node_selector_and_taints(dcluster: Cluster, dns: str) -> None:
    apply(dcluster, dns, ds_manifest("picky", node_selector="      nodeSelector: {disk: ssd}\n"))
    wait_until(lambda: set(placed(dcluster, dns, "picky")) == {"ds-n1", "ds-n2"}, what="pods on the ssd nodes")
    st = wait_until(lambda: (get(dcluster, "ds", "picky", "-n", dns).get("status") or {}).get(
        "desiredNumberScheduled") == 2 and get(dcluster, "ds", "picky", "-n", dns)["status"], what="status")
    assert st["currentNumberScheduled"] == 2

    # relabelling a node moves the daemon: ds-n3 gains a pod, ds-n1 loses its own
    dcluster.kubectl("label", "node", "ds-n3", "disk=ssd", "--overwrite")
    dcluster.kubectl("label", "node", "ds-n1", "disk=hdd", "--overwrite")
    try:
        wait_until(lambda: set(placed(dcluster, dns, "picky")) == {"ds-n2", "ds-n3"}, what="pods follow the labels")
    finally:
        dcluster.kubectl("label", "node", "ds-n3", "disk=hdd", "--overwrite")
        dcluster.kubectl("label", "node", "ds-n1", "disk=ssd", "--overwrite")
    wait_until(lambda: set(placed(dcluster, dns, "picky")) == {"ds-n1", "ds-n2"}, what="pods back on ssd nodes")

    # a NoSchedule taint keeps new daemon pods off but leaves the running one; NoExecute evicts it
    dcluster.kubectl("taint", "node", "ds-n2", "dedicated=infra:NoSchedule")
    try:
        apply(dcluster, dns, ds_manifest("late"))
        wait_until(lambda: set(placed(dcluster, dns, "late")) == {"ds-n1", "ds-n3"}, what="no pod on the tainted node")
        assert "ds-n2" in placed(dcluster, dns, "picky")
        dcluster.kubectl("taint", "node", "ds-n2", "dedicated=infra:NoExecute")
        wait_until(lambda: "ds-n2" not in placed(dcluster, dns, "picky"), what="picky leaves the NoExecute node")
        # a daemon that tolerates the taint runs there
        apply(dcluster, dns, ds_manifest("tolerant", tolerations="      tolerations: [{key: dedicated, operator: Exists}]\n"))
        wait_until(lambda: set(placed(dcluster, dns, "tolerant")) == set(NODES), what="tolerant everywhere")
    finally:
        dcluster.kubectl("taint", "node", "ds-n2", "dedicated-", check=False)
    wait_until(lambda: "ds-n2" in placed(dcluster, dns, "picky"), what="picky returns once untainted")


def test_daemonset_follows_nodes_joining_and_leaving(dcluster: Cluster, dns: str) -> None:
    apply(dcluster, dns, ds_manifest("follow"))
    wait_until(lambda: len(placed(dcluster, dns, "follow")) == 3, what="3 pods")
    register_node(dcluster, "ds-n4", labels={"disk": "ssd"})
    try:
        wait_until(lambda: "ds-n4" in placed(dcluster, dns, "follow"), what="a pod on the new node")
    finally:
        dcluster.kubectl("delete", "node", "ds-n4")
    wait_until(lambda: "ds-n4" not in placed(dcluster, dns, "follow"), what="the pod of the removed node goes")
    assert len(placed(dcluster, dns, "follow")) == 3


@pytest.mark.conformance("DaemonSet-RollingUpdate")
def test_daemonset_rolling_update_history_and_undo(dcluster: Cluster, dns: str) -> None:
    apply(dcluster, dns, ds_manifest("roll"))
    wait_until(lambda: len(placed(dcluster, dns, "roll")) == 3, what="3 pods")
    make_running(dcluster, dns, "app=roll")
    dcluster.kubectl("rollout", "status", "ds/roll", "-n", dns, "--timeout=30s")
    first_hash = pods(dcluster, dns, "app=roll")[0]["metadata"]["labels"]["controller-revision-hash"]

    dcluster.kubectl("set", "image", "ds/roll", "main=nginx:1.26", "-n", dns)
    seen_unavailable: list[int] = []

    def progressed() -> bool:
        live = pods(dcluster, dns, "app=roll")
        images = [p["spec"]["containers"][0]["image"] for p in live]
        not_ready = [p for p in live if (p.get("status") or {}).get("phase") != "Running"]
        seen_unavailable.append(3 - (len(live) - len(not_ready)))
        make_running(dcluster, dns, "app=roll")
        return len(live) == 3 and set(images) == {"nginx:1.26"}

    wait_until(progressed, timeout=60, what="all pods on the new image")
    assert max(seen_unavailable) <= 1  # maxUnavailable 1: one node at a time
    dcluster.kubectl("rollout", "status", "ds/roll", "-n", dns, "--timeout=30s")
    revs = get(dcluster, "controllerrevisions", "-n", dns)["items"]
    assert sorted(r["revision"] for r in revs) == [1, 2]
    assert all(r["metadata"]["name"].startswith("roll-") for r in revs)
    assert all(r["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet" for r in revs)
    hist = dcluster.kubectl("rollout", "history", "ds/roll", "-n", dns).stdout
    assert "REVISION" in hist and "1 " in hist and "2 " in hist

    dcluster.kubectl("rollout", "undo", "ds/roll", "-n", dns)

    def rolled_back() -> bool:
        make_running(dcluster, dns, "app=roll")
        live = pods(dcluster, dns, "app=roll")
        return len(live) == 3 and {p["spec"]["containers"][0]["image"] for p in live} == {"nginx:1.25"}

    wait_until(rolled_back, timeout=60, what="rolled back")
    revs = get(dcluster, "controllerrevisions", "-n", dns)["items"]
    # the old revision is reused and renumbered, not duplicated
    assert sorted(r["revision"] for r in revs) == [2, 3]
    assert pods(dcluster, dns, "app=roll")[0]["metadata"]["labels"]["controller-revision-hash"] == first_hash


def test_daemonset_on_delete_strategy_waits_for_manual_deletion(dcluster: Cluster, dns: str) -> None:
    apply(dcluster, dns, ds_manifest("manual", strategy="  updateStrategy: {type: OnDelete}\n"))
    wait_until(lambda: len(placed(dcluster, dns, "manual")) == 3, what="3 pods")
    make_running(dcluster, dns, "app=manual")
    dcluster.kubectl("set", "image", "ds/manual", "main=nginx:1.26", "-n", dns)
    wait_until(lambda: (get(dcluster, "ds", "manual", "-n", dns).get("status") or {}).get("observedGeneration") == 2,
               what="observed")
    assert {p["spec"]["containers"][0]["image"] for p in pods(dcluster, dns, "app=manual")} == {"nginx:1.25"}
    victim = placed(dcluster, dns, "manual")["ds-n1"]
    dcluster.kubectl("delete", "pod", victim, "-n", dns, "--wait=false")
    wait_until(lambda: finish_terminations(dcluster, dns, "app=manual") or
               any(p["spec"]["containers"][0]["image"] == "nginx:1.26" and target_node(p) == "ds-n1"
                   for p in pods(dcluster, dns, "app=manual")), what="the replacement is new")
    assert sum(p["spec"]["containers"][0]["image"] == "nginx:1.25" for p in pods(dcluster, dns, "app=manual")) == 2


def test_course_converts_rng_deployment_to_daemonset(dcluster: Cluster, dns: str) -> None:
    """kubectl get deploy/rng -o yaml > rng.yml; kind: DaemonSet; kubectl apply -f rng.yml --validate=false."""
    dcluster.kubectl("create", "deployment", "rng", "--image=dockercoins/rng:v0.1", "-n", dns)
    exported = dcluster.kubectl("get", "deploy/rng", "-o", "yaml", "-n", dns).stdout
    edited = exported.replace("kind: Deployment", "kind: DaemonSet", 1)
    r = dcluster.kubectl("apply", "-f", "-", "-n", dns, input=edited, check=False)
    assert r.returncode != 0 and "replicas" in (r.stderr + r.stdout)  # strict validation refuses Deployment fields
    r = dcluster.kubectl("apply", "-f", "-", "-n", dns, "--validate=false", input=edited, check=False)
    if r.returncode != 0:  # if the server insists on a clean object, the course's "fix the YAML" route
        doc = yaml.safe_load(edited)
        for k in ("replicas", "strategy", "progressDeadlineSeconds"):
            doc["spec"].pop(k, None)
        doc.pop("status", None)
        for k in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            doc["metadata"].pop(k, None)
        dcluster.kubectl("apply", "-f", "-", "-n", dns, input=yaml.safe_dump(doc))
    wait_until(lambda: len([p for p in pods(dcluster, dns, "app=rng")
                            if "pod-template-hash" not in p["metadata"]["labels"]]) == 3, what="a daemon pod per node")
    make_running(dcluster, dns, "app=rng")
    wait_until(lambda: dcluster.kubectl("get", "daemonset.apps/rng", "-n", dns, "--no-headers").stdout.split()[1:6]
               == ["3", "3", "3", "3", "3"], what="rng daemonset ready")
    # both controllers keep to their own pods thanks to the hidden hash labels
    daemon = [p for p in pods(dcluster, dns, "app=rng") if "controller-revision-hash" in p["metadata"]["labels"]]
    assert len(daemon) == 3 and all(p["metadata"]["name"].startswith("rng-") for p in daemon)


def test_daemonset_surge_update_starts_the_new_pod_before_stopping_the_old(dcluster: Cluster, dns: str) -> None:
    apply(dcluster, dns, ds_manifest("surge", strategy=(
        "  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}\n")))
    wait_until(lambda: len(placed(dcluster, dns, "surge")) == 3, what="3 pods")
    make_running(dcluster, dns, "app=surge")
    dcluster.kubectl("rollout", "status", "ds/surge", "-n", dns, "--timeout=30s")
    dcluster.kubectl("set", "image", "ds/surge", "main=nginx:1.26", "-n", dns)
    # one node at a time carries both pods; the old one goes once the new one is available
    both = wait_until(lambda: [n for n, c in _per_node(dcluster, dns, "surge").items() if c == 2], what="a surge pod")
    assert len(both) == 1
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.25" for p in pods(dcluster, dns, "app=surge")
               if (p.get("status") or {}).get("phase") == "Running")

    def done() -> bool:
        make_running(dcluster, dns, "app=surge")
        live = pods(dcluster, dns, "app=surge")
        return len(live) == 3 and {p["spec"]["containers"][0]["image"] for p in live} == {"nginx:1.26"}

    wait_until(done, timeout=60, what="surge rollout complete")


def _per_node(cluster: Cluster, ns: str, app: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in pods(cluster, ns, f"app={app}"):
        out[target_node(p)] = out.get(target_node(p), 0) + 1
    return out


@pytest.mark.conformance("DaemonSet-FailedPodCreation")
def test_daemonset_replaces_failed_pods(dcluster: Cluster, dns: str) -> None:
    from test_workloads_support import finish

    apply(dcluster, dns, ds_manifest("retry"))
    wait_until(lambda: len(placed(dcluster, dns, "retry")) == 3, what="3 pods")
    make_running(dcluster, dns, "app=retry")
    victim = placed(dcluster, dns, "retry")["ds-n3"]
    finish(dcluster, dns, victim, exit_code=1)
    wait_until(lambda: placed(dcluster, dns, "retry").get("ds-n3") not in (None, victim), what="failed pod replaced")
    assert has_event(dcluster, dns, "retry", "FailedDaemonPod",
                     f"Found failed daemon pod {dns}/{victim} on node ds-n3, will try to kill it")


@pytest.mark.conformance("DaemonSet-Rollback")
def test_daemonset_rollback_without_unnecessary_restarts(dcluster: Cluster, dns: str) -> None:
    apply(dcluster, dns, ds_manifest("rb"))
    wait_until(lambda: len(placed(dcluster, dns, "rb")) == 3, what="3 pods")
    make_running(dcluster, dns, "app=rb")
    dcluster.kubectl("rollout", "status", "ds/rb", "-n", dns, "--timeout=30s")
    before = {p["metadata"]["uid"] for p in pods(dcluster, dns, "app=rb")}
    # a broken image: the first replaced pod never becomes ready, so the rollout stalls there
    dcluster.kubectl("set", "image", "ds/rb", "main=localhost/does-not-exist:0", "-n", dns)
    wait_until(lambda: finish_terminations(dcluster, dns, "app=rb") or
               any(p["spec"]["containers"][0]["image"] == "localhost/does-not-exist:0"
                   for p in pods(dcluster, dns, "app=rb")), what="one pod on the broken image")
    stalled = {p["metadata"]["uid"] for p in pods(dcluster, dns, "app=rb")}
    assert len(before & stalled) == 2
    dcluster.kubectl("rollout", "undo", "ds/rb", "-n", dns)
    wait_until(lambda: (d := get(dcluster, "ds", "rb", "-n", dns)).get("status", {}).get("observedGeneration") ==
               d["metadata"]["generation"], what="the undo observed")  # before the broken pod may turn ready

    def restored() -> bool:
        make_running(dcluster, dns, "app=rb")
        live = pods(dcluster, dns, "app=rb")
        return len(live) == 3 and {p["spec"]["containers"][0]["image"] for p in live} == {"nginx:1.25"}

    wait_until(restored, timeout=60, what="rolled back")
    after = {p["metadata"]["uid"] for p in pods(dcluster, dns, "app=rb")}
    assert len(before & after) == 2  # the two pods never updated were left alone
