"""Upstream's sig-storage API conformance behaviours, end to end on one kubelite through the official client:
the lifecycles of CSIDriver, CSINode, StorageClass, VolumeAttachment (and its status), CSIStorageCapacity's
API operations, and PersistentVolume / PersistentVolumeClaim lifecycles and status.

Given a cluster, when a client creates, reads, patches, updates, lists, watches and deletes these objects
(one by one and by collection), then each step is observed as upstream's e2e tests require.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from conftest import Cluster
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


@pytest.fixture(scope="module")
def api(module_cluster: Cluster) -> Iterator[client.ApiClient]:
    c = module_cluster.api_client()
    yield c
    c.close()


@pytest.fixture
def ns(api) -> Iterator[str]:
    name = "e2e-storage-" + uuid.uuid4().hex[:6]
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    yield name
    client.CoreV1Api(api).delete_namespace(name)


def uid() -> str:
    return uuid.uuid4().hex[:6]


def wait_until(check: Callable, timeout: float = 30, what: str = "condition"):
    deadline = time.time() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def gone(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as e:
        assert e.status == 404, e
        return True
    return False


def labels_of(obj) -> dict:
    return obj.metadata.labels or {}


# ------------------------------------------------------------------ CSIDriver
@pytest.mark.conformance("CSIDriver, lifecycle")
def test_csidriver_lifecycle(api) -> None:
    storage = client.StorageV1Api(api)
    label = "e2e-csidriver-" + uid()
    names = [f"inline-driver-{uid()}", f"inline-driver-{uid()}"]

    def driver(name: str) -> dict:
        return {"metadata": {"name": name, "labels": {label: "true"}},
                "spec": {"volumeLifecycleModes": ["Ephemeral"]}}

    created = [storage.create_csi_driver(driver(n)) for n in names]
    assert [d.metadata.name for d in created] == names
    assert storage.read_csi_driver(names[0]).metadata.uid == created[0].metadata.uid
    patched = storage.patch_csi_driver(names[0], {"metadata": {"labels": {names[0]: "patched"}}})
    assert labels_of(patched)[names[0]] == "patched"
    current = storage.read_csi_driver(names[1])
    current.metadata.labels[names[1]] = "updated"
    updated = storage.replace_csi_driver(names[1], current)
    assert labels_of(updated)[names[1]] == "updated"
    listed = storage.list_csi_driver(label_selector=f"{label}=true")
    assert sorted(d.metadata.name for d in listed.items) == sorted(names)
    storage.delete_csi_driver(names[0])
    wait_until(lambda: gone(lambda: storage.read_csi_driver(names[0])), what="first CSIDriver deleted")
    storage.delete_collection_csi_driver(label_selector=f"{label}=true")
    wait_until(lambda: not storage.list_csi_driver(label_selector=f"{label}=true").items,
               what="CSIDrivers deleted by collection")


@pytest.mark.conformance("CSIInlineVolumes should support Pods with inline volumes")
def test_pod_with_inline_csi_volume_api(api, ns: str) -> None:
    core = client.CoreV1Api(api)
    name = "pod-csi-inline-volumes-" + uid()
    csi = {"driver": "e2e.example.com", "volumeAttributes": {"foo": "bar"}, "readOnly": True,
           "nodePublishSecretRef": {"name": "inline-secret"}}
    pod = {"metadata": {"name": name, "labels": {"e2e-csi-inline": name}},
           "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                    "volumeMounts": [{"name": "vol", "mountPath": "/mnt/vol"}]}],
                    "volumes": [{"name": "vol", "csi": csi}]}}
    created = core.create_namespaced_pod(ns, pod)
    got = core.read_namespaced_pod(name, ns)
    assert got.metadata.uid == created.metadata.uid
    volume = got.spec.volumes[0].csi
    assert (volume.driver, volume.volume_attributes, volume.read_only) == ("e2e.example.com", {"foo": "bar"}, True)
    assert volume.node_publish_secret_ref.name == "inline-secret"
    listed = core.list_namespaced_pod(ns, label_selector=f"e2e-csi-inline={name}")
    assert [p.metadata.name for p in listed.items] == [name]
    patched = core.patch_namespaced_pod(name, ns, {"metadata": {"annotations": {"patched": "true"}}})
    assert patched.metadata.annotations["patched"] == "true"
    assert patched.spec.volumes[0].csi.driver == "e2e.example.com"
    core.delete_namespaced_pod(name, ns, grace_period_seconds=0)
    wait_until(lambda: gone(lambda: core.read_namespaced_pod(name, ns)), what="inline CSI pod deleted")


# ------------------------------------------------------------------ CSINode
@pytest.mark.conformance("CSINode, lifecycle")
def test_csinode_lifecycle(api) -> None:
    storage = client.StorageV1Api(api)
    name = "e2e-csinode-" + uid()
    label = {"e2e-csinode": name}
    selector = f"e2e-csinode={name}"
    created = storage.create_csi_node({"metadata": {"name": name, "labels": label}, "spec": {"drivers": []}})
    assert storage.read_csi_node(name).metadata.name == created.metadata.name == name
    patched = storage.patch_csi_node(name, {"metadata": {"labels": {name: "patched"}}})
    assert labels_of(patched)[name] == "patched"
    listed = storage.list_csi_node(label_selector=selector)
    assert [n.metadata.name for n in listed.items] == [name]
    storage.delete_csi_node(name)
    wait_until(lambda: gone(lambda: storage.read_csi_node(name)), what="CSINode deleted")
    # a replacement, updated, then deleted by collection
    storage.create_csi_node({"metadata": {"name": name, "labels": label}, "spec": {"drivers": [
        {"name": "e2e.example.com", "nodeID": name, "topologyKeys": ["topology.e2e.example.com/zone"],
         "allocatable": {"count": 5}}]}})
    current = storage.read_csi_node(name)
    assert current.metadata.name == name and current.spec.drivers[0].allocatable.count == 5
    current.metadata.labels[name] = "updated"
    updated = storage.replace_csi_node(name, current)
    assert labels_of(updated)[name] == "updated"
    storage.delete_collection_csi_node(label_selector=selector)
    wait_until(lambda: not storage.list_csi_node(label_selector=selector).items, what="CSINodes deleted by collection")


# ------------------------------------------------------------------ CSIStorageCapacity
@pytest.mark.conformance("CSIStorageCapacity API")
def test_csistoragecapacity_api(api, ns: str) -> None:
    storage = client.StorageV1Api(api)
    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
    assert "storage.k8s.io" in groups
    assert "storage.k8s.io/v1" in [v.group_version for v in groups["storage.k8s.io"].versions]
    resources = [r.name for r in storage.get_api_resources().resources]
    assert "csistoragecapacities" in resources
    label = "e2e-csisc-" + uid()

    def capacity(n: int) -> dict:
        return {"metadata": {"name": f"csisc-{n}-{uid()}", "labels": {label: "true"}},
                "storageClassName": "e2e-" + ns, "capacity": "1Gi", "maximumVolumeSize": "500Mi",
                "nodeTopology": {"matchLabels": {"topology.e2e.example.com/zone": f"zone-{n}"}}}

    created = [storage.create_namespaced_csi_storage_capacity(ns, capacity(n)) for n in (1, 2, 3)]
    first = created[0].metadata.name
    got = storage.read_namespaced_csi_storage_capacity(first, ns)
    assert got.metadata.uid == created[0].metadata.uid and got.capacity == "1Gi"
    listed = storage.list_namespaced_csi_storage_capacity(ns, label_selector=f"{label}=true")
    assert len(listed.items) == 3
    everywhere = storage.list_csi_storage_capacity_for_all_namespaces(label_selector=f"{label}=true")
    assert len(everywhere.items) == 3
    events: list[tuple[str, str]] = []
    w = watch.Watch()

    def follow() -> None:
        try:
            for ev in w.stream(storage.list_namespaced_csi_storage_capacity, ns, label_selector=f"{label}=true",
                               resource_version=listed.metadata.resource_version, timeout_seconds=30):
                events.append((ev["type"], ev["object"].metadata.name))
        except Exception:  # the namespace (and the cluster) go away at the end
            pass
    threading.Thread(target=follow, daemon=True).start()
    patched = storage.patch_namespaced_csi_storage_capacity(first, ns, {"metadata": {"annotations": {"patched": "true"}}})
    assert patched.metadata.annotations["patched"] == "true"
    wait_until(lambda: ("MODIFIED", first) in events, what="watch event of the patch")
    patched.metadata.annotations["updated"] = "true"
    updated = storage.replace_namespaced_csi_storage_capacity(first, ns, patched)
    assert updated.metadata.annotations == {"patched": "true", "updated": "true"}
    storage.delete_namespaced_csi_storage_capacity(first, ns)
    wait_until(lambda: ("DELETED", first) in events, what="watch event of the delete")
    assert gone(lambda: storage.read_namespaced_csi_storage_capacity(first, ns))
    storage.delete_collection_namespaced_csi_storage_capacity(ns, label_selector=f"{label}=true")
    wait_until(lambda: not storage.list_namespaced_csi_storage_capacity(ns, label_selector=f"{label}=true").items,
               what="CSIStorageCapacities deleted by collection")
    w.stop()


# ------------------------------------------------------------------ StorageClass
@pytest.mark.conformance("StorageClass, lifecycle")
def test_storageclass_lifecycle(api) -> None:
    storage = client.StorageV1Api(api)
    label = "e2e-sc-" + uid()

    def storage_class() -> dict:
        return {"metadata": {"generateName": "e2e-", "labels": {label: "true"}},
                "provisioner": "e2e-fake-provisioner"}

    created = storage.create_storage_class(storage_class())
    name = created.metadata.name
    assert name.startswith("e2e-") and created.reclaim_policy == "Delete"
    assert created.volume_binding_mode == "Immediate"
    assert storage.read_storage_class(name).metadata.uid == created.metadata.uid
    patched = storage.patch_storage_class(name, {"metadata": {"labels": {name: "patched"}}})
    assert labels_of(patched)[name] == "patched"
    storage.delete_storage_class(name)
    wait_until(lambda: gone(lambda: storage.read_storage_class(name)), what="StorageClass deleted")
    replacement = storage.create_storage_class(storage_class())
    name = replacement.metadata.name
    replacement.metadata.labels[name] = "updated"
    updated = storage.replace_storage_class(name, replacement)
    assert labels_of(updated)[name] == "updated"
    storage.delete_collection_storage_class(label_selector=f"{name}=updated")
    wait_until(lambda: not storage.list_storage_class(label_selector=f"{label}=true").items,
               what="StorageClass deleted by collection")


# ------------------------------------------------------------------ VolumeAttachment
def volume_attachment(name: str, label: str, node: str) -> dict:
    return {"metadata": {"name": name, "labels": {label: "true"}},
            "spec": {"attacher": "e2e-test.storage.k8s.io", "nodeName": node,
                     "source": {"persistentVolumeName": "pv-" + name}}}


@pytest.mark.conformance("VolumeAttachment, lifecycle")
def test_volumeattachment_lifecycle(api) -> None:
    storage = client.StorageV1Api(api)
    label = "e2e-va-" + uid()
    selector = f"{label}=true"
    name = "va-" + uid()
    storage.create_volume_attachment(volume_attachment(name, label, "e2e-node"))
    assert storage.read_volume_attachment(name).metadata.name == name
    patched = storage.patch_volume_attachment(name, {"metadata": {"labels": {name: "patched"}}})
    assert labels_of(patched)[name] == "patched"
    listed = storage.list_volume_attachment(label_selector=f"{name}=patched")
    assert [v.metadata.name for v in listed.items] == [name]
    storage.delete_volume_attachment(name)
    wait_until(lambda: gone(lambda: storage.read_volume_attachment(name)), what="VolumeAttachment deleted")
    more = []
    for _ in range(2):
        other = "va-" + uid()
        storage.create_volume_attachment(volume_attachment(other, label, "e2e-node"))
        current = storage.read_volume_attachment(other)
        current.metadata.labels[other] = "updated"
        updated = storage.replace_volume_attachment(other, current)
        assert labels_of(updated)[other] == "updated"
        more.append(other)
    assert sorted(v.metadata.name for v in storage.list_volume_attachment(label_selector=selector).items) == sorted(more)
    storage.delete_collection_volume_attachment(label_selector=selector)
    wait_until(lambda: not storage.list_volume_attachment(label_selector=selector).items,
               what="VolumeAttachments deleted by collection")


@pytest.mark.conformance("VolumeAttachment, apply changes to a volumeattachment status")
def test_volumeattachment_status(api) -> None:
    storage = client.StorageV1Api(api)
    label = "e2e-va-" + uid()
    name = "va-" + uid()
    storage.create_volume_attachment(volume_attachment(name, label, "e2e-node"))
    patched = storage.patch_volume_attachment(name, {"metadata": {"labels": {name: "patched"}}})
    assert labels_of(patched)[name] == "patched"
    status = storage.read_volume_attachment_status(name)
    assert status.status.attached is False
    patched = storage.patch_volume_attachment_status(name, {"status": {"attached": True}})
    assert patched.status.attached is True
    assert patched.spec.node_name == "e2e-node"
    current = storage.read_volume_attachment(name)
    current.status.attached = False
    current.spec.node_name = "ignored-by-the-status-subresource"
    updated = storage.replace_volume_attachment_status(name, current)
    assert updated.status.attached is False and updated.spec.node_name == "e2e-node"
    storage.delete_volume_attachment(name)
    wait_until(lambda: gone(lambda: storage.read_volume_attachment(name)), what="VolumeAttachment deleted")


# ------------------------------------------------------------------ PersistentVolumes and claims
def _pv_and_pvc(core: client.CoreV1Api, ns: str, label: dict) -> tuple[str, str]:
    """e2epv.CreatePVsPVCs: one CSI PV of class `ns`, one claim of that class in ns."""
    pv = core.create_persistent_volume({
        "metadata": {"generateName": ns + "-", "labels": label},
        "spec": {"capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": ns,
                 "csi": {"driver": "e2e-driver-" + uid(), "volumeHandle": "e2e-conformance"}}})
    pvc = core.create_namespaced_persistent_volume_claim(ns, {
        "metadata": {"generateName": "pvc-"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": ns,
                 "resources": {"requests": {"storage": "2Gi"}}}})
    return pv.metadata.name, pvc.metadata.name


@pytest.mark.conformance("PersistentVolumes(Claims), lifecycle")
def test_pv_pvc_lifecycle(api, ns: str) -> None:
    core = client.CoreV1Api(api)
    label = {"e2e-pv-pool": ns}
    selector = f"e2e-pv-pool={ns}"
    pv_name, pvc_name = _pv_and_pvc(core, ns, label)
    pvs = core.list_persistent_volume(label_selector=selector).items
    assert [p.metadata.name for p in pvs] == [pv_name]
    pvcs = core.list_namespaced_persistent_volume_claim(ns).items
    assert [p.metadata.name for p in pvcs] == [pvc_name]
    patched_pv = core.patch_persistent_volume(pv_name, {"metadata": {"labels": {pv_name: "patched"}}})
    assert labels_of(patched_pv)[pv_name] == "patched"
    assert int(patched_pv.metadata.resource_version) > int(pvs[0].metadata.resource_version)
    patched_pvc = core.patch_namespaced_persistent_volume_claim(pvc_name, ns,
                                                                {"metadata": {"labels": {pvc_name: "patched"}}})
    assert labels_of(patched_pvc)[pvc_name] == "patched"
    assert int(patched_pvc.metadata.resource_version) > int(pvcs[0].metadata.resource_version)
    assert core.read_persistent_volume(pv_name).metadata.uid == patched_pv.metadata.uid
    assert core.read_namespaced_persistent_volume_claim(pvc_name, ns).metadata.uid == patched_pvc.metadata.uid
    core.delete_namespaced_persistent_volume_claim(pvc_name, ns)
    wait_until(lambda: not core.list_namespaced_persistent_volume_claim(ns).items, what="PVC deleted")
    core.delete_persistent_volume(pv_name)
    wait_until(lambda: not core.list_persistent_volume(label_selector=selector).items, what="PV deleted")

    # a replacement pair, updated, then deleted by collection
    pv_name, pvc_name = _pv_and_pvc(core, ns, label)

    def update_pv():
        pv = core.read_persistent_volume(pv_name)
        pv.metadata.labels[pv_name] = "updated"
        return core.replace_persistent_volume(pv_name, pv)
    assert labels_of(_retry_on_conflict(update_pv))[pv_name] == "updated"

    def update_pvc():
        pvc = core.read_namespaced_persistent_volume_claim(pvc_name, ns)
        pvc.metadata.labels = {pvc_name: "updated"}
        return core.replace_namespaced_persistent_volume_claim(pvc_name, ns, pvc)
    assert labels_of(_retry_on_conflict(update_pvc))[pvc_name] == "updated"
    pvc_selector = f"{pvc_name}=updated"
    listed = core.list_persistent_volume_claim_for_all_namespaces(label_selector=pvc_selector).items
    assert [p.metadata.name for p in listed] == [pvc_name]
    core.delete_collection_namespaced_persistent_volume_claim(ns, label_selector=pvc_selector)
    wait_until(lambda: not core.list_namespaced_persistent_volume_claim(ns, label_selector=pvc_selector).items,
               what="PVC deleted by collection")
    pv_selector = f"{pv_name}=updated"
    core.delete_collection_persistent_volume(label_selector=pv_selector)
    wait_until(lambda: not core.list_persistent_volume(label_selector=pv_selector).items,
               what="PV deleted by collection")


def _retry_on_conflict(update: Callable):
    for attempt in range(5):
        try:
            return update()
        except ApiException as e:
            if e.status != 409 or attempt == 4:
                raise


def _condition(conditions, type_: str):
    return next((c for c in conditions or [] if c.type == type_), None)


@pytest.mark.conformance("PersistentVolumes(Claims), apply changes to a pv/pvc status")
def test_pv_pvc_status(api, ns: str) -> None:
    core = client.CoreV1Api(api)
    label = {"e2e-pv-pool": ns}
    pv_name, pvc_name = _pv_and_pvc(core, ns, label)
    assert [p.metadata.name for p in core.list_persistent_volume(label_selector=f"e2e-pv-pool={ns}").items] == [pv_name]
    assert [p.metadata.name for p in core.list_namespaced_persistent_volume_claim(ns).items] == [pvc_name]
    pvc = core.read_namespaced_persistent_volume_claim_status(pvc_name, ns)
    assert pvc.status.phase in ("Pending", "Bound")
    pv = core.read_persistent_volume_status(pv_name)
    assert pv.status.phase in ("Available", "Bound", "Pending")

    patched_pvc = core.patch_namespaced_persistent_volume_claim_status(pvc_name, ns, {"status": {"conditions": [
        {"type": "StatusPatched", "status": "True", "reason": "E2E patchedStatus", "message": "Set from e2e test"}]}})
    cond = _condition(patched_pvc.status.conditions, "StatusPatched")
    assert cond is not None and cond.reason == "E2E patchedStatus" and "Set from e2e test" in cond.message
    patched_pv = core.patch_persistent_volume_status(pv_name, {"status": {"message": "StatusPatched",
                                                                          "reason": "E2E patchStatus"}})
    assert (patched_pv.status.reason, patched_pv.status.message) == ("E2E patchStatus", "StatusPatched")

    def update_pvc_status():
        current = core.read_namespaced_persistent_volume_claim(pvc_name, ns)
        current.status.conditions = (current.status.conditions or []) + [client.V1PersistentVolumeClaimCondition(
            type="StatusUpdated", status="True", reason="E2E updateStatus", message="Set from e2e test")]
        return core.replace_namespaced_persistent_volume_claim_status(pvc_name, ns, current)
    updated_pvc = _retry_on_conflict(update_pvc_status)
    cond = _condition(updated_pvc.status.conditions, "StatusUpdated")
    assert cond is not None and cond.reason == "E2E updateStatus"

    def update_pv_status():
        current = core.read_persistent_volume(pv_name)
        current.status.reason, current.status.message = "E2E updateStatus", "StatusUpdated"
        return core.replace_persistent_volume_status(pv_name, current)
    updated_pv = _retry_on_conflict(update_pv_status)
    assert (updated_pv.status.reason, updated_pv.status.message) == ("E2E updateStatus", "StatusUpdated")
    core.delete_namespaced_persistent_volume_claim(pvc_name, ns)
    core.delete_persistent_volume(pv_name)
