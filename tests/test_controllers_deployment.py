"""Deployments as the course drives them: rollouts, kubectl rollout status|history|undo|pause|resume|
restart, set image, Recreate, stuck rollouts, proportional scaling and history cleanup.

No nodes run here: the tests mark pods Ready through the status subresource.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from test_controllers_support import (
    apply,
    deployment_manifest,
    get_json,
    items,
    make_ready,
    pods_by_image,
    wait_until,
)

REVISION = "deployment.kubernetes.io/revision"


@pytest.fixture
def core(cluster):
    from kubernetes import client

    return client.CoreV1Api(cluster.api_client())


def replica_sets(cluster, ns: str, app: str) -> list[dict]:
    return sorted(items(cluster, "rs", ns, "-l", f"app={app}"),
                  key=lambda r: int(r["metadata"].get("annotations", {}).get(REVISION, "0")))


def rs_sizes(cluster, ns: str, app: str) -> list[tuple[str, int]]:
    return [(r["spec"]["template"]["spec"]["containers"][0]["image"], r["spec"]["replicas"])
            for r in replica_sets(cluster, ns, app)]


def rollout_done(cluster, ns: str, name: str) -> bool:
    r = cluster.kubectl("rollout", "status", f"deploy/{name}", "-n", ns, "--watch=false", check=False)
    return r.returncode == 0 and "successfully rolled out" in r.stdout


def drive_rollout(cluster, core, ns: str, name: str, timeout: float = 60) -> None:
    """Play the kubelet: keep marking new pods Ready until `rollout status` reports success."""
    def step() -> bool:
        make_ready(core, ns, f"app={name}")
        return rollout_done(cluster, ns, name)

    wait_until(step, timeout=timeout, interval=0.3, what=f"rollout of {name}")


def test_deployment_creates_replicaset_and_pods(cluster, ns, core):
    apply(cluster, ns, deployment_manifest("web", 3))
    rs = wait_until(lambda: (r := replica_sets(cluster, ns, "web")) and r[0], what="replicaset")
    d = get_json(cluster, "deploy", "web", "-n", ns)
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                  "uid": d["metadata"]["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]
    ann = rs["metadata"]["annotations"]
    assert ann[REVISION] == "1"
    assert ann["deployment.kubernetes.io/desired-replicas"] == "3"
    assert ann["deployment.kubernetes.io/max-replicas"] == "4"  # 3 + 25% surge rounded up
    pods = wait_until(lambda: (p := items(cluster, "pods", ns, "-l", "app=web")) and len(p) == 3 and p)
    for pod in pods:
        assert pod["metadata"]["name"].startswith(f"web-{h}-")
        assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
        assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]

    r = cluster.kubectl("rollout", "status", "deploy/web", "-n", ns, "--watch=false")
    assert "0 of 3 updated replicas are available" in r.stdout
    drive_rollout(cluster, core, ns, "web")
    d = get_json(cluster, "deploy", "web", "-n", ns)
    assert d["metadata"]["annotations"][REVISION] == "1"
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
    assert st["observedGeneration"] == d["metadata"]["generation"]
    assert "unavailableReplicas" not in st
    conds = {c["type"]: c for c in st["conditions"]}
    assert (conds["Available"]["status"], conds["Available"]["reason"]) == ("True", "MinimumReplicasAvailable")
    assert conds["Available"]["message"] == "Deployment has minimum availability."
    assert (conds["Progressing"]["status"], conds["Progressing"]["reason"]) == ("True", "NewReplicaSetAvailable")
    assert conds["Progressing"]["message"] == f'ReplicaSet "web-{h}" has successfully progressed.'
    out = cluster.kubectl("get", "deploy", "web", "-n", ns).stdout.splitlines()[1].split()
    assert out[:4] == ["web", "3/3", "3", "3"]
    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.kind=Deployment").stdout
    assert f"Scaled up replica set web-{h} to 3 from 0" in events


def test_scale_to_ten_and_back(cluster, ns, core):
    apply(cluster, ns, deployment_manifest("scaler", 2))
    drive_rollout(cluster, core, ns, "scaler")
    cluster.kubectl("scale", "deploy", "scaler", "-n", ns, "--replicas=10")
    wait_until(lambda: len(items(cluster, "pods", ns, "-l", "app=scaler")) == 10, what="10 pods")
    assert len(replica_sets(cluster, ns, "scaler")) == 1
    drive_rollout(cluster, core, ns, "scaler")
    assert get_json(cluster, "deploy", "scaler", "-n", ns)["status"]["availableReplicas"] == 10
    cluster.kubectl("scale", "deploy", "scaler", "-n", ns, "--replicas=3")
    wait_until(lambda: len(items(cluster, "pods", ns, "-l", "app=scaler")) == 3, what="3 pods")
    wait_until(lambda: rollout_done(cluster, ns, "scaler"))
    rs = replica_sets(cluster, ns, "scaler")[0]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"


def test_deleted_pod_comes_back(cluster, ns, core):
    apply(cluster, ns, deployment_manifest("heal", 2))
    drive_rollout(cluster, core, ns, "heal")
    victim = items(cluster, "pods", ns, "-l", "app=heal")[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", victim, "-n", ns)
    wait_until(lambda: (names := {p["metadata"]["name"] for p in items(cluster, "pods", ns, "-l", "app=heal")})
               and len(names) == 2 and victim not in names, what="replacement")
    drive_rollout(cluster, core, ns, "heal")


@pytest.mark.conformance("Deployment RollingUpdate")
def test_set_image_rolls_out_within_surge_and_unavailability(cluster, ns, core):
    strategy = "  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}\n"
    apply(cluster, ns, deployment_manifest("roll", 4, strategy=strategy))
    drive_rollout(cluster, core, ns, "roll")
    old_rs = replica_sets(cluster, ns, "roll")[0]["metadata"]["name"]
    cluster.kubectl("set", "image", "deploy/roll", "main=nginx:1.26", "-n", ns)
    seen_total, seen_ready = [], []
    deadline = time.time() + 60
    while time.time() < deadline:
        pods = [p for p in core.list_namespaced_pod(ns, label_selector="app=roll").items
                if not p.metadata.deletion_timestamp]
        ready = [p for p in pods if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
        seen_total.append(len(pods))
        seen_ready.append(len(ready))
        if rollout_done(cluster, ns, "roll"):
            break
        make_ready(core, ns, "app=roll")  # one new pod at a time becomes ready
    assert rollout_done(cluster, ns, "roll")
    assert max(seen_total) <= 5, seen_total  # replicas + maxSurge
    assert min(seen_ready) >= 4, seen_ready  # replicas - maxUnavailable
    assert pods_by_image(core, ns, "app=roll") == {"nginx:1.26": 4}
    rss = replica_sets(cluster, ns, "roll")
    assert [(r["metadata"]["name"], r["spec"]["replicas"]) for r in rss][0] == (old_rs, 0)
    assert rss[1]["metadata"]["annotations"][REVISION] == "2"
    assert get_json(cluster, "deploy", "roll", "-n", ns)["metadata"]["annotations"][REVISION] == "2"
    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=roll").stdout
    assert f"Scaled down replica set {old_rs} to 3 from 4" in events


def test_bad_rollout_is_stuck_but_old_pods_keep_serving(cluster, ns, core):
    """The course's worker v0.3: 10 replicas, 25%/25% - two old pods go, five new ones never get ready."""
    apply(cluster, ns, deployment_manifest("worker", 10, extra_spec="  progressDeadlineSeconds: 4\n"))
    drive_rollout(cluster, core, ns, "worker")
    cluster.kubectl("set", "image", "deploy/worker", "main=dockercoins/worker:v0.3", "-n", ns)
    wait_until(lambda: rs_sizes(cluster, ns, "worker") == [("nginx:1.25", 8), ("dockercoins/worker:v0.3", 5)],
               what="old 8 / new 5")
    time.sleep(1)
    assert rs_sizes(cluster, ns, "worker") == [("nginx:1.25", 8), ("dockercoins/worker:v0.3", 5)]
    st = get_json(cluster, "deploy", "worker", "-n", ns)["status"]
    assert (st["availableReplicas"], st["updatedReplicas"], st["replicas"]) == (8, 5, 13)
    assert {c["type"]: c["status"] for c in st["conditions"]}["Available"] == "True"  # 8 >= 10 - 2

    def timed_out():
        conds = {c["type"]: c for c in get_json(cluster, "deploy", "worker", "-n", ns)["status"]["conditions"]}
        return conds["Progressing"]["reason"] == "ProgressDeadlineExceeded" and conds["Progressing"]

    cond = wait_until(timed_out, timeout=20, what="ProgressDeadlineExceeded")
    assert cond["status"] == "False"
    assert cond["message"].endswith("has timed out progressing.")
    r = cluster.kubectl("rollout", "status", "deploy/worker", "-n", ns, check=False)
    assert r.returncode != 0 and 'deployment "worker" exceeded its progress deadline' in r.stderr

    cluster.kubectl("rollout", "undo", "deploy/worker", "-n", ns)
    drive_rollout(cluster, core, ns, "worker")
    assert rs_sizes(cluster, ns, "worker")[-1] == ("nginx:1.25", 10)
    assert pods_by_image(core, ns, "app=worker") == {"nginx:1.25": 10}


