"""PersistentVolumes end to end on simulated nodes: given a cluster with two simulated nodes, when a
user creates volumes, claims, pods and StatefulSets with kubectl, then claims bind as upstream binds
them (static volumes, the default `local-path` class provisioning on first consumer), `kubectl get
pv,pvc` and `kubectl describe pvc` show upstream's columns, phases and events, and a claim in use
stays Terminating until its pod is gone."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import Cluster, _make_cluster
from tests.test_workloads_support import has_event, wait_until

NODES = ("sim-node-0", "sim-node-1")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = _make_cluster(tmp_path_factory, ["--simulated-nodes", str(len(NODES))])
    c.start()
    wait_until(lambda: "sim-node-1" in c.kubectl("get", "nodes", "-o", "name").stdout, what="simulated nodes")
    yield c
    c.stop()


@pytest.fixture
def ns(sim: Cluster) -> Iterator[str]:
    name = "v-" + uuid.uuid4().hex[:8]
    sim.kubectl("create", "namespace", name)
    yield name
    sim.kubectl("delete", "namespace", name, "--wait=false", check=False)


def get(c: Cluster, *args: str) -> dict:
    return json.loads(c.kubectl("get", *args, "-o", "json").stdout)


def phase(c: Cluster, *args: str) -> str:
    r = c.kubectl("get", *args, "-o", "jsonpath={.status.phase}", check=False)
    return r.stdout if r.returncode == 0 else "<gone>"


def rows(c: Cluster, *args: str) -> list[list[str]]:
    out = c.kubectl("get", *args).stdout.splitlines()
    return [line.split() for line in out]


def pv_manifest(name: str, size: str, cls: str = "manual", policy: str = "Retain", extra: str = "") -> str:
    return f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {name}}}
spec:
  capacity: {{storage: {size}}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: {policy}
  storageClassName: "{cls}"
  hostPath: {{path: /tmp/{name}}}
{extra}"""


def pvc_manifest(name: str, size: str, cls: str | None = "manual") -> str:
    cls_line = f'  storageClassName: "{cls}"\n' if cls is not None else ""
    return f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}}}
spec:
  accessModes: [ReadWriteOnce]
{cls_line}  resources: {{requests: {{storage: {size}}}}}
"""


def pod_manifest(name: str, claim: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  containers: [{{name: main, image: busybox, volumeMounts: [{{name: data, mountPath: /data}}]}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: {claim}}}}}]
"""


