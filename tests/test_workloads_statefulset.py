"""StatefulSets end to end: ordinal identities, ordered scaling, claims from volumeClaimTemplates,
partitioned rolling updates. The tests play the kubelet: they mark pods Running and Ready."""

from __future__ import annotations

import pytest
from conftest import Cluster
from test_workloads_support import apply, finish, get, has_event, make_running, pods, wait_until


def sts_manifest(name: str, replicas: int, image: str = "nginx:1.25", policy: str = "OrderedReady",
                 extra: str = "", claims: bool = True) -> str:
    vct = """  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
""" if claims else ""
    return f"""
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: {name}}}
spec:
  serviceName: {name}
  replicas: {replicas}
  podManagementPolicy: {policy}
  selector: {{matchLabels: {{app: {name}}}}}
{extra}  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: main
        image: {image}
{vct}"""


def names(cluster: Cluster, ns: str, app: str) -> list[str]:
    return [p["metadata"]["name"] for p in pods(cluster, ns, f"app={app}")]


def sts_status(cluster: Cluster, ns: str, name: str) -> dict:
    return get(cluster, "sts", name, "-n", ns).get("status") or {}


@pytest.mark.slow
@pytest.mark.conformance("StatefulSet, Scaling")
def test_statefulset_creates_in_order_and_scales_down_in_reverse(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, sts_manifest("web", 3))
    wait_until(lambda: names(cluster, ns, "web") == ["web-0"], what="web-0 alone")
    # OrderedReady: web-1 waits until web-0 is Running and Ready
    wait_until(lambda: has_event(cluster, ns, "web", "SuccessfulCreate", "create Pod web-0 in StatefulSet web successful"),
               what="create event")
    assert names(cluster, ns, "web") == ["web-0"]
    for expected in (["web-0", "web-1"], ["web-0", "web-1", "web-2"]):
        make_running(cluster, ns, "app=web")
        wait_until(lambda e=expected: names(cluster, ns, "web") == e, what=f"{expected}")
    make_running(cluster, ns, "app=web")
    wait_until(lambda: sts_status(cluster, ns, "web").get("readyReplicas") == 3, what="3 ready")

    web1 = get(cluster, "pod", "web-1", "-n", ns)
    labels = web1["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "web-1"
    assert labels["apps.kubernetes.io/pod-index"] == "1"
    assert labels["controller-revision-hash"].startswith("web-")
    assert web1["spec"]["hostname"] == "web-1" and web1["spec"]["subdomain"] == "web"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}} in web1["spec"]["volumes"]
    pvcs = sorted(p["metadata"]["name"] for p in get(cluster, "pvc", "-n", ns)["items"])
    assert pvcs == ["data-web-0", "data-web-1", "data-web-2"]
    assert get(cluster, "pvc", "data-web-0", "-n", ns)["metadata"]["labels"]["app"] == "web"
    st = sts_status(cluster, ns, "web")
    assert st["replicas"] == 3 and st["currentReplicas"] == 3 and st["updatedReplicas"] == 3
    assert st["currentRevision"] == st["updateRevision"] == labels["controller-revision-hash"]
    assert st["availableReplicas"] == 3 and st["observedGeneration"] == 1

    # an unhealthy pod halts scaling
    cluster.kubectl("patch", "pod", "web-2", "-n", ns, "--subresource=status", "--type=json",
                    "-p", '[{"op":"replace","path":"/status/conditions/1/status","value":"False"}]')
    cluster.kubectl("scale", "sts", "web", "--replicas=5", "-n", ns)
    wait_until(lambda: sts_status(cluster, ns, "web").get("readyReplicas") == 2, what="web-2 not ready")
    wait_until(lambda: sts_status(cluster, ns, "web").get("observedGeneration") == 2, what="observed")
    assert names(cluster, ns, "web") == ["web-0", "web-1", "web-2"]
    cluster.kubectl("patch", "pod", "web-2", "-n", ns, "--subresource=status", "--type=json",
                    "-p", '[{"op":"replace","path":"/status/conditions/1/status","value":"True"}]')
    for expected in (["web-0", "web-1", "web-2", "web-3"], ["web-0", "web-1", "web-2", "web-3", "web-4"]):
        wait_until(lambda e=expected: names(cluster, ns, "web") == e, what=f"{expected}")
        make_running(cluster, ns, "app=web")

    # scale down: highest ordinal first; claims are retained (whenScaled: Retain)
    cluster.kubectl("scale", "sts", "web", "--replicas=2", "-n", ns)
    seen: list[list[str]] = []

    def shrunk() -> bool:
        current = names(cluster, ns, "web")
        if not seen or seen[-1] != current:
            seen.append(current)
        return current == ["web-0", "web-1"]

    wait_until(shrunk, interval=0.05, what="scaled to 2")
    for before, after in zip(seen, seen[1:], strict=False):
        removed = set(before) - set(after)
        assert all(int(r.rsplit("-", 1)[1]) >= max(int(n.rsplit("-", 1)[1]) for n in after) for r in removed)
    assert len(get(cluster, "pvc", "-n", ns)["items"]) == 5
    assert has_event(cluster, ns, "web", "SuccessfulDelete", "delete Pod web-4 in StatefulSet web successful")


