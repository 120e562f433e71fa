"""DaemonSetsController (upstream pkg/controller/daemon): one pod per eligible node.

Watches DaemonSets, pods, nodes and ControllerRevisions; owns pods and ControllerRevisions. One
sync claims pods, snapshots the template as a ControllerRevision, works out per node whether a
daemon pod should run (nodeSelector, required node affinity, taints against the pod's
tolerations), creates and deletes pods to match, advances a RollingUpdate within maxUnavailable /
maxSurge, prunes old revisions, and writes status. Pods are created unscheduled with a node
affinity on `metadata.name`; the scheduler binds them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.api.kinds.common import int_or_percent
from kubelite.api.selectors import LabelSelector, selector_from_label_selector
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory, split_meta_namespace_key
from kubelite.controllers import controller_revisions as history
from kubelite.controllers import podutil
from kubelite.controllers.daemonset import predicates
from kubelite.controllers.daemonset import util as dsutil
from kubelite.controllers.expectations import ControllerExpectations
from kubelite.controllers.refmanager import ControllerRefManager, controller_ref, recheck_owner
from kubelite.controllers.workloads import requeue_on_conflict

log = logging.getLogger(__name__)

Obj = dict[str, Any]

KIND = "DaemonSet"
API_VERSION = "apps/v1"
BURST_REPLICAS = 250
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
FAILED_POD_BACKOFF_MAX = 15 * 60.0


def _selector(ds: Obj) -> LabelSelector:
    try:
        return selector_from_label_selector((ds.get("spec") or {}).get("selector"))
    except Exception:
        return LabelSelector.nothing()


def _template_generation(ds: Obj) -> int | None:
    v = ((ds.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def _created(obj: Obj) -> float:
    return metautil.parse_time((obj.get("metadata") or {}).get("creationTimestamp")) or 0.0


def _by_creation_and_phase(pods: list[Obj]) -> list[Obj]:
    """podByCreationTimestampAndPhase: running (scheduled) pods first, then oldest first."""
    def key(p: Obj) -> tuple:
        running = bool((p.get("spec") or {}).get("nodeName")) and (p.get("status") or {}).get("phase") == "Running"
        return (0 if running else 1, _created(p), p["metadata"].get("name", ""))
    return sorted(pods, key=key)


def is_rolling_update(ds: Obj) -> bool:
    return ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def surge_count(ds: Obj, desired: int) -> int:
    if not is_rolling_update(ds):
        return 0
    ru = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return int_or_percent(ru.get("maxSurge", 0) or 0, desired, True)


def unavailable_count(ds: Obj, desired: int) -> int:
    if not is_rolling_update(ds):
        return 0
    ru = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    v = int_or_percent(ru.get("maxUnavailable", 1) if ru.get("maxUnavailable") is not None else 1, desired, True)
    if v == 0 and surge_count(ds, desired) == 0:
        return 1  # both zero is invalid; upstream validation forbids it, be safe
    return v


def node_should_run_daemon_pod(node: Obj, ds: Obj) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (shouldRun, shouldContinueRunning) for `ds` on `node`."""
    template_spec = metautil.deep_copy(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    dsutil.add_daemon_pod_tolerations(template_spec)
    node_name = node["metadata"]["name"]
    if template_spec.get("nodeName") and template_spec["nodeName"] != node_name:
        return False, False
    if not predicates.pod_matches_node_affinity(template_spec, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    if predicates.untolerated_taint(taints, template_spec.get("tolerations"), ("NoSchedule", "NoExecute")):
        no_execute = predicates.untolerated_taint(taints, template_spec.get("tolerations"), ("NoExecute",))
        return False, no_execute is None
    return True, True


class DaemonSetController:
    """kube-controller-manager's daemonset controller."""

    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 2):
        self.client = client
        self.ds_client = client.resource("apps", "v1", "daemonsets")
        self.pods = client.resource("", "v1", "pods")
        self.revisions = client.resource("apps", "v1", "controllerrevisions")
        self.ds_informer = factory.informer("apps", "v1", "daemonsets")
        self.pod_informer = factory.informer("", "v1", "pods")
        self.node_informer = factory.informer("", "v1", "nodes")
        self.cr_informer = factory.informer("apps", "v1", "controllerrevisions")
        self.recorder = EventRecorder(client, "daemonset-controller")
        # creations and deletions are expected side by side in one sync (upstream's SetExpectations)
        self.creations = ControllerExpectations()
        self.deletions = ControllerExpectations()
        self.failed_backoff: dict[str, tuple[float, float]] = {}  # ds key/node -> (delay, until)
        self.controller = Controller("daemonset-controller", self.sync, workers=workers)
        self.controller.watch(self.ds_informer)
        self.pod_informer.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.node_informer.add_handler(self._node_changed, lambda old, new: self._node_updated(old, new),
                                       self._node_changed)
        self.cr_informer.add_handler(self._cr_changed, lambda _o, n: self._cr_changed(n), self._cr_changed)

    # ---------------------------------------------------------------- event handlers
    def _owner_key(self, obj: Obj) -> str | None:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != KIND:
            return None
        ns = obj["metadata"].get("namespace")
        ds = self.ds_informer.store.get(ns, ref.get("name", ""))
        if ds is None or ds["metadata"].get("uid") != ref.get("uid"):
            return None
        return f"{ns}/{ref['name']}"

    def _matching(self, pod: Obj) -> list[str]:
        ns = pod["metadata"].get("namespace")
        labels = pod["metadata"].get("labels") or {}
        return [f"{ns}/{d['metadata']['name']}" for d in self.ds_informer.store.list(ns) if _selector(d).matches(labels)]

    def _pod_added(self, pod: Obj) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key:
            self.creations.creation_observed(key)
            self.controller.enqueue(key)
        elif controller_ref(pod) is None:
            for k in self._matching(pod):
                self.controller.enqueue(k)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)  # a graceful deletion counts as observed once it starts
        old_key, new_key = self._owner_key(old), self._owner_key(new)
        if old_key and old_key != new_key:
            self.controller.enqueue(old_key)
        if new_key:
            self.controller.enqueue(new_key)
            ds = self.ds_informer.store.get(*split_meta_namespace_key(new_key))
            mrs = ((ds or {}).get("spec") or {}).get("minReadySeconds") or 0
            if mrs and not podutil.is_pod_ready(old) and podutil.is_pod_ready(new):
                self.controller.enqueue_after(new_key, mrs + 1)
        elif controller_ref(new) is None:
            for k in self._matching(new):
                self.controller.enqueue(k)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key:
            self.deletions.deletion_observed(key, pod["metadata"].get("uid", ""))
            self.controller.enqueue(key)

    def _node_changed(self, node: Obj) -> None:
        for ds in self.ds_informer.store.list():
            self.controller.enqueue(ds)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        """shouldIgnoreNodeUpdate: only labels, taints and readiness matter to daemon placement."""
        def relevant(n: Obj) -> tuple:
            return ((n.get("metadata") or {}).get("labels"), (n.get("spec") or {}).get("taints"),
                    (n.get("spec") or {}).get("unschedulable"))
        if relevant(old) != relevant(new):
            self._node_changed(new)

    def _cr_changed(self, cr: Obj) -> None:
        key = self._owner_key(cr)
        if key:
            self.controller.enqueue(key)

    def _satisfied(self, key: str) -> bool:
        return self.creations.satisfied(key) and self.deletions.satisfied(key)

    # ---------------------------------------------------------------- sync
    @requeue_on_conflict
    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        ds = self.ds_informer.store.get(ns, name)
        if ds is None:
            self.creations.delete(key)
            self.deletions.delete(key)
            return None
        selector = _selector(ds)
        if selector.empty():
            self.recorder.event(ds, "Warning", "SelectingAll",
                                "This daemon set is selecting all pods. A non-empty selector is required.")
            return None
        nodes = self.node_informer.store.list()
        node_to_pods = await self._nodes_to_daemon_pods(ds, selector)
        cur, old = await self._construct_history(ds)
        hash_ = ((cur.get("metadata") or {}).get("labels") or {}).get(history.CONTROLLER_REVISION_HASH_LABEL, "")
        if ds["metadata"].get("deletionTimestamp") or not self._satisfied(key):
            await self._update_status(ds, nodes, node_to_pods, hash_)
            return None
        requeue: float | None = None
        err: Exception | None = None
        try:
            requeue = await self._manage(ds, key, nodes, node_to_pods, hash_)
            if self._satisfied(key) and is_rolling_update(ds):
                await self._rolling_update(ds, key, nodes, node_to_pods, hash_)
            await self._cleanup_history(ds, old, node_to_pods)
        except Exception as e:
            err = e
        node_to_pods = await self._nodes_to_daemon_pods(ds, selector, claim=False)
        again = await self._update_status(ds, nodes, node_to_pods, hash_)
        if err is not None:
            raise err
        if again is not None:
            requeue = again if requeue is None else min(requeue, again)
        return requeue

    async def _nodes_to_daemon_pods(self, ds: Obj, selector: LabelSelector, claim: bool = True) -> dict[str, list[Obj]]:
        """getNodesToDaemonPods: claimed pods grouped by target node (scheduled or pinned by affinity)."""
        ns = ds["metadata"]["namespace"]
        pods = self.pod_informer.store.list(ns)
        if claim:
            mgr = ControllerRefManager(self.pods, ds, API_VERSION, KIND,
                                       lambda p: selector.matches((p.get("metadata") or {}).get("labels") or {}),
                                       recheck_owner(self.ds_client, ds))
            owned = await mgr.claim(pods)
        else:
            uid = ds["metadata"]["uid"]
            owned = [p for p in pods if (controller_ref(p) or {}).get("uid") == uid]
        out: dict[str, list[Obj]] = {}
        for p in owned:
            node = dsutil.target_node_name(p)
            if node:
                out.setdefault(node, []).append(p)
        return out

    # ---------------------------------------------------------------- history
    async def _construct_history(self, ds: Obj) -> tuple[Obj, list[Obj]]:
        """constructHistory: the revision of the current template (created or renumbered as the
        newest) and the older ones; duplicates of the current one are removed."""
        revisions = history.owned_revisions(self.cr_informer.store, ds)
        selector = _selector(ds)
        # adopt orphaned revisions matching the selector, as ClaimControllerRevisions does
        for cr in self.cr_informer.store.list(ds["metadata"]["namespace"]):
            if controller_ref(cr) is None and selector.matches((cr.get("metadata") or {}).get("labels") or {}) \
                    and not cr["metadata"].get("deletionTimestamp"):
                try:
                    refs = list(cr["metadata"].get("ownerReferences") or [])
                    refs.append({"apiVersion": API_VERSION, "kind": KIND, "name": ds["metadata"]["name"],
                                 "uid": ds["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True})
                    adopted = await self.revisions.patch(cr["metadata"]["name"], {"metadata": {
                        "ownerReferences": refs, "resourceVersion": cr["metadata"]["resourceVersion"]}},
                        namespace=cr["metadata"]["namespace"])
                    revisions.append(adopted)
                except StatusError as e:
                    if e.code not in (404, 409):
                        raise
        collision = int((ds.get("status") or {}).get("collisionCount") or 0)
        hash_ = history.compute_template_hash((ds.get("spec") or {}).get("template") or {}, collision)
        current: list[Obj] = []
        old: list[Obj] = []
        patch = history.template_patch(ds)
        for cr in revisions:
            # Match: a revision is current when it holds the template, whatever its name or hash label
            if cr.get("data") == patch:
                current.append(cr)
            else:
                old.append(cr)
        max_rev = max((history.revision_number(r) for r in old), default=0)
        if not current:
            cur = await self._snapshot(ds, hash_, max_rev + 1, collision)
        else:
            current = history.sort_revisions(current)
            cur = current[-1]
            for dup in current[:-1]:
                await self._delete_revision(dup)
            if history.revision_number(cur) < max_rev + 1 and max_rev:
                fresh = dict(cur)
                fresh["revision"] = max_rev + 1
                try:
                    cur = await self.revisions.update(fresh, namespace=ds["metadata"]["namespace"])
                except StatusError as e:
                    if e.code != 409:
                        raise
        return cur, old

    async def _snapshot(self, ds: Obj, hash_: str, revision: int, collision: int) -> Obj:
        """snapshot: a ControllerRevision `<ds>-<hash>` holding the template patch."""
        pm = ds["metadata"]
        template_labels = (((ds.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        cr = {
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": history.controller_revision_name(pm["name"], hash_), "namespace": pm["namespace"],
                         "labels": {**template_labels, history.CONTROLLER_REVISION_HASH_LABEL: hash_},
                         "ownerReferences": [{"apiVersion": API_VERSION, "kind": KIND, "name": pm["name"],
                                              "uid": pm["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "data": history.template_patch(ds),
            "revision": revision,
        }
        anns = pm.get("annotations") or {}
        if anns:
            cr["metadata"]["annotations"] = dict(anns)
        try:
            return await self.revisions.create(cr, namespace=pm["namespace"])
        except StatusError as e:
            if e.code != 409 or e.reason != "AlreadyExists":
                raise
        existing = await self.revisions.get(cr["metadata"]["name"], namespace=pm["namespace"])
        if (controller_ref(existing) or {}).get("uid") == pm["uid"] and existing.get("data") == cr["data"]:
            return existing
        # a hash collision: bump status.collisionCount so the next sync computes another name
        status = dict(ds.get("status") or {})
        status["collisionCount"] = collision + 1
        await self.ds_client.update_status({**ds, "status": status})
        raise StatusError(409, "Conflict", f"found a stale controller revision {cr['metadata']['name']} for "
                                           f"daemonset {pm['namespace']}/{pm['name']}: hash collision")

    async def _delete_revision(self, cr: Obj) -> None:
        try:
            await self.revisions.delete(cr["metadata"]["name"], namespace=cr["metadata"]["namespace"])
        except StatusError as e:
            if e.code != 404:
                raise

    async def _cleanup_history(self, ds: Obj, old: list[Obj], node_to_pods: dict[str, list[Obj]]) -> None:
        live = {((p.get("metadata") or {}).get("labels") or {}).get(history.CONTROLLER_REVISION_HASH_LABEL)
                for pods in node_to_pods.values() for p in pods}
        live.discard(None)
        await history.truncate_history(self.revisions, old, live,  # type: ignore[arg-type]
                                       (ds.get("spec") or {}).get("revisionHistoryLimit"))

    # ---------------------------------------------------------------- manage
    async def _manage(self, ds: Obj, key: str, nodes: list[Obj], node_to_pods: dict[str, list[Obj]],
                      hash_: str) -> float | None:
        """manage: for each node create the missing daemon pod or delete the ones that must go."""
        nodes_needing: list[str] = []
        to_delete: list[Obj] = []
        requeue: float | None = None
        now = time.monotonic()
        desired = sum(1 for n in nodes if node_should_run_daemon_pod(n, ds)[0])
        surge = surge_count(ds, desired)
        known = set()
        for node in nodes:
            name = node["metadata"]["name"]
            known.add(name)
            should_run, should_continue = node_should_run_daemon_pod(node, ds)
            pods = node_to_pods.get(name, [])
            if should_run and not pods:
                nodes_needing.append(name)
            elif should_continue:
                running: list[Obj] = []
                for p in pods:
                    if p["metadata"].get("deletionTimestamp"):
                        continue
                    if (p.get("status") or {}).get("phase") == "Failed":
                        bkey = f"{key}/{name}"
                        delay, until = self.failed_backoff.get(bkey, (0.0, 0.0))
                        if now < until:
                            requeue = until - now if requeue is None else min(requeue, until - now)
                            continue
                        delay = min(max(delay * 2, 1.0), FAILED_POD_BACKOFF_MAX)
                        self.failed_backoff[bkey] = (delay, now + delay)
                        msg = (f"Found failed daemon pod {p['metadata']['namespace']}/{p['metadata']['name']} "
                               f"on node {name}, will try to kill it")
                        self.recorder.event(ds, "Warning", "FailedDaemonPod", msg)
                        to_delete.append(p)
                    else:
                        running.append(p)
                if len(running) > 1:
                    ordered = sorted(running, key=lambda p: (_created(p), p["metadata"]["name"]))
                    if is_rolling_update(ds) and surge > 0:
                        newest_new = oldest_old = None
                        for p in ordered:
                            if dsutil.is_pod_updated(p, hash_, _template_generation(ds)):
                                if newest_new is None:
                                    newest_new = p
                                    continue
                            elif oldest_old is None:
                                oldest_old = p
                                continue
                            to_delete.append(p)
                    else:
                        to_delete.extend(ordered[1:])
            else:
                to_delete.extend(p for p in pods if not p["metadata"].get("deletionTimestamp"))
        # pods pinned to nodes that no longer exist (getUnscheduledPodsWithoutNode and orphans)
        for name, pods in node_to_pods.items():
            if name not in known:
                to_delete.extend(p for p in pods if not p["metadata"].get("deletionTimestamp"))
        await self._sync_nodes(ds, key, to_delete, nodes_needing, hash_)
        return requeue

    async def _sync_nodes(self, ds: Obj, key: str, to_delete: list[Obj], nodes_needing: list[str], hash_: str) -> None:
        """syncNodes: create pods for nodes (slow start), delete pods, all under expectations."""
        nodes_needing = nodes_needing[:BURST_REPLICAS]
        to_delete = to_delete[:BURST_REPLICAS]
        if not nodes_needing and not to_delete:
            return
        self.creations.expect_creations(key, len(nodes_needing))
        self.deletions.expect_deletions(key, [p["metadata"]["uid"] for p in to_delete])
        template = dsutil.new_daemon_pod_template(ds, hash_)
        generation = _template_generation(ds)
        if generation is None:
            template["metadata"]["labels"].pop(dsutil.TEMPLATE_GENERATION_LABEL, None)
        else:
            template["metadata"]["labels"][dsutil.TEMPLATE_GENERATION_LABEL] = str(generation)
        pm = ds["metadata"]
        ref = {"apiVersion": API_VERSION, "kind": KIND, "name": pm["name"], "uid": pm["uid"],
               "controller": True, "blockOwnerDeletion": True}
        errors: list[Exception] = []

        async def create(node_name: str) -> None:
            t = metautil.deep_copy(template)
            t["spec"]["affinity"] = dsutil.replace_node_name_affinity(t["spec"].get("affinity"), node_name)
            m: Obj = {"generateName": pm["name"] + "-", "namespace": pm["namespace"], "ownerReferences": [ref]}
            for k in ("labels", "annotations", "finalizers"):
                if t["metadata"].get(k):
                    m[k] = t["metadata"][k]
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": t["spec"]}
            try:
                created = await self.pods.create(pod, namespace=pm["namespace"])
            except StatusError as e:
                self.creations.creation_observed(key)
                if e.code == 403 and "being terminated" in e.message:
                    return
                self.recorder.event(ds, "Warning", "FailedCreate", f"Error creating: {e.message}")
                raise
            self.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

        batch = 1
        pending = list(nodes_needing)
        while pending:
            chunk, pending = pending[:batch], pending[batch:]
            results = await asyncio.gather(*(create(n) for n in chunk), return_exceptions=True)
            errs = [r for r in results if isinstance(r, Exception)]
            if errs:
                errors.extend(errs)
                for _ in pending:  # skipped creations will never be observed
                    self.creations.creation_observed(key)
                break
            batch *= 2

        async def delete(pod: Obj) -> None:
            m = pod["metadata"]
            try:
                await self.pods.delete(m["name"], namespace=m["namespace"], preconditions={"uid": m["uid"]})
            except StatusError as e:
                self.deletions.deletion_observed(key, m["uid"])
                if e.code == 404:
                    return
                self.recorder.event(ds, "Warning", "FailedDelete", f"Error deleting: {e.message}")
                raise
            self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}")

        results = await asyncio.gather(*(delete(p) for p in to_delete), return_exceptions=True)
        errors.extend(r for r in results if isinstance(r, Exception))
        if errors:
            raise errors[0]

    # ---------------------------------------------------------------- rolling update
    async def _rolling_update(self, ds: Obj, key: str, nodes: list[Obj], node_to_pods: dict[str, list[Obj]],
                              hash_: str) -> None:
        """rollingUpdate: replace old pods within maxUnavailable, or surge new ones within maxSurge."""
        node_to_pods = await self._nodes_to_daemon_pods(ds, _selector(ds), claim=False)
        eligible = [n["metadata"]["name"] for n in nodes if node_should_run_daemon_pod(n, ds)[0]]
        desired = len(eligible)
        max_surge = surge_count(ds, desired)
        max_unavailable = unavailable_count(ds, desired)
        min_ready = (ds.get("spec") or {}).get("minReadySeconds") or 0
        generation = _template_generation(ds)

        def available(p: Obj) -> bool:
            return podutil.is_pod_available(p, min_ready)

        def split(pods: list[Obj]) -> tuple[Obj | None, Obj | None, bool]:
            """findUpdatedPodsOnNode: at most one new and one old non-terminating pod per node."""
            new = old = None
            for p in pods:
                if p["metadata"].get("deletionTimestamp"):
                    continue
                if dsutil.is_pod_updated(p, hash_, generation):
                    if new is not None:
                        return None, None, False
                    new = p
                else:
                    if old is not None:
                        return None, None, False
                    old = p
            return new, old, True

        to_delete: list[Obj] = []
        if max_surge == 0:
            unavailable = 0
            allowed: list[Obj] = []
            candidates: list[Obj] = []
            for name in eligible:
                new, old, ok = split(node_to_pods.get(name, []))
                if not ok:
                    unavailable += 1
                    continue
                if (old is None and new is None) or (old is not None and new is not None):
                    unavailable += 1
                elif new is not None:
                    if not available(new):
                        unavailable += 1
                elif old is not None:
                    if not available(old):
                        allowed.append(old)
                    elif unavailable < max_unavailable:
                        candidates.append(old)
            remaining = max(max_unavailable - unavailable, 0)
            to_delete = allowed + candidates[:remaining]
            await self._sync_nodes(ds, key, to_delete, [], hash_)
            return
        surging = 0
        allowed_nodes: list[str] = []
        candidate_nodes: list[str] = []
        for name in eligible:
            new, old, ok = split(node_to_pods.get(name, []))
            if not ok:
                continue
            if old is None:
                continue
            if new is None:
                if not available(old):
                    allowed_nodes.append(name)
                elif surging < max_surge:
                    candidate_nodes.append(name)
                continue
            if available(new):
                to_delete.append(old)
            else:
                surging += 1
        remaining = max(max_surge - surging, 0)
        await self._sync_nodes(ds, key, to_delete, allowed_nodes + candidate_nodes[:remaining], hash_)

    # ---------------------------------------------------------------- status
    async def _update_status(self, ds: Obj, nodes: list[Obj], node_to_pods: dict[str, list[Obj]],
                             hash_: str) -> float | None:
        """updateDaemonSetStatus; returns seconds until a pod may become available (minReadySeconds)."""
        desired = current = misscheduled = ready = available = updated = 0
        min_ready = (ds.get("spec") or {}).get("minReadySeconds") or 0
        generation = _template_generation(ds)
        requeue: float | None = None
        for node in nodes:
            should_run, _ = node_should_run_daemon_pod(node, ds)
            pods = node_to_pods.get(node["metadata"]["name"], [])
            if should_run:
                desired += 1
                if pods:
                    current += 1
                    pod = _by_creation_and_phase(pods)[0]
                    if podutil.is_pod_ready(pod):
                        ready += 1
                        if podutil.is_pod_available(pod, min_ready):
                            available += 1
                        elif min_ready:
                            requeue = float(min_ready)
                    if dsutil.is_pod_updated(pod, hash_, generation):
                        updated += 1
            elif pods:
                misscheduled += 1
        old = ds.get("status") or {}
        status: Obj = {
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "desiredNumberScheduled": desired,
            "numberReady": ready,
            "observedGeneration": ds["metadata"].get("generation", 1),
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberUnavailable": desired - available,
        }
        for k in ("numberAvailable", "numberUnavailable", "updatedNumberScheduled"):  # omitempty upstream
            if not status[k]:
                del status[k]
        for k in ("collisionCount", "conditions"):
            if old.get(k) is not None:
                status[k] = old[k]
        norm = {k: v for k, v in old.items() if v not in (0, None)}
        if norm == {k: v for k, v in status.items() if v not in (0, None)}:
            return requeue
        obj = dict(ds)
        obj["status"] = status
        try:
            await self.ds_client.update_status(obj)
        except StatusError as e:
            if e.code == 404:
                return None
            if e.code != 409:
                raise
            fresh = await self.ds_client.get(ds["metadata"]["name"], namespace=ds["metadata"]["namespace"])
            fresh["status"] = {**status, **{k: v for k, v in (fresh.get("status") or {}).items()
                                            if k in ("collisionCount", "conditions")}}
            await self.ds_client.update_status(fresh)
        return requeue

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()