def test_static_volume_binds_smallest_match_and_is_released(sim: Cluster, ns: str) -> None:
    small, big = f"small-{ns}", f"big-{ns}"
    sim.kubectl("apply", "-f", "-", input=pv_manifest(big, "5Gi") + "---" + pv_manifest(small, "1Gi"))
    wait_until(lambda: phase(sim, "pv", small) == "Available" and phase(sim, "pv", big) == "Available",
               what="volumes Available")
    header, *_ = rows(sim, "pv", small)
    assert header == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM", "STORAGECLASS",
                      "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
    sim.kubectl("apply", "-n", ns, "-f", "-", input=pvc_manifest("data", "500Mi"))
    wait_until(lambda: phase(sim, "pvc", "data", "-n", ns) == "Bound", what="claim Bound")
    pvc = get(sim, "pvc", "data", "-n", ns)
    assert pvc["spec"]["volumeName"] == small  # the smallest volume that fits
    assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    assert pvc["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert pvc["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    assert pvc["status"]["capacity"] == {"storage": "1Gi"} and pvc["status"]["accessModes"] == ["ReadWriteOnce"]
    _, row = rows(sim, "pvc", "data", "-n", ns)
    assert row[:6] == ["data", "Bound", small, "1Gi", "RWO", "manual"]
    _, row = rows(sim, "pv", small)
    assert row[:6] == [small, "1Gi", "RWO", "Retain", "Bound", f"{ns}/data"]
    pv = get(sim, "pv", small)
    assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]
    assert pv["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    assert phase(sim, "pv", big) == "Available"

    # Retain: deleting the claim releases the volume and keeps it, claim reference and all
    sim.kubectl("delete", "pvc", "data", "-n", ns)
    wait_until(lambda: phase(sim, "pv", small) == "Released", what="volume Released")
    _, row = rows(sim, "pv", small)
    assert row[4:6] == ["Released", f"{ns}/data"]
    sim.kubectl("delete", "pv", small, big, "--timeout=20s")


def test_prebound_claim_and_mismatch_events(sim: Cluster, ns: str) -> None:
    vol = f"pre-{ns}"
    sim.kubectl("apply", "-f", "-", input=pv_manifest(vol, "1Gi"))
    claim = pvc_manifest("too-big", "2Gi") + f"  volumeName: {vol}\n"
    sim.kubectl("apply", "-n", ns, "-f", "-", input=claim)
    wait_until(lambda: has_event(sim, ns, "too-big", "VolumeMismatch",
                                 f'Cannot bind to requested volume "{vol}": requested PV is too small'),
               what="VolumeMismatch event")
    assert phase(sim, "pvc", "too-big", "-n", ns) == "Pending"
    sim.kubectl("apply", "-n", ns, "-f", "-", input=pvc_manifest("fits", "1Gi") + f"  volumeName: {vol}\n")
    wait_until(lambda: phase(sim, "pvc", "fits", "-n", ns) == "Bound", what="pre-bound claim Bound")
    # the user named the volume: the claim does not say the controller chose it
    ann = get(sim, "pvc", "fits", "-n", ns)["metadata"]["annotations"]
    assert ann["pv.kubernetes.io/bind-completed"] == "yes" and "pv.kubernetes.io/bound-by-controller" not in ann
    sim.kubectl("delete", "pvc", "fits", "too-big", "-n", ns)
    sim.kubectl("delete", "pv", vol, "--timeout=20s")


def test_default_class_provisions_on_first_consumer(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=pvc_manifest("data", "1Gi", cls=None))
    pvc = get(sim, "pvc", "data", "-n", ns)
    assert pvc["spec"]["storageClassName"] == "local-path"  # DefaultStorageClass admission
    wait_until(lambda: has_event(sim, ns, "data", "WaitForFirstConsumer",
                                 "waiting for first consumer to be created before binding"), what="WaitForFirstConsumer")
    assert phase(sim, "pvc", "data", "-n", ns) == "Pending"
    _, row = rows(sim, "pvc", "data", "-n", ns)
    assert row[:3] == ["data", "Pending", "local-path"]

    sim.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("user", "data"))
    wait_until(lambda: phase(sim, "pvc", "data", "-n", ns) == "Bound", what="claim Bound")
    pvc = get(sim, "pvc", "data", "-n", ns)
    node = pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"]
    assert node in NODES
    assert pvc["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
    pv_name = f"pvc-{pvc['metadata']['uid']}"
    assert pvc["spec"]["volumeName"] == pv_name
    pv = get(sim, "pv", pv_name)
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path"
    assert pv["spec"]["hostPath"]["path"].endswith(f"/storage/{pv_name}_{ns}_data")
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]
    _, row = rows(sim, "pv", pv_name)
    assert row[:7] == [pv_name, "1Gi", "RWO", "Delete", "Bound", f"{ns}/data", "local-path"]
    wait_until(lambda: phase(sim, "pod", "user", "-n", ns) == "Running", what="pod Running")
    assert get(sim, "pod", "user", "-n", ns)["spec"]["nodeName"] == node
    describe = sim.kubectl("describe", "pvc", "data", "-n", ns).stdout
    for text in ("StorageClass:  local-path", "Status:        Bound", f"Volume:        {pv_name}", "Used By:       user",
                 "ExternalProvisioning", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}",
                 f'External provisioner is provisioning volume for claim "{ns}/data"'):
        assert text in describe, text

    # reclaimPolicy Delete: the claim's end is the volume's end
    sim.kubectl("delete", "pod", "user", "-n", ns, "--grace-period=0", "--force")
    sim.kubectl("delete", "pvc", "data", "-n", ns, "--timeout=30s")
    wait_until(lambda: sim.kubectl("get", "pv", pv_name, check=False).returncode != 0, what="volume deleted")


