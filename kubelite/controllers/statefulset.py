"""StatefulSetController (upstream pkg/controller/statefulset): pods with stable ordinal identities.

Watches StatefulSets, pods and ControllerRevisions; owns pods `<sts>-<ordinal>`, their
PersistentVolumeClaims `<template>-<sts>-<ordinal>` and ControllerRevisions. One sync computes
the current and update revisions, then walks the ordinals: recreate failed pods, create missing
ones, delete condemned ones from the highest ordinal down, and under RollingUpdate replace pods
of the old revision from the highest ordinal down to the partition. OrderedReady does one step
at a time and waits for Running+Ready; Parallel does not wait.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.api.selectors import LabelSelector, selector_from_label_selector
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory, split_meta_namespace_key
from kubelite.controllers import controller_revisions as history
from kubelite.controllers import podutil
from kubelite.controllers.refmanager import ControllerRefManager, controller_ref, recheck_owner
from kubelite.controllers.workloads import requeue_on_conflict

log = logging.getLogger(__name__)

Obj = dict[str, Any]

KIND = "StatefulSet"
API_VERSION = "apps/v1"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = history.CONTROLLER_REVISION_HASH_LABEL


def _selector(sts: Obj) -> LabelSelector:
    try:
        return selector_from_label_selector((sts.get("spec") or {}).get("selector"))
    except Exception:
        return LabelSelector.nothing()


def _replicas(sts: Obj) -> int:
    r = (sts.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def _start_ordinal(sts: Obj) -> int:
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    m = re.fullmatch(r"(.*)-([0-9]+)", (pod.get("metadata") or {}).get("name", ""))
    if not m:
        return "", -1
    return m.group(1), int(m.group(2))


def is_member_of(sts: Obj, pod: Obj) -> bool:
    return parent_and_ordinal(pod)[0] == sts["metadata"]["name"]


def pod_revision(pod: Obj) -> str:
    return ((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL, "")


def is_created(pod: Obj | None) -> bool:
    return pod is not None and bool((pod.get("metadata") or {}).get("uid"))


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def is_running_and_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and podutil.is_pod_ready(pod)


def is_healthy(pod: Obj) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def is_failed(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Failed"


def is_succeeded(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Succeeded"


def claim_name(template: Obj, sts: Obj, ordinal: int) -> str:
    """getPersistentVolumeClaimName: `<template>-<sts>-<ordinal>`."""
    return f"{(template.get('metadata') or {}).get('name', '')}-{sts['metadata']['name']}-{ordinal}"


def apply_revision(sts: Obj, revision: Obj) -> Obj:
    """ApplyRevision: the set with its template replaced by the one the revision recorded."""
    out = metautil.deep_copy(sts)
    template = metautil.deep_copy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    out.setdefault("spec", {})["template"] = template
    return out


def new_statefulset_pod(sts: Obj, ordinal: int) -> Obj:
    """newStatefulSetPod: template, ordinal name, identity (hostname, subdomain, labels) and storage."""
    template = (sts.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    sm = sts["metadata"]
    name = f"{sm['name']}-{ordinal}"
    labels = dict(tmeta.get("labels") or {})
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    meta: Obj = {"name": name, "namespace": sm["namespace"], "labels": labels,
                 "ownerReferences": [{"apiVersion": API_VERSION, "kind": KIND, "name": sm["name"], "uid": sm["uid"],
                                      "controller": True, "blockOwnerDeletion": True}]}
    for k in ("annotations", "finalizers"):
        if tmeta.get(k):
            meta[k] = metautil.deep_copy(tmeta[k])
    spec = metautil.deep_copy(template.get("spec") or {})
    spec["hostname"] = name
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        spec["subdomain"] = service
    claims = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
    if claims:
        volumes = [v for v in spec.get("volumes") or []
                   if v.get("name") not in {(c.get("metadata") or {}).get("name") for c in claims}]
        for c in claims:
            volumes.append({"name": (c.get("metadata") or {}).get("name", ""),
                            "persistentVolumeClaim": {"claimName": claim_name(c, sts, ordinal)}})
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def identity_matches(sts: Obj, pod: Obj) -> bool:
    parent, ordinal = parent_and_ordinal(pod)
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return (ordinal >= 0 and parent == sts["metadata"]["name"]
            and pod["metadata"].get("namespace") == sts["metadata"]["namespace"]
            and labels.get(POD_NAME_LABEL) == pod["metadata"]["name"]
            and labels.get(POD_INDEX_LABEL) == str(ordinal))


class StatefulSetController:
    """kube-controller-manager's statefulset controller."""

    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 2):
        self.client = client
        self.sts_client = client.resource("apps", "v1", "statefulsets")
        self.pods = client.resource("", "v1", "pods")
        self.pvcs = client.resource("", "v1", "persistentvolumeclaims")
        self.revisions = client.resource("apps", "v1", "controllerrevisions")
        self.sts_informer = factory.informer("apps", "v1", "statefulsets")
        self.pod_informer = factory.informer("", "v1", "pods")
        self.cr_informer = factory.informer("apps", "v1", "controllerrevisions")
        self.pvc_informer = factory.informer("", "v1", "persistentvolumeclaims")
        self.recorder = EventRecorder(client, "statefulset-controller")
        self.controller = Controller("statefulset-controller", self.sync, workers=workers)
        self.controller.watch(self.sts_informer)
        self.controller.watch(self.pod_informer, self._pod_key)
        self.controller.watch(self.cr_informer, self._owner_key)

    def _owner_key(self, obj: Obj) -> str | None:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != KIND:
            return None
        ns = obj["metadata"].get("namespace")
        sts = self.sts_informer.store.get(ns, ref.get("name", ""))
        if sts is None or sts["metadata"].get("uid") != ref.get("uid"):
            return None
        return f"{ns}/{ref['name']}"

    def _pod_key(self, pod: Obj) -> str | None:
        key = self._owner_key(pod)
        if key or controller_ref(pod) is not None:
            return key
        ns = pod["metadata"].get("namespace")
        labels = pod["metadata"].get("labels") or {}
        for sts in self.sts_informer.store.list(ns):  # an orphan: the first set that may adopt it
            if _selector(sts).matches(labels):
                return f"{ns}/{sts['metadata']['name']}"
        return None

    # ---------------------------------------------------------------- sync
    @requeue_on_conflict
    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        sts = self.sts_informer.store.get(ns, name)
        if sts is None:
            return None
        selector = _selector(sts)
        if selector.empty():
            self.recorder.event(sts, "Warning", "SelectingAll",
                                "This statefulset is selecting all pods. A non-empty selector is required.")
            return None
        mgr = ControllerRefManager(self.pods, sts, API_VERSION, KIND,
                                   lambda p: selector.matches((p.get("metadata") or {}).get("labels") or {})
                                   and is_member_of(sts, p), recheck_owner(self.sts_client, sts))
        pods = await mgr.claim(self.pod_informer.store.list(ns))
        revisions = history.sort_revisions(history.owned_revisions(self.cr_informer.store, sts))
        current, update, collision = await self._revisions(sts, revisions)
        status = await self._update_statefulset(sts, current, update, collision, pods)
        requeue = await self._update_status(sts, status)
        await self._truncate_history(sts, pods, revisions, current, update)
        return requeue

    async def _revisions(self, sts: Obj, revisions: list[Obj]) -> tuple[Obj, Obj, int]:
        """getStatefulSetRevisions: the update revision (reused, renumbered or created) and the current one."""
        collision = int((sts.get("status") or {}).get("collisionCount") or 0)
        template_labels = (((sts.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")
        candidate = history.new_controller_revision(sts, KIND, API_VERSION, template_labels,
                                                    history.template_patch(sts), history.next_revision(revisions),
                                                    collision)
        equal = history.find_equal_revisions(revisions, candidate)
        if equal and revisions and history.equal_revision(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            fresh = dict(equal[-1])
            fresh["revision"] = candidate["revision"]
            update = await self.revisions.update(fresh, namespace=sts["metadata"]["namespace"])
        else:
            update, collision = await history.create_controller_revision(self.revisions, sts, candidate, collision)
        cur_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if r["metadata"]["name"] == cur_name), None) or update
        return current, update, collision

    async def _truncate_history(self, sts: Obj, pods: list[Obj], revisions: list[Obj], current: Obj,
                                update: Obj) -> None:
        live = {current["metadata"]["name"], update["metadata"]["name"]} | {pod_revision(p) for p in pods}
        old = [r for r in revisions if r["metadata"]["name"] not in live]
        await history.truncate_history(self.revisions, old, live, (sts.get("spec") or {}).get("revisionHistoryLimit"))

    # ---------------------------------------------------------------- the ordinal walk
    async def _update_statefulset(self, sts: Obj, current: Obj, update: Obj, collision: int,
                                  pods: list[Obj]) -> Obj:
        spec = sts.get("spec") or {}
        current_set = apply_revision(sts, current)
        update_set = apply_revision(sts, update)
        cur_name, upd_name = current["metadata"]["name"], update["metadata"]["name"]
        min_ready = spec.get("minReadySeconds") or 0
        status: Obj = {"observedGeneration": sts["metadata"].get("generation", 1), "currentRevision": cur_name,
                       "updateRevision": upd_name, "collisionCount": collision,
                       "replicas": 0, "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0,
                       "updatedReplicas": 0}
        for p in pods:
            self._count(status, p, cur_name, upd_name, min_ready)
        start = _start_ordinal(sts)
        n = _replicas(sts)
        replicas: list[Obj | None] = [None] * n
        condemned: list[Obj] = []
        for p in pods:
            _, ordinal = parent_and_ordinal(p)
            if start <= ordinal < start + n:
                replicas[ordinal - start] = p
            elif ordinal >= 0:
                condemned.append(p)
        strategy = spec.get("updateStrategy") or {}
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        cur_status_replicas = int((sts.get("status") or {}).get("currentReplicas") or 0)

        def versioned(ordinal: int) -> Obj:
            """newVersionedStatefulSetPod: below the partition pods keep the current revision."""
            rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
            use_current = rolling and ((strategy.get("rollingUpdate") is None and ordinal < cur_status_replicas) or
                                       (strategy.get("rollingUpdate") is not None and ordinal < partition))
            if use_current:
                pod = new_statefulset_pod(current_set, ordinal)
                pod["metadata"]["labels"][REVISION_LABEL] = cur_name
            else:
                pod = new_statefulset_pod(update_set, ordinal)
                pod["metadata"]["labels"][REVISION_LABEL] = upd_name
            return pod

        for i in range(n):
            if replicas[i] is None:
                replicas[i] = versioned(start + i)
        condemned.sort(key=lambda p: parent_and_ordinal(p)[1], reverse=True)
        if sts["metadata"].get("deletionTimestamp"):
            return status
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
        first_unhealthy = next((p for p in replicas if p is not None and is_created(p) and not is_healthy(p)), None) \
            or next((p for p in condemned if not is_healthy(p)), None)

        for i in range(n):
            pod = replicas[i]
            assert pod is not None
            if is_created(pod) and (is_failed(pod) or is_succeeded(pod)) and not is_terminating(pod):
                self.recorder.event(sts, "Warning", "RecreatingFailedPod" if is_failed(pod) else
                                    "RecreatingTerminatedPod",
                                    f"StatefulSet {sts['metadata']['namespace']}/{sts['metadata']['name']} is "
                                    f"recreating {'failed' if is_failed(pod) else 'terminated'} Pod {pod['metadata']['name']}")
                await self._delete_pod(sts, pod)
                self._uncount(status, pod, cur_name, upd_name)
                replicas[i] = pod = versioned(start + i)
                if monotonic:
                    return status  # the deletion must be observed before the pod is created again
            if not is_created(pod):
                await self._create_pod(sts, pod, start + i, n)
                status["replicas"] += 1
                if pod_revision(pod) == cur_name:
                    status["currentReplicas"] += 1
                if pod_revision(pod) == upd_name:
                    status["updatedReplicas"] += 1
                if monotonic:
                    return status
                continue
            if is_terminating(pod):
                if monotonic:
                    return status
                continue
            if monotonic and not is_running_and_ready(pod):
                return status
            if monotonic and not podutil.is_pod_available(pod, min_ready):
                return status
            await self._fix_identity_and_storage(sts, pod, start + i, n)

        for pod in condemned:
            if is_terminating(pod):
                if monotonic:
                    return status
                continue
            if monotonic and not is_running_and_ready(pod) and pod is not first_unhealthy:
                return status
            await self._delete_pod(sts, pod)
            self._uncount(status, pod, cur_name, upd_name)
            if monotonic:
                return status

        if strategy.get("type", "RollingUpdate") == "OnDelete":
            return status
        for i in range(n - 1, max(partition - start, 0) - 1, -1):
            pod = replicas[i]
            assert pod is not None
            if pod_revision(pod) != upd_name and not is_terminating(pod):
                await self._delete_pod(sts, pod)
                if pod_revision(pod) == cur_name:
                    status["currentReplicas"] -= 1
                return status
            if not is_healthy(pod):
                return status
        return status

    @staticmethod
    def _count(status: Obj, pod: Obj, cur: str, upd: str, min_ready: int) -> None:
        """computeReplicaStatus for one pod."""
        if not is_created(pod):
            return
        status["replicas"] += 1
        if is_running_and_ready(pod):
            status["readyReplicas"] += 1
            if podutil.is_pod_available(pod, min_ready):
                status["availableReplicas"] += 1
        if not is_terminating(pod):
            if pod_revision(pod) == cur:
                status["currentReplicas"] += 1
            if pod_revision(pod) == upd:
                status["updatedReplicas"] += 1

    @staticmethod
    def _uncount(status: Obj, pod: Obj, cur: str, upd: str) -> None:
        status["replicas"] -= 1
        if pod_revision(pod) == cur:
            status["currentReplicas"] -= 1
        if pod_revision(pod) == upd:
            status["updatedReplicas"] -= 1

    # ---------------------------------------------------------------- pod and claim control
    def _claim_owner_refs(self, sts: Obj, pod: Obj | None, ordinal: int, replicas: int) -> list[Obj]:
        """updateClaimOwnerRefForSetAndPod: a condemned pod's claim is owned by the pod when whenScaled
        is Delete (it goes with the pod); otherwise by the set when whenDeleted is Delete."""
        policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
        sm = sts["metadata"]
        condemned = ordinal >= replicas + _start_ordinal(sts)
        if policy.get("whenScaled") == "Delete" and condemned:
            if pod is not None and is_created(pod):
                return [{"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                         "uid": pod["metadata"]["uid"]}]
            return []
        if policy.get("whenDeleted") == "Delete":
            return [{"apiVersion": API_VERSION, "kind": KIND, "name": sm["name"], "uid": sm["uid"],
                     "controller": True, "blockOwnerDeletion": True}]
        return []

    async def _create_claims(self, sts: Obj, pod: Obj, ordinal: int, replicas: int) -> None:
        sm = sts["metadata"]
        match_labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        for tmpl in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            name = claim_name(tmpl, sts, ordinal)
            if self.pvc_informer.store.get(sm["namespace"], name) is not None:
                continue
            claim = metautil.deep_copy(tmpl)
            claim.pop("status", None)
            cm = claim.setdefault("metadata", {})
            cm["name"] = name
            cm["namespace"] = sm["namespace"]
            cm["labels"] = {**(cm.get("labels") or {}), **match_labels}
            refs = self._claim_owner_refs(sts, None, ordinal, replicas)
            if refs:
                cm["ownerReferences"] = refs
            claim["apiVersion"], claim["kind"] = "v1", "PersistentVolumeClaim"
            try:
                await self.pvcs.create(claim, namespace=sm["namespace"])
            except StatusError as e:
                if e.code == 409:
                    continue
                self.recorder.event(sts, "Warning", "FailedCreate",
                                    f"create Claim {name} for Pod {pod['metadata']['name']} in StatefulSet "
                                    f"{sm['name']} failed error: {e.message}")
                raise
            self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                f"create Claim {name} Pod {pod['metadata']['name']} in StatefulSet {sm['name']} success")

    async def _create_pod(self, sts: Obj, pod: Obj, ordinal: int, replicas: int) -> None:
        sm = sts["metadata"]
        await self._create_claims(sts, pod, ordinal, replicas)
        try:
            await self.pods.create(pod, namespace=sm["namespace"])
        except StatusError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                return
            if e.code == 403 and "being terminated" in e.message:
                return
            self.recorder.event(sts, "Warning", "FailedCreate",
                                f"create Pod {pod['metadata']['name']} in StatefulSet {sm['name']} failed error: "
                                f"{e.message}")
            raise
        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                            f"create Pod {pod['metadata']['name']} in StatefulSet {sm['name']} successful")

    async def _delete_pod(self, sts: Obj, pod: Obj) -> None:
        m = pod["metadata"]
        _, ordinal = parent_and_ordinal(pod)
        await self._update_claim_owners(sts, pod, ordinal, _replicas(sts))
        try:
            await self.pods.delete(m["name"], namespace=m["namespace"], preconditions={"uid": m["uid"]})
        except StatusError as e:
            if e.code == 404:
                return
            self.recorder.event(sts, "Warning", "FailedDelete",
                                f"delete Pod {m['name']} in StatefulSet {sts['metadata']['name']} failed error: "
                                f"{e.message}")
            raise
        self.recorder.event(sts, "Normal", "SuccessfulDelete",
                            f"delete Pod {m['name']} in StatefulSet {sts['metadata']['name']} successful")

    async def _update_claim_owners(self, sts: Obj, pod: Obj, ordinal: int, replicas: int) -> None:
        """updateClaimOwnerRefForSetAndPod: keep claim ownership in line with the retention policy."""
        ns = sts["metadata"]["namespace"]
        want = self._claim_owner_refs(sts, pod, ordinal, replicas)
        managed_uids = {sts["metadata"]["uid"], pod["metadata"].get("uid")}
        for tmpl in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            claim = self.pvc_informer.store.get(ns, claim_name(tmpl, sts, ordinal))
            if claim is None:
                continue
            refs = claim["metadata"].get("ownerReferences") or []
            others = [r for r in refs if r.get("uid") not in managed_uids
                      and not (r.get("kind") == KIND and r.get("name") == sts["metadata"]["name"])]
            new_refs = others + want
            if new_refs == refs:
                continue
            try:
                await self.pvcs.patch(claim["metadata"]["name"], {"metadata": {
                    "ownerReferences": new_refs or None,
                    "resourceVersion": claim["metadata"]["resourceVersion"]}}, namespace=ns)
            except StatusError as e:
                if e.code not in (404, 409):
                    raise

    async def _fix_identity_and_storage(self, sts: Obj, pod: Obj, ordinal: int, replicas: int) -> None:
        """UpdateStatefulPod: a pod whose identity labels drifted is fixed; claims missing are created."""
        await self._create_claims(sts, pod, ordinal, replicas)
        await self._update_claim_owners(sts, pod, ordinal, replicas)
        if identity_matches(sts, pod):
            return
        name = pod["metadata"]["name"]
        patch = {"metadata": {"labels": {POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)},
                              "resourceVersion": pod["metadata"]["resourceVersion"]}}
        try:
            await self.pods.patch(name, patch, namespace=pod["metadata"]["namespace"])
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    # ---------------------------------------------------------------- status
    async def _update_status(self, sts: Obj, status: Obj) -> float | None:
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate" and \
                status["updatedReplicas"] == status["replicas"] and status["readyReplicas"] == status["replicas"]:
            status["currentReplicas"] = status["updatedReplicas"]
            status["currentRevision"] = status["updateRevision"]
        for k in ("readyReplicas", "currentReplicas", "updatedReplicas"):  # omitempty upstream
            if not status[k]:
                del status[k]
        old = sts.get("status") or {}
        for k in ("conditions",):
            if old.get(k) is not None:
                status[k] = old[k]
        requeue = None
        min_ready = (sts.get("spec") or {}).get("minReadySeconds") or 0
        if min_ready and status["availableReplicas"] < status.get("readyReplicas", 0):
            requeue = float(min_ready)
        norm = {k: v for k, v in old.items() if v not in (0, None, "")}
        if norm == {k: v for k, v in status.items() if v not in (0, None, "")}:
            return requeue
        obj = dict(sts)
        obj["status"] = status
        try:
            await self.sts_client.update_status(obj)
        except StatusError as e:
            if e.code == 404:
                return None
            if e.code != 409:
                raise
            fresh = await self.sts_client.get(sts["metadata"]["name"], namespace=sts["metadata"]["namespace"])
            fresh["status"] = status
            await self.sts_client.update_status(fresh)
        return requeue

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()