def test_rollout_history_undo_and_to_revision(cluster, ns, core):
    apply(cluster, ns, deployment_manifest("hist", 2, image="nginx:1"))
    drive_rollout(cluster, core, ns, "hist")
    for image in ("nginx:2", "nginx:3"):
        cluster.kubectl("set", "image", "deploy/hist", f"main={image}", "-n", ns)
        cluster.kubectl("annotate", "deploy/hist", f"kubernetes.io/change-cause=set image {image}", "-n", ns,
                        "--overwrite")
        drive_rollout(cluster, core, ns, "hist")
    out = cluster.kubectl("rollout", "history", "deploy/hist", "-n", ns).stdout.splitlines()
    assert out[1].split() == ["REVISION", "CHANGE-CAUSE"]
    assert [line.split(None, 1) for line in out[2:] if line.strip()] == [
        ["1", "<none>"], ["2", "set image nginx:2"], ["3", "set image nginx:3"]]

    r = cluster.kubectl("rollout", "undo", "deploy/hist", "-n", ns)
    assert "rolled back" in r.stdout
    drive_rollout(cluster, core, ns, "hist")
    assert pods_by_image(core, ns, "app=hist") == {"nginx:2": 2}
    rss = replica_sets(cluster, ns, "hist")
    assert len(rss) == 3  # undo reuses revision 2's ReplicaSet, which becomes revision 4
    top = rss[-1]
    assert top["metadata"]["annotations"][REVISION] == "4"
    assert top["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "2"
    revs = [line.split()[0] for line in cluster.kubectl("rollout", "history", "deploy/hist", "-n", ns)
            .stdout.splitlines()[2:] if line.strip()]
    assert revs == ["1", "3", "4"]

    cluster.kubectl("rollout", "undo", "deploy/hist", "-n", ns, "--to-revision=1")
    drive_rollout(cluster, core, ns, "hist")
    assert pods_by_image(core, ns, "app=hist") == {"nginx:1": 2}
    assert get_json(cluster, "deploy", "hist", "-n", ns)["metadata"]["annotations"][REVISION] == "5"
    r = cluster.kubectl("rollout", "undo", "deploy/hist", "-n", ns, "--to-revision=1", check=False)
    assert r.returncode != 0 and "unable to find specified revision 1 in history" in r.stderr


def test_pause_resume_and_restart(cluster, ns, core):
    apply(cluster, ns, deployment_manifest("pz", 2))
    drive_rollout(cluster, core, ns, "pz")
    cluster.kubectl("rollout", "pause", "deploy/pz", "-n", ns)

    def progressing():
        return {c["type"]: c for c in get_json(cluster, "deploy", "pz", "-n", ns)["status"]["conditions"]}[
            "Progressing"]

    cond = wait_until(lambda: (c := progressing())["reason"] == "DeploymentPaused" and c)
    assert (cond["status"], cond["message"]) == ("Unknown", "Deployment is paused")
    cluster.kubectl("set", "image", "deploy/pz", "main=nginx:1.26", "-n", ns)
    cluster.kubectl("scale", "deploy/pz", "--replicas=3", "-n", ns)  # scaling still works while paused
    wait_until(lambda: rs_sizes(cluster, ns, "pz") == [("nginx:1.25", 3)], what="paused scale")
    time.sleep(0.5)
    assert len(replica_sets(cluster, ns, "pz")) == 1  # no rollout while paused

    cluster.kubectl("rollout", "resume", "deploy/pz", "-n", ns)
    wait_until(lambda: len(replica_sets(cluster, ns, "pz")) == 2, what="rollout after resume")
    drive_rollout(cluster, core, ns, "pz")
    assert pods_by_image(core, ns, "app=pz") == {"nginx:1.26": 3}

    cluster.kubectl("rollout", "restart", "deploy/pz", "-n", ns)
    wait_until(lambda: len(replica_sets(cluster, ns, "pz")) == 3, what="restart rollout")
    newest = replica_sets(cluster, ns, "pz")[-1]
    assert "kubectl.kubernetes.io/restartedAt" in newest["spec"]["template"]["metadata"]["annotations"]
    drive_rollout(cluster, core, ns, "pz")


@pytest.mark.conformance("Deployment Recreate")
def test_recreate_deletes_old_pods_before_creating_new(cluster, ns, core):
    apply(cluster, ns, deployment_manifest("rec", 3, strategy="  strategy: {type: Recreate}\n"))
    drive_rollout(cluster, core, ns, "rec")
    old = replica_sets(cluster, ns, "rec")[0]["metadata"]["name"]
    w = subprocess.Popen(["kubectl", "--kubeconfig", cluster.kubeconfig, "get", "pods", "-n", ns, "-l", "app=rec",
                          "-w", "--output-watch-events", "-o", "json"], stdout=subprocess.PIPE, text=True)
    try:
        cluster.kubectl("set", "image", "deploy/rec", "main=nginx:1.26", "-n", ns)
        drive_rollout(cluster, core, ns, "rec")
        time.sleep(0.5)
    finally:
        w.terminate()
        raw = w.communicate(timeout=10)[0]
    # replay the watch: never an old and a new pod at the same time
    dec = json.JSONDecoder()
    live: dict[str, str] = {}
    pos = 0
    raw = raw.strip()
    while pos < len(raw):
        ev, pos = dec.raw_decode(raw, pos)
        while pos < len(raw) and raw[pos].isspace():
            pos += 1
        pod = ev["object"]
        name, image = pod["metadata"]["name"], pod["spec"]["containers"][0]["image"]
        if ev["type"] == "DELETED" or pod["metadata"].get("deletionTimestamp"):
            live.pop(name, None)
        else:
            live[name] = image
        assert len(set(live.values())) <= 1, live
    assert pods_by_image(core, ns, "app=rec") == {"nginx:1.26": 3}
    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=rec").stdout
    assert f"Scaled down replica set {old} to 0 from 3" in events


@pytest.mark.conformance("Deployment RevisionHistoryLimit")
def test_revision_history_limit_cleans_old_replica_sets(cluster, ns, core):
    apply(cluster, ns, deployment_manifest("lim", 1, extra_spec="  revisionHistoryLimit: 1\n"))
    drive_rollout(cluster, core, ns, "lim")
    for image in ("nginx:2", "nginx:3", "nginx:4"):
        cluster.kubectl("set", "image", "deploy/lim", f"main={image}", "-n", ns)
        drive_rollout(cluster, core, ns, "lim")
    rss = wait_until(lambda: (r := replica_sets(cluster, ns, "lim")) and len(r) == 2 and r, what="2 replicasets")
    assert [r["spec"]["template"]["spec"]["containers"][0]["image"] for r in rss] == ["nginx:3", "nginx:4"]


@pytest.mark.conformance("Deployment Proportional Scaling")
def test_proportional_scaling_mid_rollout(cluster, ns, core):
    strategy = "  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxSurge: 3, maxUnavailable: 2}\n"
    apply(cluster, ns, deployment_manifest("prop", 10, strategy=strategy))
    drive_rollout(cluster, core, ns, "prop")
    cluster.kubectl("set", "image", "deploy/prop", "main=nginx:404", "-n", ns)
    wait_until(lambda: rs_sizes(cluster, ns, "prop") == [("nginx:1.25", 8), ("nginx:404", 5)], what="8/5")
    cluster.kubectl("scale", "deploy/prop", "--replicas=30", "-n", ns)
    # 33 allowed (30 + surge 3) split 8:5 -> 20 and 13
    wait_until(lambda: rs_sizes(cluster, ns, "prop") == [("nginx:1.25", 20), ("nginx:404", 13)],
               what="proportional 20/13")


@pytest.mark.conformance("Deployment Rollover")
def test_rollover_mid_rollout(cluster, ns, core):
    strategy = "  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}\n"
    apply(cluster, ns, deployment_manifest("over", 2, strategy=strategy, extra_spec="  minReadySeconds: 1\n"))
    drive_rollout(cluster, core, ns, "over")
    cluster.kubectl("set", "image", "deploy/over", "main=nginx:bad", "-n", ns)
    wait_until(lambda: len(replica_sets(cluster, ns, "over")) == 2)
    cluster.kubectl("set", "image", "deploy/over", "main=nginx:1.27", "-n", ns)
    drive_rollout(cluster, core, ns, "over")
    assert rs_sizes(cluster, ns, "over") == [("nginx:1.25", 0), ("nginx:bad", 0), ("nginx:1.27", 2)]