def test_unbound_immediate_claim_keeps_pod_pending_until_a_volume_appears(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=pvc_manifest("imm", "2Gi", cls=""))
    sim.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("waiter", "imm"))
    wait_until(lambda: has_event(sim, ns, "waiter", "FailedScheduling",
                                 "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."),
               what="FailedScheduling")
    assert has_event(sim, ns, "imm", "FailedBinding",
                     "no persistent volumes available for this claim and no storage class is set")
    vol = f"imm-{ns}"
    sim.kubectl("apply", "-f", "-", input=pv_manifest(vol, "3Gi", cls=""))
    wait_until(lambda: phase(sim, "pvc", "imm", "-n", ns) == "Bound", what="claim Bound to the new volume")
    wait_until(lambda: phase(sim, "pod", "waiter", "-n", ns) == "Running", what="pod scheduled and Running")
    sim.kubectl("delete", "pod", "waiter", "-n", ns, "--grace-period=0", "--force")
    sim.kubectl("delete", "pvc", "imm", "-n", ns, "--timeout=30s")
    sim.kubectl("delete", "pv", vol, "--timeout=20s")


def test_statefulset_claims_bind_one_per_replica(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input="""
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: main, image: busybox, volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
""")
    wait_until(lambda: get(sim, "sts", "web", "-n", ns).get("status", {}).get("readyReplicas") == 2,
               timeout=60, what="2 ready replicas")
    claims = {p["metadata"]["name"]: p for p in get(sim, "pvc", "-n", ns)["items"]}
    assert sorted(claims) == ["data-web-0", "data-web-1"]
    for ordinal in (0, 1):
        pvc = claims[f"data-web-{ordinal}"]
        assert pvc["status"]["phase"] == "Bound" and pvc["spec"]["storageClassName"] == "local-path"
        pod = get(sim, "pod", f"web-{ordinal}", "-n", ns)
        assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == pod["spec"]["nodeName"]
        pv = get(sim, "pv", pvc["spec"]["volumeName"])
        assert pv["spec"]["claimRef"]["name"] == f"data-web-{ordinal}"


def test_claim_in_use_stays_terminating_until_its_pod_is_gone(sim: Cluster, ns: str) -> None:
    sim.kubectl("apply", "-n", ns, "-f", "-", input=pvc_manifest("held", "1Gi", cls=None) + "---" +
                pod_manifest("holder", "held"))
    wait_until(lambda: phase(sim, "pod", "holder", "-n", ns) == "Running", what="pod Running")
    sim.kubectl("delete", "pvc", "held", "-n", ns, "--wait=false")
    wait_until(lambda: rows(sim, "pvc", "held", "-n", ns)[1][1] == "Terminating", what="claim Terminating")
    pvc = get(sim, "pvc", "held", "-n", ns)
    assert pvc["metadata"]["deletionTimestamp"] and pvc["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    # a new pod cannot use a claim being deleted
    sim.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("late", "held"))
    wait_until(lambda: has_event(sim, ns, "late", "FailedScheduling", 'persistentvolumeclaim "held" is being deleted'),
               what="late pod rejected")
    assert sim.kubectl("get", "pvc", "held", "-n", ns, check=False).returncode == 0
    sim.kubectl("delete", "pod", "holder", "late", "-n", ns)
    wait_until(lambda: sim.kubectl("get", "pvc", "held", "-n", ns, check=False).returncode != 0, what="claim gone")
