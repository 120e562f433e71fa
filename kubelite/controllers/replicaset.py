"""ReplicaSet and ReplicationController: keep spec.replicas pods matching the selector.

One implementation for both kinds, as upstream's ReplicationManager wraps the ReplicaSet
controller (pkg/controller/replicaset). Watches its kind and pods; owns pods through a
controller ownerReference; one sync claims pods (adopt/release), creates or deletes the
difference in slow-start batches guarded by expectations, and writes status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.api.selectors import LabelSelector, selector_from_label_selector, selector_from_set
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import (
    SharedInformerFactory,
    index_by_controller_uid,
    index_orphans_by_namespace,
    meta_namespace_key,
    split_meta_namespace_key,
)
from kubelite.controllers import podutil
from kubelite.controllers.expectations import ControllerExpectations
from kubelite.controllers.refmanager import ControllerRefManager, controller_ref, recheck_owner
from kubelite.controllers.retry import quiet_conflicts

log = logging.getLogger(__name__)

Obj = dict[str, Any]

BURST_REPLICAS = 500  # upstream's per-sync cap on creations/deletions
SLOW_START_INITIAL_BATCH = 1
CONTROLLER_UID_INDEX = "controller-uid"
ORPHANS_INDEX = "orphans-by-namespace"


@dataclass(frozen=True)
class WorkloadKind:
    group: str
    version: str
    plural: str
    kind: str
    component: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


REPLICA_SET = WorkloadKind("apps", "v1", "replicasets", "ReplicaSet", "replicaset-controller")
REPLICATION_CONTROLLER = WorkloadKind("", "v1", "replicationcontrollers", "ReplicationController",
                                      "replication-controller")


def selector_of(kind: WorkloadKind, obj: Obj) -> LabelSelector:
    sel = (obj.get("spec") or {}).get("selector")
    if kind.kind == "ReplicationController":
        # an RC selector is a plain map (defaulted from the template labels by the API server)
        return selector_from_set(sel) if sel else LabelSelector.nothing()
    try:
        return selector_from_label_selector(sel)
    except Exception:
        return LabelSelector.nothing()


async def slow_start_batch(count: int, initial: int, fn: Callable[[], Awaitable[None]]) -> tuple[int, Exception | None]:
    """Run fn count times in batches of 1, 2, 4, ... stopping at the first batch with a failure
    (upstream's slowStartBatch), so a quota or webhook error costs one call, not hundreds."""
    remaining = count
    successes = 0
    batch = min(remaining, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errs = [r for r in results if isinstance(r, BaseException)]
        successes += batch - len(errs)
        if errs:
            return successes, errs[0]  # type: ignore[return-value]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


def exact_label_set(selector: LabelSelector) -> frozenset | None:
    """The (key, value) pairs a selector made only of equality terms requires, so matching a pod is a
    subset test; None for selectors with other operators (or selecting nothing)."""
    if selector.is_nothing():
        return None
    out = []
    for r in selector.requirements:
        if r.operator not in ("=", "==", "in") or len(r.values) != 1:
            return None
        out.append((r.key, r.values[0]))
    return frozenset(out)


def _counted_state(pod: Obj) -> tuple:
    """What a sync reads of an owned pod beyond its labels and owner: whether it is active, and its
    Ready condition (status and transition time, for availability). An update leaving these alone
    (the binding, a container starting, a status heartbeat) changes neither the pods to claim nor
    the counts in status nor the number to create or delete, so it needs no sync: with simulated
    nodes that is three of a new pod's four updates."""
    cond = podutil.pod_ready_condition(pod) or {}
    return podutil.is_pod_active(pod), cond.get("status"), cond.get("lastTransitionTime")


def pod_from_template(template: Obj, owner: Obj, ref: Obj) -> Obj:
    """controller.GetPodFromTemplate: labels, annotations and spec of the template, generateName `<owner>-`."""
    tmeta = template.get("metadata") or {}
    m: Obj = {"generateName": owner["metadata"]["name"] + "-", "namespace": owner["metadata"]["namespace"],
              "ownerReferences": [ref]}
    for k in ("labels", "annotations", "finalizers"):
        if tmeta.get(k):
            m[k] = metautil.deep_copy(tmeta[k])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": metautil.deep_copy(template.get("spec") or {})}


class ReplicaSetController:
    """kube-controller-manager's replicaset (and replicationcontroller) controller."""

    def __init__(self, client: Any, factory: SharedInformerFactory, kind: WorkloadKind = REPLICA_SET,
                 workers: int = 5):
        self.client = client
        self.kind = kind
        self.rs_client = client.resource(kind.group, kind.version, kind.plural)
        self.pods = client.resource("", "v1", "pods")
        self.rs_informer = factory.informer(kind.group, kind.version, kind.plural)
        self.pod_informer = factory.informer("", "v1", "pods")
        self.pod_informer.store.add_index(CONTROLLER_UID_INDEX, index_by_controller_uid)
        self.pod_informer.store.add_index(ORPHANS_INDEX, index_orphans_by_namespace)
        self.recorder = EventRecorder(client, kind.component)
        self.expectations = ControllerExpectations()
        self.facts = podutil.PodFactsCache()
        self._selectors: dict[str, tuple[Any, LabelSelector, frozenset | None]] = {}
        self._written: dict[str, tuple[str, Obj]] = {}  # key -> (resourceVersion written over, result)
        self.controller = Controller(kind.component, quiet_conflicts(self.sync), workers=workers)
        self.controller.watch(self.rs_informer)
        self.pod_informer.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # ---------------------------------------------------------------- event handlers
    def _owner_key(self, pod: Obj, ref: Obj | None) -> str | None:
        """The key of the controller `ref` points at, if it is one of ours and still the same object."""
        if ref is None or ref.get("kind") != self.kind.kind or ref.get("apiVersion", "").split("/")[0] != \
                self.kind.api_version.split("/")[0]:
            return None
        ns = (pod.get("metadata") or {}).get("namespace")
        rs = self.rs_informer.store.get(ns, ref.get("name", ""))
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return None
        return f"{ns}/{ref['name']}"

    def _matching_controllers(self, pod: Obj) -> list[str]:
        ns = (pod.get("metadata") or {}).get("namespace")
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if not labels:
            return []
        keys = []
        for rs in self.rs_informer.store.list(ns):
            if selector_of(self.kind, rs).matches(labels):
                keys.append(f"{ns}/{rs['metadata']['name']}")
        return keys

    def _pod_added(self, pod: Obj) -> None:
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            key = self._owner_key(pod, ref)
            if key:
                self.expectations.creation_observed(key)
                self.controller.enqueue(key)
            return
        for key in self._matching_controllers(pod):
            self.controller.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        labels_changed = (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {})
        if new["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        cur, prev = controller_ref(new), controller_ref(old)
        if prev is not None and (cur is None or cur.get("uid") != prev.get("uid")):
            key = self._owner_key(old, prev)
            if key:
                self.controller.enqueue(key)
        if cur is not None:
            key = self._owner_key(new, cur)
            if key:
                if labels_changed or prev is None or prev.get("uid") != cur.get("uid") or \
                        _counted_state(old) != _counted_state(new):
                    self.controller.enqueue(key)
                rs = self.rs_informer.store.get(*split_meta_namespace_key(key))
                mrs = ((rs or {}).get("spec") or {}).get("minReadySeconds") or 0
                if mrs and not podutil.is_pod_ready(old) and podutil.is_pod_ready(new):
                    self.controller.enqueue_after(key, mrs + 1)
            return
        if labels_changed or prev is not None:
            for key in self._matching_controllers(new):
                self.controller.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        if self.pod_informer.store.get_by_key(meta_namespace_key(pod)) is None:
            self.facts.forget(meta_namespace_key(pod))
        key = self._owner_key(pod, controller_ref(pod))
        if key:
            self.expectations.deletion_observed(key, pod["metadata"].get("uid", ""))
            self.controller.enqueue(key)

    # ---------------------------------------------------------------- sync
    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        rs = self.rs_informer.store.get(ns, name)
        if rs is None:
            self.expectations.delete(key)
            self._selectors.pop(key, None)
            self._written.pop(key, None)
            return None
        written = self._written.get(key)
        if written is not None and written[0] == rs["metadata"].get("resourceVersion") and \
                written[1]["metadata"].get("uid") == rs["metadata"].get("uid"):
            # the informer has not seen our last status write yet: that write's answer is this very
            # object one version on (a status write changes nothing else), so the next write does not
            # conflict and need not GET
            rs = written[1]
        needs_sync = self.expectations.satisfied(key)
        selector, exact = self._selector(key, rs)
        spec = rs.get("spec") or {}
        owned = await self._claim(rs, selector, exact)
        manage_err: Exception | None = None
        if needs_sync and not rs["metadata"].get("deletionTimestamp"):
            try:
                await self._manage_replicas([f.obj for f in owned], rs, key)
            except Exception as e:  # reported in status, then retried
                manage_err = e
        status = self._calculate_status(rs, owned, manage_err)
        updated = await self._update_status(rs, status)
        min_ready = spec.get("minReadySeconds") or 0
        if manage_err is not None:
            raise manage_err
        if min_ready and updated.get("readyReplicas", 0) == updated.get("replicas", 0) and \
                updated.get("availableReplicas", 0) != updated.get("replicas", 0):
            return float(min_ready)
        return None

    def _selector(self, key: str, rs: Obj) -> tuple[LabelSelector, frozenset | None]:
        """The ReplicaSet's selector, parsed again only when spec.selector changes."""
        raw = (rs.get("spec") or {}).get("selector")
        cached = self._selectors.get(key)
        if cached is not None and cached[0] == raw:
            return cached[1], cached[2]
        selector = selector_of(self.kind, rs)
        exact = exact_label_set(selector)
        self._selectors[key] = (raw, selector, exact)
        return selector, exact

    async def _claim(self, rs: Obj, selector: LabelSelector, exact: frozenset | None) -> list[podutil.PodFacts]:
        """claimPods over the active pods of the namespace, as upstream, but reading only the pods this
        controller already controls (an index) and the orphans (another): pods of other controllers are
        never claimed, so skipping them changes nothing. Owned pods still matching stay owned without a
        call; the rest (owned but no longer matching, matching orphans) go through the ref manager."""
        store = self.pod_informer.store
        uid = rs["metadata"]["uid"]
        ns = rs["metadata"]["namespace"]
        owned: list[podutil.PodFacts] = []
        to_claim: list[Obj] = []
        for f in self.facts.get_all(store.index_items(CONTROLLER_UID_INDEX, uid)):
            if not f.active or f.namespace != ns:  # an owner reference never crosses namespaces
                continue
            ls = f.label_set
            if exact is not None and ls is not None:
                if exact <= ls:
                    owned.append(f)
                    continue
            elif selector.matches(f.labels):
                owned.append(f)
                continue
            to_claim.append(f.obj)
        if not selector.is_nothing():
            to_claim.extend(f.obj for f in self.facts.get_all(store.index_items(ORPHANS_INDEX, ns))
                            if f.active and selector.matches(f.labels))
        if to_claim:
            ref_mgr = ControllerRefManager(self.pods, rs, self.kind.api_version, self.kind.kind,
                                           lambda p: selector.matches((p.get("metadata") or {}).get("labels") or {}),
                                           recheck_owner(self.rs_client, rs))
            owned.extend(podutil.PodFacts(p) for p in await ref_mgr.claim(to_claim))
        return owned

    async def _manage_replicas(self, pods: list[Obj], rs: Obj, key: str) -> None:
        want = (rs.get("spec") or {}).get("replicas")
        want = 1 if want is None else want
        diff = len(pods) - want
        if diff < 0:
            n = min(-diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, n)
            template = (rs.get("spec") or {}).get("template") or {}
            ref = {"apiVersion": self.kind.api_version, "kind": self.kind.kind, "name": rs["metadata"]["name"],
                   "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}

            async def create() -> None:
                try:
                    pod = await self.pods.create(pod_from_template(template, rs, ref),
                                                 namespace=rs["metadata"]["namespace"])
                except StatusError as e:
                    self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {e.message}")
                    if e.code == 403 and "being terminated" in e.message:
                        # namespace is terminating: creation will never succeed (upstream ignores it)
                        self.expectations.creation_observed(key)
                        return
                    raise
                self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

            done, err = await slow_start_batch(n, SLOW_START_INITIAL_BATCH, create)
            if err is not None:
                # creations that failed or were skipped will never be observed
                self.expectations.lower_creations(key, n - done)
                raise err
        elif diff > 0:
            n = min(diff, BURST_REPLICAS)
            victims = self._pods_to_delete(pods, self._related_pods(rs), n)
            self.expectations.expect_deletions(key, [p["metadata"]["uid"] for p in victims])

            async def delete(pod: Obj) -> None:
                pm = pod["metadata"]
                try:
                    await self.pods.delete(pm["name"], namespace=pm["namespace"],
                                           preconditions={"uid": pm["uid"]})
                except StatusError as e:
                    self.expectations.deletion_observed(key, pm["uid"])
                    if e.code == 404:
                        return
                    self.recorder.event(rs, "Warning", "FailedDelete", f"Error deleting: {e.message}")
                    raise
                self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {pm['name']}")

            results = await asyncio.gather(*(delete(p) for p in victims), return_exceptions=True)
            errs = [r for r in results if isinstance(r, BaseException)]
            if errs:
                raise errs[0]

    def _related_pods(self, rs: Obj) -> list[Obj]:
        """Pods of every controller sharing this one's owner (a Deployment's ReplicaSets), for ranking."""
        owner = controller_ref(rs)
        ns = rs["metadata"]["namespace"]
        if owner is None:
            siblings = [rs]
        else:
            siblings = [o for o in self.rs_informer.store.list(ns)
                        if (controller_ref(o) or {}).get("uid") == owner.get("uid")]
        store = self.pod_informer.store
        return [p for s in siblings for p in store.by_index(CONTROLLER_UID_INDEX, s["metadata"]["uid"])
                if p["metadata"].get("namespace") == ns]

    @staticmethod
    def _pods_to_delete(pods: list[Obj], related: list[Obj], n: int) -> list[Obj]:
        ranks = podutil.pods_on_same_node_ranks(pods, related)
        order = sorted(range(len(pods)), key=lambda i: podutil.deletion_rank_key(pods[i], ranks[i]))
        return [pods[i] for i in order[:n]]

    def _calculate_status(self, rs: Obj, pods: list[podutil.PodFacts], manage_err: Exception | None) -> Obj:
        spec = rs.get("spec") or {}
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        try:
            template_set: frozenset | None = frozenset(template_labels.items())
        except TypeError:
            template_set = None
        min_ready = spec.get("minReadySeconds") or 0
        now = time.time()
        fully = ready = available = 0
        for f in pods:
            ls = f.label_set
            if template_set is not None and ls is not None:
                if template_set <= ls:
                    fully += 1
            elif f.has_labels(template_set, template_labels):
                fully += 1
            if f.ready:
                ready += 1
                if not min_ready or f.available(min_ready, now):
                    available += 1
        old = rs.get("status") or {}
        conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        failure = next((c for c in old.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
        if manage_err is not None:
            want = spec.get("replicas", 1)
            reason = "FailedCreate" if len(pods) < want else "FailedDelete"
            msg = manage_err.message if isinstance(manage_err, StatusError) else str(manage_err)
            if failure is not None and failure.get("reason") == reason and failure.get("message") == msg:
                conditions.append(failure)
            else:
                conditions.append({"type": "ReplicaFailure", "status": "True", "reason": reason, "message": msg,
                                   "lastTransitionTime": metautil.now_rfc3339()})
        status: Obj = {"replicas": len(pods), "fullyLabeledReplicas": fully, "readyReplicas": ready,
                       "availableReplicas": available,
                       "observedGeneration": rs["metadata"].get("generation", 1)}
        if conditions:
            status["conditions"] = conditions
        return status

    async def _update_status(self, rs: Obj, status: Obj) -> Obj:
        old = rs.get("status") or {}
        norm = {k: v for k, v in old.items() if v not in (0, None, [])}
        if norm == {k: v for k, v in status.items() if v not in (0, None, [])}:
            return status
        obj = dict(rs)
        # ReplicaSetStatus: only `replicas` is written when zero
        status = {k: v for k, v in status.items() if k == "replicas" or v not in (0, None, [])}
        obj["status"] = status
        key = f"{rs['metadata']['namespace']}/{rs['metadata']['name']}"
        for attempt in range(2):
            try:
                out = await self.rs_client.update_status(obj)
                self._written[key] = (obj["metadata"].get("resourceVersion", ""), out)
                return status
            except StatusError as e:
                if e.code == 404:
                    return status
                if e.code != 409 or attempt:
                    raise
                obj = await self.rs_client.get(rs["metadata"]["name"], namespace=rs["metadata"]["namespace"])
                obj["status"] = status
        return status

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()