@pytest.mark.conformance("StatefulSet, Burst Scaling")
def test_statefulset_parallel_creates_all_at_once_and_recreates_failed_pods(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, sts_manifest("burst", 3, policy="Parallel", claims=False))
    wait_until(lambda: names(cluster, ns, "burst") == ["burst-0", "burst-1", "burst-2"], what="all three at once")
    make_running(cluster, ns, "app=burst")
    old_uid = get(cluster, "pod", "burst-1", "-n", ns)["metadata"]["uid"]
    finish(cluster, ns, "burst-1", exit_code=1)
    wait_until(lambda: (get(cluster, "pod", "burst-1", "-n", ns) if "burst-1" in names(cluster, ns, "burst") else
                        {"metadata": {"uid": old_uid}})["metadata"]["uid"] != old_uid, what="burst-1 recreated")
    assert has_event(cluster, ns, "burst", "RecreatingFailedPod")


@pytest.mark.slow
@pytest.mark.conformance("StatefulSet, Rolling Update with Partition")
def test_statefulset_partitioned_rolling_update(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, sts_manifest("canary", 3, claims=False,
                                    extra="  updateStrategy: {type: RollingUpdate, rollingUpdate: {partition: 2}}\n"))
    for n in range(1, 4):
        wait_until(lambda n=n: len(names(cluster, ns, "canary")) == n, what=f"{n} pods")
        make_running(cluster, ns, "app=canary")
    wait_until(lambda: sts_status(cluster, ns, "canary").get("readyReplicas") == 3, what="ready")
    cluster.kubectl("set", "image", "sts/canary", "main=nginx:1.26", "-n", ns)

    def images() -> dict[str, str]:
        make_running(cluster, ns, "app=canary")
        return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in pods(cluster, ns, "app=canary")}

    wait_until(lambda: images() == {"canary-0": "nginx:1.25", "canary-1": "nginx:1.25", "canary-2": "nginx:1.26"},
               what="only the canary above the partition updated")
    st = wait_until(lambda: (s := sts_status(cluster, ns, "canary")).get("updatedReplicas") == 1 and
                    s.get("readyReplicas") == 3 and s, what="status")
    assert st["currentRevision"] != st["updateRevision"] and st["currentReplicas"] == 2
    # a pod below the partition deleted during the rollout comes back at the current revision
    cluster.kubectl("delete", "pod", "canary-0", "-n", ns, "--wait=false")
    wait_until(lambda: images().get("canary-0") == "nginx:1.25", what="canary-0 back on the old image")
    # phased rollout: lower the partition
    cluster.kubectl("patch", "sts", "canary", "-n", ns, "--type=merge",
                    "-p", '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}')
    wait_until(lambda: set(images().values()) == {"nginx:1.26"} and len(images()) == 3, timeout=60,
               what="all updated")
    st = wait_until(lambda: (s := sts_status(cluster, ns, "canary")).get("currentRevision") == s.get("updateRevision")
                    and s.get("readyReplicas") == 3 and s, what="rollout complete")
    assert st["currentReplicas"] == 3 and st["updatedReplicas"] == 3
    cluster.kubectl("rollout", "status", "sts/canary", "-n", ns, "--timeout=20s")


@pytest.mark.conformance("StatefulSet, Rolling Update")
def test_statefulset_rollback_reuses_the_old_revision(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, sts_manifest("rb", 1, claims=False))
    wait_until(lambda: names(cluster, ns, "rb") == ["rb-0"], what="rb-0")
    make_running(cluster, ns, "app=rb")
    first = wait_until(lambda: sts_status(cluster, ns, "rb").get("updateRevision"), what="revision")
    cluster.kubectl("set", "image", "sts/rb", "main=nginx:1.26", "-n", ns)
    wait_until(lambda: (make_running(cluster, ns, "app=rb") or True) and
               sts_status(cluster, ns, "rb").get("currentRevision") not in (None, first), what="updated")
    cluster.kubectl("rollout", "undo", "sts/rb", "-n", ns)
    wait_until(lambda: (make_running(cluster, ns, "app=rb") or True) and
               sts_status(cluster, ns, "rb").get("currentRevision") == first, what="back to the first revision")
    revs = sorted((r["revision"], r["metadata"]["name"]) for r in get(cluster, "controllerrevisions", "-n", ns)["items"])
    assert [r for r, _ in revs] == [2, 3] and revs[-1][1] == first


def test_statefulset_claim_retention_delete_on_scale_down(cluster: Cluster, ns: str) -> None:
    apply(cluster, ns, sts_manifest("ret", 2, policy="Parallel", extra=(
        "  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}\n")))
    wait_until(lambda: names(cluster, ns, "ret") == ["ret-0", "ret-1"], what="2 pods")
    make_running(cluster, ns, "app=ret")
    owners = get(cluster, "pvc", "data-ret-0", "-n", ns)["metadata"]["ownerReferences"]
    assert [o["kind"] for o in owners] == ["StatefulSet"]
    cluster.kubectl("scale", "sts", "ret", "--replicas=1", "-n", ns)
    wait_until(lambda: names(cluster, ns, "ret") == ["ret-0"], what="scaled down")
    # the condemned claim was handed to its pod, so the garbage collector removes it with the pod
    wait_until(lambda: "data-ret-1" not in [p["metadata"]["name"] for p in get(cluster, "pvc", "-n", ns)["items"]]
               or any(o["kind"] == "Pod" for o in get(cluster, "pvc", "data-ret-1", "-n", ns)["metadata"].get(
                   "ownerReferences", [])), what="claim owned by the pod or gone")
