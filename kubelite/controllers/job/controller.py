"""JobController (upstream pkg/controller/job, 1.32): run pods to a number of completions.

Watches Jobs and pods; owns pods `<job>-<5 chars>` (Indexed: `<job>-<index>-<5 chars>`) created with
the `batch.kubernetes.io/job-tracking` finalizer. A finished pod is first recorded in
status.uncountedTerminatedPods, then its finalizer is removed, then it moves into the
succeeded/failed counters: a pod is counted exactly once even across restarts. Failures are
weighed against backoffLimit (with 10 s doubling backoff), podFailurePolicy and
activeDeadlineSeconds; success against completions (NonIndexed) or completed indexes (Indexed).
The interim SuccessCriteriaMet / FailureTarget conditions precede Complete / Failed, which are
set once no pod is left terminating.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.api.selectors import LabelSelector, selector_from_label_selector
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory, split_meta_namespace_key
from kubelite.controllers import podutil
from kubelite.controllers.expectations import ControllerExpectations
from kubelite.controllers.job import util as ju
from kubelite.controllers.refmanager import ControllerRefManager, controller_ref, recheck_owner
from kubelite.controllers.workloads import requeue_on_conflict

log = logging.getLogger(__name__)

Obj = dict[str, Any]

KIND = "Job"
API_VERSION = "batch/v1"
CONTROLLER_NAME = "kubernetes.io/job-controller"


def _selector(job: Obj) -> LabelSelector:
    try:
        return selector_from_label_selector((job.get("spec") or {}).get("selector"))
    except Exception:
        return LabelSelector.nothing()


def _has_finalizer(pod: Obj) -> bool:
    return ju.TRACKING_FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or [])


def _phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def _suspended(job: Obj) -> bool:
    return bool((job.get("spec") or {}).get("suspend"))


def _indexed(job: Obj) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def _completions(job: Obj) -> int | None:
    c = (job.get("spec") or {}).get("completions")
    return None if c is None else int(c)


def only_replace_failed_pods(job: Obj) -> bool:
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """isPodFailed: Failed phase; with TerminatingOrFailed a pod being deleted counts as failed too."""
    if _phase(pod) == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return bool(pod["metadata"].get("deletionTimestamp")) and _phase(pod) != "Succeeded"


def past_backoff_limit_on_failure(job: Obj, pods: list[Obj]) -> bool:
    """pastBackoffLimitOnFailure: with restartPolicy OnFailure, container restarts count as failures."""
    spec = job.get("spec") or {}
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for p in pods:
        if _phase(p) in ("Running", "Pending"):
            st = p.get("status") or {}
            for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
                restarts += int(cs.get("restartCount") or 0)
    limit = int(spec.get("backoffLimit", 6))
    return restarts > 0 if limit == 0 else restarts >= limit


class JobController:
    """kube-controller-manager's job controller."""

    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 5):
        self.client = client
        self.jobs = client.resource("batch", "v1", "jobs")
        self.pods = client.resource("", "v1", "pods")
        self.job_informer = factory.informer("batch", "v1", "jobs")
        self.pod_informer = factory.informer("", "v1", "pods")
        self.recorder = EventRecorder(client, "job-controller")
        self.expectations = ControllerExpectations()
        self.finalizer_expectations: dict[str, set[str]] = {}
        self.backoff: dict[str, ju.BackoffRecord] = {}
        self.controller = Controller("job-controller", self.sync, workers=workers)
        self.orphans = Controller("job-orphan-pod", self.sync_orphan_pod, workers=1)
        self.controller.watch(self.job_informer)
        self.pod_informer.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # ---------------------------------------------------------------- event handlers
    def _job_of(self, pod: Obj) -> tuple[str | None, Obj | None]:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != KIND or not str(ref.get("apiVersion", "")).startswith("batch/"):
            return None, None
        ns = pod["metadata"].get("namespace")
        job = self.job_informer.store.get(ns, ref.get("name", ""))
        if job is None or job["metadata"].get("uid") != ref.get("uid"):
            return None, None
        return f"{ns}/{ref['name']}", job

    def _maybe_orphan(self, pod: Obj, job: Obj | None) -> None:
        if _has_finalizer(pod) and (job is None or ju.is_finished(job)):
            self.orphans.enqueue(pod)

    def _pod_added(self, pod: Obj) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod, final=False)
            return
        key, job = self._job_of(pod)
        if key:
            self.expectations.creation_observed(key)
            self.controller.enqueue(key)
        elif controller_ref(pod) is None:
            self._enqueue_matching(pod)
        self._maybe_orphan(pod, job)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        key, job = self._job_of(new)
        old_key, _ = self._job_of(old)
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            if key:
                self.expectations.deletion_observed(key, new["metadata"].get("uid", ""))
        if key and _has_finalizer(old) and not _has_finalizer(new):
            self.finalizer_expectations.get(key, set()).discard(new["metadata"].get("uid", ""))
        if old_key and old_key != key:
            self.controller.enqueue(old_key)
        if key:
            self.controller.enqueue(key)
        elif controller_ref(new) is None:
            self._enqueue_matching(new)
        self._maybe_orphan(new, job)

    def _pod_deleted(self, pod: Obj, final: bool = True) -> None:
        key, job = self._job_of(pod)
        if key:
            self.expectations.deletion_observed(key, pod["metadata"].get("uid", ""))
            if final:
                self.finalizer_expectations.get(key, set()).discard(pod["metadata"].get("uid", ""))
            self.controller.enqueue(key)
        if not final:
            self._maybe_orphan(pod, job)

    def _enqueue_matching(self, pod: Obj) -> None:
        ns = pod["metadata"].get("namespace")
        labels = pod["metadata"].get("labels") or {}
        for job in self.job_informer.store.list(ns):
            if _selector(job).matches(labels):
                self.controller.enqueue(job)

    # ---------------------------------------------------------------- orphan pods
    async def sync_orphan_pod(self, key: str) -> None:
        """syncOrphanPod: a pod whose Job is gone or finished must not keep the tracking finalizer."""
        ns, name = split_meta_namespace_key(key)
        pod = self.pod_informer.store.get(ns, name)
        if pod is None or not _has_finalizer(pod):
            return None
        _, job = self._job_of(pod)
        if job is not None and not ju.is_finished(job):
            return None
        await self._remove_finalizer(pod)
        return None

    async def _remove_finalizer(self, pod: Obj) -> bool:
        m = pod["metadata"]
        finalizers = [f for f in m.get("finalizers") or [] if f != ju.TRACKING_FINALIZER]
        patch = [{"op": "test", "path": "/metadata/uid", "value": m["uid"]},
                 {"op": "replace", "path": "/metadata/finalizers", "value": finalizers}]
        try:
            await self.pods.patch(m["name"], patch, "json", namespace=m["namespace"])
        except StatusError as e:
            if e.code in (404, 422, 409):
                return True
            raise
        return True

    # ---------------------------------------------------------------- sync
    @requeue_on_conflict
    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        shared = self.job_informer.store.get(ns, name)
        if shared is None:
            self.expectations.delete(key)
            self.finalizer_expectations.pop(key, None)
            self.backoff.pop(key, None)
            return None
        managed_by = (shared.get("spec") or {}).get("managedBy")
        if managed_by and managed_by != CONTROLLER_NAME:
            return None
        if ju.is_finished(shared):
            self.backoff.pop(key, None)
            for pod in self.pod_informer.store.list(ns):
                if _has_finalizer(pod) and (controller_ref(pod) or {}).get("uid") == shared["metadata"]["uid"]:
                    self.orphans.enqueue(pod)
            return None
        job = metautil.deep_copy(shared)
        spec = job.setdefault("spec", {})
        status = job.setdefault("status", {})
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        unc_s = set(uncounted.get("succeeded") or [])
        unc_f = set(uncounted.get("failed") or [])
        satisfied = self.expectations.satisfied(key)
        selector = _selector(job)
        mgr = ControllerRefManager(self.pods, job, API_VERSION, KIND,
                                   lambda p: selector.matches((p.get("metadata") or {}).get("labels") or {}),
                                   recheck_owner(self.jobs, job))
        pods = await mgr.claim(self.pod_informer.store.list(ns))
        active_pods = podutil.filter_active_pods(pods)
        ready = sum(1 for p in active_pods if podutil.is_pod_ready(p))
        terminating = sum(1 for p in pods if p["metadata"].get("deletionTimestamp") and
                          _phase(p) not in ("Succeeded", "Failed"))
        expected_rm = self.finalizer_expectations.get(key, set())
        completions = _completions(job)

        def valid(p: Obj) -> bool:
            if not _indexed(job):
                return True
            ix = ju.completion_index(p)
            return 0 <= ix < (completions or 0)

        def fresh(p: Obj, uncounted_set: set[str]) -> bool:
            uid = p["metadata"]["uid"]
            return _has_finalizer(p) and uid not in uncounted_set and uid not in expected_rm and valid(p)

        new_succeeded = [p for p in pods if fresh(p, unc_s) and _phase(p) == "Succeeded"]
        new_failed = [p for p in pods if fresh(p, unc_f) and is_pod_failed(p, job)]
        succeeded = int(status.get("succeeded") or 0) + len(new_succeeded) + len(unc_s)
        failed = int(status.get("failed") or 0) + len(unc_f) + sum(
            1 for p in new_failed if ju.match_pod_failure_policy(job, p)[1])
        now = metautil.now_rfc3339()
        if not status.get("startTime") and not _suspended(job):
            status["startTime"] = now
        new_backoff = ju.new_backoff_record(self.backoff.get(key), new_succeeded, new_failed)
        requeue: float | None = None

        finished: Obj | None = ju.find_condition(job, "SuccessCriteriaMet")
        if finished is None:
            target = ju.find_condition(job, "FailureTarget")
            if target is not None:
                finished = ju.new_condition("Failed", "True", target.get("reason", ""), target.get("message", ""), now)
            else:
                for p in pods:
                    if is_pod_failed(p, job):
                        msg = ju.match_pod_failure_policy(job, p)[0]
                        if msg is not None:
                            finished = ju.new_condition("FailureTarget", "True", "PodFailurePolicy", msg, now)
                            break
        if finished is None:
            backoff_limit = int(spec.get("backoffLimit", 6))
            deadline = spec.get("activeDeadlineSeconds")
            started = metautil.parse_time(status.get("startTime"))
            if failed > backoff_limit or past_backoff_limit_on_failure(job, pods):
                finished = ju.new_condition("FailureTarget", "True", "BackoffLimitExceeded",
                                            "Job has reached the specified backoff limit", now)
            elif deadline is not None and started is not None and not _suspended(job):
                left = started + int(deadline) - time.time()
                if left <= 0:
                    finished = ju.new_condition("FailureTarget", "True", "DeadlineExceeded",
                                                "Job was active longer than specified deadline", now)
                else:
                    requeue = left

        prev_indexes: set[int] = set()
        succeeded_indexes: set[int] = set()
        if _indexed(job):
            prev_indexes = ju.parse_indexes(status.get("completedIndexes"), completions or 0)
            succeeded_indexes = prev_indexes | {ju.completion_index(p) for p in pods
                                                if _phase(p) == "Succeeded" and _has_finalizer(p) and valid(p)}
            succeeded = len(succeeded_indexes)

        manage_err: Exception | None = None
        suspend_changed = False
        active = len(active_pods)
        if finished is not None:
            deleted_ready, deleted, manage_err = await self._delete_active_pods(job, active_pods)
            if deleted != active or not satisfied:
                finished = None  # pods or expectations still pending: decide on a later sync
            active -= deleted
            terminating += deleted
            ready -= deleted_ready
        else:
            manage_called = False
            if satisfied and not job["metadata"].get("deletionTimestamp"):
                try:
                    active, ready, terminating, again = await self._manage_job(
                        key, job, pods, active_pods, succeeded, succeeded_indexes, ready, terminating, new_backoff)
                    if again is not None:
                        requeue = again if requeue is None else min(requeue, again)
                except _ManageError as e:
                    active, ready, terminating = e.active, e.ready, e.terminating
                    manage_err = e.cause
                manage_called = True
            complete = (succeeded > 0 and active == 0) if completions is None else \
                (succeeded >= completions and active == 0)
            if complete:
                finished = ju.new_condition("SuccessCriteriaMet", "True", "CompletionsReached",
                                            "Reached expected number of succeeded pods", now)
            elif manage_called:
                conds = status.get("conditions") or []
                if _suspended(job):
                    conds, changed = ju.ensure_condition(conds, "Suspended", "True", "JobSuspended", "Job suspended", now)
                    if changed:
                        suspend_changed = True
                        self.recorder.event(job, "Normal", "Suspended", "Job suspended")
                else:
                    conds, changed = ju.ensure_condition(conds, "Suspended", "False", "JobResumed", "Job resumed", now)
                    if changed:
                        suspend_changed = True
                        self.recorder.event(job, "Normal", "Resumed", "Job resumed")
                        status["startTime"] = now
                if conds:
                    status["conditions"] = conds
        needs_update = suspend_changed or active != int(status.get("active") or 0) or \
            status.get("ready") != ready or status.get("terminating") != terminating
        status["active"] = active
        status["ready"] = ready
        status["terminating"] = terminating
        await self._track_status_and_remove_finalizers(key, job, pods, finished, prev_indexes, succeeded_indexes,
                                                       terminating, new_backoff, needs_update)
        if manage_err is not None:
            raise manage_err
        return requeue

    # ---------------------------------------------------------------- pods
    async def _delete_active_pods(self, job: Obj, pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """deleteActivePods: delete (keeping finalizers: the status tracking removes them)."""
        deleted_ready = deleted = 0
        err: Exception | None = None

        async def one(p: Obj) -> None:
            nonlocal deleted, deleted_ready, err
            try:
                await self.pods.delete(p["metadata"]["name"], namespace=p["metadata"]["namespace"])
            except StatusError as e:
                if e.code != 404:
                    err = e
                    return
            deleted += 1
            if podutil.is_pod_ready(p):
                deleted_ready += 1
            self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")

        await asyncio.gather(*(one(p) for p in pods))
        return deleted_ready, deleted, err

    async def _delete_job_pods(self, key: str, job: Obj, pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """deleteJobPods: remove the tracking finalizer, then delete (pods the Job itself retires)."""
        self.expectations.expect_deletions(key, [p["metadata"]["uid"] for p in pods])
        deleted_ready = deleted = 0
        err: Exception | None = None

        async def one(p: Obj) -> None:
            nonlocal deleted, deleted_ready, err
            m = p["metadata"]
            try:
                if _has_finalizer(p):
                    await self._remove_finalizer(p)
                await self.pods.delete(m["name"], namespace=m["namespace"])
            except StatusError as e:
                self.expectations.deletion_observed(key, m["uid"])
                if e.code != 404:
                    err = e
                    return
            deleted += 1
            if podutil.is_pod_ready(p):
                deleted_ready += 1
            self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}")

        await asyncio.gather(*(one(p) for p in pods))
        return deleted_ready, deleted, err

    async def _manage_job(self, key: str, job: Obj, pods: list[Obj], active_pods: list[Obj], succeeded: int,
                          succeeded_indexes: set[int], ready: int, terminating: int,
                          backoff: ju.BackoffRecord) -> tuple[int, int, int, float | None]:
        """manageJob: delete extra pods or create missing ones; returns (active, ready, terminating, requeue)."""
        spec = job.get("spec") or {}
        active = len(active_pods)
        parallelism = int(spec.get("parallelism", 1) if spec.get("parallelism") is not None else 1)
        completions = _completions(job)
        if _suspended(job):
            dr, removed, err = await self._delete_job_pods(key, job, active_pods)
            if err is not None:
                raise _ManageError(active - removed, ready - dr, terminating + removed, err)
            return active - removed, ready - dr, terminating + removed, None
        if completions is None:
            want = active if succeeded > 0 else parallelism
        else:
            want = max(min(completions - succeeded, parallelism), 0)
        rm_at_least = max(active - want, 0)
        to_delete = self._active_pods_for_removal(job, active_pods, rm_at_least)[:ju.MAX_POD_CREATE_DELETE_PER_SYNC]
        if to_delete:
            dr, removed, err = await self._delete_job_pods(key, job, to_delete)
            if err is not None:
                raise _ManageError(active - removed, ready - dr, terminating + removed, err)
            return active - removed, ready - dr, terminating + removed, None
        diff = want - (terminating if only_replace_failed_pods(job) else 0) - active
        if diff <= 0:
            return active, ready, terminating, None
        remaining = backoff.remaining()
        if remaining > 0:
            return active, ready, terminating, remaining
        diff = min(diff, ju.MAX_POD_CREATE_DELETE_PER_SYNC)
        indexes: list[int] = []
        if _indexed(job):
            indexes = self._first_pending_indexes(active_pods, succeeded_indexes, diff, completions or 0)
            diff = len(indexes)
            if diff == 0:
                return active, ready, terminating, None
        template = metautil.deep_copy(spec.get("template") or {})
        tspec = template.setdefault("spec", {})
        if _indexed(job):
            ju.add_completion_index_env(tspec)
        tmeta = template.setdefault("metadata", {})
        finalizers = list(tmeta.get("finalizers") or [])
        if ju.TRACKING_FINALIZER not in finalizers:
            finalizers.append(ju.TRACKING_FINALIZER)
        tmeta["finalizers"] = finalizers
        jm = job["metadata"]
        ref = {"apiVersion": API_VERSION, "kind": KIND, "name": jm["name"], "uid": jm["uid"], "controller": True,
               "blockOwnerDeletion": True}
        self.expectations.expect_creations(key, diff)

        async def create(index: int | None) -> None:
            m: Obj = {"generateName": f"{jm['name']}-", "namespace": jm["namespace"], "ownerReferences": [ref]}
            for k in ("labels", "annotations", "finalizers"):
                if tmeta.get(k):
                    m[k] = metautil.deep_copy(tmeta[k])
            pspec = metautil.deep_copy(tspec)
            if index is not None:
                m.setdefault("annotations", {})[ju.COMPLETION_INDEX_ANNOTATION] = str(index)
                m.setdefault("labels", {})[ju.COMPLETION_INDEX_ANNOTATION] = str(index)
                pspec["hostname"] = f"{jm['name']}-{index}"
                m["generateName"] = f"{jm['name']}-{index}-"
            try:
                pod = await self.pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": pspec},
                                             namespace=jm["namespace"])
            except StatusError as e:
                self.expectations.creation_observed(key)
                if e.code == 403 and "being terminated" in e.message:
                    return
                self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {e.message}")
                raise
            self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")

        queue: list[int | None] = list(indexes) if indexes else [None] * diff
        created = 0
        batch = 1
        first_err: Exception | None = None
        while queue:
            chunk, queue = queue[:batch], queue[batch:]
            results = await asyncio.gather(*(create(i) for i in chunk), return_exceptions=True)
            errs = [r for r in results if isinstance(r, Exception)]
            created += len(chunk) - len(errs)
            if errs:
                first_err = errs[0]
                for _ in queue:  # skipped creations will never be observed
                    self.expectations.creation_observed(key)
                break
            batch *= 2
        if first_err is not None:
            raise _ManageError(active + created, ready, terminating, first_err)
        return active + created, ready, terminating, None

    @staticmethod
    def _active_pods_for_removal(job: Obj, pods: list[Obj], rm_at_least: int) -> list[Obj]:
        """activePodsForRemoval: duplicated or out-of-range indexes first, then the least advanced pods."""
        rm: list[Obj] = []
        left = list(pods)
        if _indexed(job):
            completions = _completions(job) or 0
            seen: set[int] = set()
            left = []
            for p in sorted(pods, key=lambda p: (ju.completion_index(p), -int(podutil.is_pod_ready(p)))):
                ix = ju.completion_index(p)
                if ix < 0 or ix >= completions or ix in seen:
                    rm.append(p)
                else:
                    seen.add(ix)
                    left.append(p)
        if len(rm) < rm_at_least:
            left.sort(key=lambda p: podutil.deletion_rank_key(p))
            rm.extend(left[:rm_at_least - len(rm)])
        return rm

    @staticmethod
    def _first_pending_indexes(active_pods: list[Obj], succeeded: set[int], count: int, completions: int) -> list[int]:
        """firstPendingIndexes: the lowest indexes neither succeeded nor running."""
        taken = succeeded | {ju.completion_index(p) for p in active_pods}
        out = []
        for i in range(completions):
            if i not in taken:
                out.append(i)
                if len(out) == count:
                    break
        return out

    # ---------------------------------------------------------------- status tracking
    async def _track_status_and_remove_finalizers(self, key: str, job: Obj, pods: list[Obj], finished: Obj | None,
                                                  prev_indexes: set[int], succeeded_indexes: set[int],
                                                  terminating: int, new_backoff: ju.BackoffRecord,
                                                  needs_flush: bool) -> None:
        """trackJobStatusAndRemoveFinalizers: uncounted -> finalizer removed -> counters -> terminal condition."""
        status = job["status"]
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        unc_s: list[str] = list(uncounted.get("succeeded") or [])
        unc_f: list[str] = list(uncounted.get("failed") or [])
        expected_rm = self.finalizer_expectations.get(key, set())
        indexed = _indexed(job)
        completions = _completions(job) or 0
        if indexed:
            pods = sorted(pods, key=ju.completion_index)
        with_finalizer = {p["metadata"]["uid"] for p in pods if _has_finalizer(p) and p["metadata"]["uid"] not in expected_rm}
        if self._clean_uncounted(status, unc_s, unc_f, with_finalizer):
            needs_flush = True
        unc_s = list((status["uncountedTerminatedPods"] or {}).get("succeeded") or [])
        unc_f = list((status["uncountedTerminatedPods"] or {}).get("failed") or [])
        to_remove: list[Obj] = []
        new_indexes: list[int] = []
        reached_max = False
        job_terminating = bool(job["metadata"].get("deletionTimestamp"))
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if not _has_finalizer(pod) or uid in expected_rm:
                continue
            considered_failed = is_pod_failed(pod, job)
            if not (job_terminating or finished is not None or _phase(pod) == "Succeeded" or considered_failed):
                continue
            to_remove.append(pod)
            if _phase(pod) == "Succeeded" and uid not in unc_f:
                if indexed:
                    ix = ju.completion_index(pod)
                    if 0 <= ix < completions and ix not in prev_indexes:
                        new_indexes.append(ix)
                        needs_flush = True
                elif uid not in unc_s:
                    unc_s.append(uid)
                    needs_flush = True
            elif considered_failed or (finished is not None and finished["type"] != "SuccessCriteriaMet"):
                ix = ju.completion_index(pod)
                if uid not in unc_f and (not indexed or 0 <= ix < completions):
                    if ju.match_pod_failure_policy(job, pod)[1]:
                        unc_f.append(uid)
                        needs_flush = True
            if len(new_indexes) + len(unc_s) + len(unc_f) >= ju.MAX_UNCOUNTED_PODS:
                reached_max = True
                break
        status["uncountedTerminatedPods"] = {k: v for k, v in (("succeeded", unc_s), ("failed", unc_f)) if v}
        if indexed:
            all_indexes = set(succeeded_indexes) | set(new_indexes)
            s = ju.format_indexes(all_indexes)
            if s != (status.get("completedIndexes") or ""):
                needs_flush = True
            status["succeeded"] = len(all_indexes)
            status["completedIndexes"] = s
        now = metautil.now_rfc3339()
        if finished is not None and finished["type"] == "FailureTarget":
            if ju.find_condition(job, "FailureTarget") is None:
                status["conditions"] = [*(status.get("conditions") or []), finished]
                needs_flush = True
            finished = ju.new_condition("Failed", "True", finished.get("reason", ""), finished.get("message", ""), now)
        if finished is not None and finished["type"] == "SuccessCriteriaMet":
            if ju.find_condition(job, "SuccessCriteriaMet") is None:
                status["conditions"] = [*(status.get("conditions") or []), finished]
                needs_flush = True
            finished = ju.new_condition("Complete", "True", finished.get("reason", ""), finished.get("message", ""), now)
        if needs_flush:
            job = await self._update_status(job)
            status = job["status"]
            self.backoff[key] = new_backoff
            needs_flush = False
        rm_err: Exception | None = None
        if to_remove:
            self.finalizer_expectations.setdefault(key, set()).update(p["metadata"]["uid"] for p in to_remove)
            results = await asyncio.gather(*(self._remove_finalizer(p) for p in to_remove), return_exceptions=True)
            for p, r in zip(to_remove, results, strict=True):
                if isinstance(r, Exception):
                    self.finalizer_expectations.get(key, set()).discard(p["metadata"]["uid"])
                    rm_err = rm_err or r
                else:
                    with_finalizer.discard(p["metadata"]["uid"])
        unc = status.get("uncountedTerminatedPods") or {}
        if self._clean_uncounted(status, list(unc.get("succeeded") or []), list(unc.get("failed") or []),
                                 with_finalizer):
            needs_flush = True
        if rm_err is not None:
            if needs_flush:
                await self._update_status(job)
            raise rm_err
        job_finished = not reached_max and self._enact_finished(job, finished, terminating)
        if job_finished:
            needs_flush = True
        if needs_flush:
            job = await self._update_status(job)
            if job_finished and finished is not None:
                self._record_finished(job, finished)

    @staticmethod
    def _clean_uncounted(status: Obj, unc_s: list[str], unc_f: list[str], with_finalizer: set[str]) -> bool:
        """cleanUncountedPodsWithoutFinalizers: uncounted pods whose finalizer is gone move into the counters."""
        changed = False
        keep_s = [u for u in unc_s if u in with_finalizer]
        if len(keep_s) != len(unc_s):
            changed = True
            status["succeeded"] = int(status.get("succeeded") or 0) + len(unc_s) - len(keep_s)
        keep_f = [u for u in unc_f if u in with_finalizer]
        if len(keep_f) != len(unc_f):
            changed = True
            status["failed"] = int(status.get("failed") or 0) + len(unc_f) - len(keep_f)
        status["uncountedTerminatedPods"] = {k: v for k, v in (("succeeded", keep_s), ("failed", keep_f)) if v}
        return changed

    @staticmethod
    def _enact_finished(job: Obj, finished: Obj | None, terminating: int) -> bool:
        """enactJobFinished: the terminal condition once nothing is uncounted or still terminating."""
        if finished is None:
            return False
        status = job["status"]
        unc = status.get("uncountedTerminatedPods") or {}
        if unc.get("succeeded") or unc.get("failed") or terminating > 0:
            return False
        conds, _ = ju.ensure_condition(status.get("conditions") or [], finished["type"], "True",
                                       finished.get("reason", ""), finished.get("message", ""),
                                       finished["lastTransitionTime"])
        status["conditions"] = conds
        if finished["type"] == "Complete":
            status["completionTime"] = finished["lastTransitionTime"]
        return True

    def _record_finished(self, job: Obj, finished: Obj) -> None:
        if finished["type"] == "Complete":
            completions = _completions(job)
            if completions is not None and int(job["status"].get("succeeded") or 0) > completions:
                self.recorder.event(job, "Warning", "TooManySucceededPods",
                                    "Too many succeeded pods running after completion count reached")
            self.recorder.event(job, "Normal", "Completed", "Job completed")
        else:
            self.recorder.event(job, "Warning", finished.get("reason", ""), finished.get("message", ""))

    async def _update_status(self, job: Obj) -> Obj:
        status = job["status"]
        for k in ("active", "succeeded", "failed"):
            if not status.get(k):
                status.pop(k, None)
        updated = await self.jobs.update_status(job, namespace=job["metadata"]["namespace"])
        updated.setdefault("status", {}).setdefault("uncountedTerminatedPods", {})
        updated["kind"], updated["apiVersion"] = KIND, API_VERSION
        return updated

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.controller.start()
        self.orphans.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.orphans.stop()
        await self.recorder.stop()


class _ManageError(Exception):
    """A manageJob failure carrying the counters as they stand after the partial progress."""

    def __init__(self, active: int, ready: int, terminating: int, cause: Exception):
        super().__init__(str(cause))
        self.active, self.ready, self.terminating, self.cause = active, ready, terminating, cause

