"""CronJobController (upstream pkg/controller/cronjob, controllerv2): create Jobs on a cron schedule.

Watches CronJobs and Jobs; owns Jobs named `<cronjob>-<scheduled time in minutes since epoch>`.
One sync reconciles status.active with the Jobs that exist, records completions, works out the
most recent unmet schedule time (honouring startingDeadlineSeconds and timeZone), applies the
concurrency policy, creates the Job, prunes finished Jobs beyond the history limits, and asks to
be called again at the next schedule time. Schedules are parsed with croniter.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder, object_reference
from kubelite.client.informer import SharedInformerFactory, split_meta_namespace_key
from kubelite.controllers.job.util import find_condition, is_finished
from kubelite.controllers.refmanager import controller_ref
from kubelite.controllers.workloads import requeue_on_conflict

log = logging.getLogger(__name__)

Obj = dict[str, Any]

KIND = "CronJob"
API_VERSION = "batch/v1"
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = 0.1
MANY_MISSED = 100

_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
           "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


class ScheduleError(ValueError):
    pass


def parse_schedule(cj: Obj) -> tuple[str, tzinfo]:
    """The five-field expression and its location: spec.timeZone, a `TZ=`/`CRON_TZ=` prefix, or local time."""
    spec = cj.get("spec") or {}
    expr = (spec.get("schedule") or "").strip()
    tz: tzinfo | None = None
    if expr.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, expr = expr.partition(" ")
        tz = ZoneInfo(prefix.split("=", 1)[1])
        expr = expr.strip()
    if spec.get("timeZone"):
        tz = ZoneInfo(spec["timeZone"])
    expr = _MACROS.get(expr, expr)
    if expr.startswith("@every"):
        raise ScheduleError(f"unsupported schedule {expr!r}")
    if not croniter.is_valid(expr) or len(expr.split()) != 5:
        raise ScheduleError(f"unparseable schedule {spec.get('schedule')!r}")
    if tz is None:
        tz = datetime.now().astimezone().tzinfo or UTC
    return expr, tz


def next_after(expr: str, tz: tzinfo, t: float) -> float:
    return croniter(expr, datetime.fromtimestamp(t, tz)).get_next(datetime).timestamp()


def most_recent_schedule_time(cj: Obj, now: float, expr: str, tz: tzinfo,
                              include_deadline: bool = True) -> tuple[float | None, int]:
    """mostRecentScheduleTime: (the latest schedule time in (earliest, now], how many were missed)."""
    meta = cj.get("metadata") or {}
    status = cj.get("status") or {}
    earliest = metautil.parse_time(status.get("lastScheduleTime")) or metautil.parse_time(meta.get("creationTimestamp"))
    if earliest is None:
        earliest = now
    sds = (cj.get("spec") or {}).get("startingDeadlineSeconds")
    if include_deadline and sds is not None:
        earliest = max(earliest, now - int(sds))
    t1 = next_after(expr, tz, earliest)
    if now < t1:
        return None, 0
    t2 = next_after(expr, tz, t1)
    if now < t2:
        return t1, 1
    it = croniter(expr, datetime.fromtimestamp(t1, tz))
    most_recent, missed = t1, 1
    while True:
        t = it.get_next(datetime).timestamp()
        if t > now:
            break
        most_recent = t
        missed += 1
        if missed > 10000:  # far behind: jump to the last time at or before now
            most_recent = croniter(expr, datetime.fromtimestamp(now, tz)).get_prev(datetime).timestamp()
            break
    return most_recent, missed


def job_name(cj: Obj, scheduled: float) -> str:
    """getJobName: `<cronjob>-<scheduled time in minutes since the epoch>`."""
    return f"{cj['metadata']['name']}-{int(scheduled) // 60}"


def job_from_template(cj: Obj, scheduled: float, tz: tzinfo) -> Obj:
    """getJobFromTemplate2: the template's labels, annotations and spec, owned by the CronJob."""
    tmpl = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmeta = tmpl.get("metadata") or {}
    cm = cj["metadata"]
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = datetime.fromtimestamp(scheduled, tz).isoformat(timespec="seconds") \
        .replace("+00:00", "Z")
    meta: Obj = {"name": job_name(cj, scheduled), "namespace": cm["namespace"], "annotations": annotations,
                 "ownerReferences": [{"apiVersion": API_VERSION, "kind": KIND, "name": cm["name"], "uid": cm["uid"],
                                      "controller": True, "blockOwnerDeletion": True}]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": metautil.deep_copy(tmpl.get("spec") or {})}


def _finished_type(job: Obj) -> str | None:
    for t in ("Complete", "Failed"):
        if find_condition(job, t) is not None:
            return t
    return None


class CronJobController:
    """kube-controller-manager's cronjob controller."""

    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 2):
        self.client = client
        self.cronjobs = client.resource("batch", "v1", "cronjobs")
        self.jobs = client.resource("batch", "v1", "jobs")
        self.cj_informer = factory.informer("batch", "v1", "cronjobs")
        self.job_informer = factory.informer("batch", "v1", "jobs")
        self.recorder = EventRecorder(client, "cronjob-controller")
        self.controller = Controller("cronjob-controller", self.sync, workers=workers)
        self.controller.watch(self.cj_informer)
        self.controller.watch(self.job_informer, self._owner_key)

    def _owner_key(self, job: Obj) -> str | None:
        ref = controller_ref(job)
        if ref is None or ref.get("kind") != KIND:
            return None
        return f"{job['metadata'].get('namespace')}/{ref.get('name', '')}"

    @requeue_on_conflict
    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        shared = self.cj_informer.store.get(ns, name)
        if shared is None:
            return None
        cj = metautil.deep_copy(shared)
        uid = cj["metadata"]["uid"]
        jobs = [j for j in self.job_informer.store.list(ns) if (controller_ref(j) or {}).get("uid") == uid]
        cj.setdefault("status", {})
        changed = await self._reconcile_active(cj, jobs)
        requeue: float | None = None
        try:
            requeue, created = await self._sync_schedule(cj)
            changed = changed or created
        finally:
            if changed:
                await self._update_status(cj)
        await self._cleanup_finished(cj, jobs)
        return requeue

    async def _reconcile_active(self, cj: Obj, jobs: list[Obj]) -> bool:
        status = cj["status"]
        changed = False
        active = list(status.get("active") or [])
        active_uids = {a.get("uid") for a in active}
        for j in jobs:
            juid = j["metadata"]["uid"]
            found = juid in active_uids
            finished = is_finished(j)
            if not found and not finished:
                fresh = await self._get_fresh(cj)
                if fresh is not None and juid in {a.get("uid") for a in (fresh.get("status") or {}).get("active") or []}:
                    # our cache is behind our own write: carry on from the live object (cronJob = cjCopy)
                    cj["metadata"] = fresh["metadata"]
                    cj["status"] = status = dict(fresh.get("status") or {})
                    active = list(status.get("active") or [])
                    active_uids = {a.get("uid") for a in active}
                    continue
                self.recorder.event(cj, "Warning", "UnexpectedJob",
                                    f"Saw a job that the controller did not create or forgot: {j['metadata']['name']}")
            elif found and finished:
                active = [a for a in active if a.get("uid") != juid]
                active_uids.discard(juid)
                self.recorder.event(cj, "Normal", "SawCompletedJob",
                                    f"Saw completed job: {j['metadata']['name']}, condition: {_finished_type(j)}")
                changed = True
            if find_condition(j, "Complete") is not None:
                done = (j.get("status") or {}).get("completionTime")
                last = status.get("lastSuccessfulTime")
                if done and (not last or (metautil.parse_time(done) or 0) > (metautil.parse_time(last) or 0)):
                    status["lastSuccessfulTime"] = done
                    changed = True
        by_uid = {j["metadata"]["uid"] for j in jobs}
        for a in list(active):
            if a.get("uid") in by_uid:
                continue
            try:
                await self.jobs.get(a.get("name", ""), namespace=a.get("namespace") or cj["metadata"]["namespace"])
            except StatusError as e:
                if e.code == 404:
                    self.recorder.event(cj, "Normal", "MissingJob", f"Active job went missing: {a.get('name')}")
                    active = [x for x in active if x.get("uid") != a.get("uid")]
                    changed = True
        if active != (status.get("active") or []):
            changed = True
        if active:
            status["active"] = active
        else:
            status.pop("active", None)
        return changed

    async def _get_fresh(self, cj: Obj) -> Obj | None:
        try:
            return await self.cronjobs.get(cj["metadata"]["name"], namespace=cj["metadata"]["namespace"])
        except StatusError:
            return None

    async def _sync_schedule(self, cj: Obj) -> tuple[float | None, bool]:
        """The schedule half of syncCronJob: (seconds until the next call, whether status changed)."""
        if cj["metadata"].get("deletionTimestamp"):
            return None, False
        spec = cj.get("spec") or {}
        try:
            expr, tz = parse_schedule(cj)
        except (ScheduleError, Exception) as e:
            if spec.get("timeZone") and not isinstance(e, ScheduleError):
                self.recorder.event(cj, "Warning", "UnknownTimeZone",
                                    f"invalid timeZone: {spec.get('timeZone')!r}: {e}")
            else:
                self.recorder.event(cj, "Warning", "InvalidSchedule",
                                    f"invalid schedule: {spec.get('schedule')} : {e}")
            return None, False
        if spec.get("suspend"):
            return None, False
        now = time.time()

        def until_next() -> float:
            return max(next_after(expr, tz, now) - now, 0.0) + NEXT_SCHEDULE_DELTA

        scheduled, missed = most_recent_schedule_time(cj, now, expr, tz)
        if scheduled is None:
            return until_next(), False
        if missed > MANY_MISSED:
            self.recorder.event(cj, "Warning", "TooManyMissedTimes",
                                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or "
                                "check clock skew")
        sds = spec.get("startingDeadlineSeconds")
        if sds is not None and scheduled + int(sds) < now:
            stamp = datetime.fromtimestamp(scheduled, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
            self.recorder.event(cj, "Warning", "MissSchedule", f"Missed scheduled time to start a job: {stamp}")
            return until_next(), False
        status = cj["status"]
        name = job_name(cj, scheduled)
        if any(a.get("name") == name for a in status.get("active") or []) or \
                metautil.parse_time(status.get("lastScheduleTime")) == float(int(scheduled)):
            return until_next(), False
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status.get("active"):
            self.recorder.event(cj, "Normal", "JobAlreadyActive",
                                "Not starting job because prior execution is running and concurrency policy is Forbid")
            return until_next(), False
        changed = False
        if policy == "Replace":
            for a in list(status.get("active") or []):
                try:
                    job = await self.jobs.get(a.get("name", ""), namespace=cj["metadata"]["namespace"])
                except StatusError as e:
                    if e.code != 404:
                        raise
                    continue
                if await self._delete_job(cj, job):
                    status["active"] = [x for x in status.get("active") or [] if x.get("uid") != a.get("uid")]
                    changed = True
            if not status.get("active"):
                status.pop("active", None)
        job = job_from_template(cj, scheduled, tz)
        try:
            created = await self.jobs.create(job, namespace=cj["metadata"]["namespace"])
        except StatusError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                try:
                    existing = await self.jobs.get(job["metadata"]["name"], namespace=cj["metadata"]["namespace"])
                except StatusError:
                    return until_next(), changed
                if (controller_ref(existing) or {}).get("uid") != cj["metadata"]["uid"]:
                    return until_next(), changed
                if is_finished(existing):
                    return until_next(), changed
                created = existing
            else:
                if e.code == 403 and "being terminated" in e.message:
                    return None, changed  # the namespace is going away with us
                self.recorder.event(cj, "Warning", "FailedCreate", f"Error creating job: {e.message}")
                raise
        else:
            self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}")
        created.setdefault("kind", "Job")
        created.setdefault("apiVersion", "batch/v1")
        ref = object_reference(created)
        active = [a for a in status.get("active") or [] if a.get("uid") != ref.get("uid")]
        status["active"] = [*active, ref]
        status["lastScheduleTime"] = metautil.now_rfc3339(scheduled)
        return until_next(), True

    async def _delete_job(self, cj: Obj, job: Obj) -> bool:
        m = job["metadata"]
        try:
            await self.jobs.delete(m["name"], namespace=m["namespace"], propagation_policy="Background")
        except StatusError as e:
            if e.code != 404:
                self.recorder.event(cj, "Warning", "FailedDelete", f"Deleted job: {e.message}")
                return False
        self.recorder.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {m['name']}")
        return True

    async def _cleanup_finished(self, cj: Obj, jobs: list[Obj]) -> None:
        """cleanupFinishedJobs: keep successfulJobsHistoryLimit (3) and failedJobsHistoryLimit (1)."""
        spec = cj.get("spec") or {}
        if cj["metadata"].get("deletionTimestamp"):
            return
        for ctype, field, default in (("Complete", "successfulJobsHistoryLimit", 3),
                                      ("Failed", "failedJobsHistoryLimit", 1)):
            limit = spec.get(field, default)
            if limit is None:
                continue
            done = [j for j in jobs if _finished_type(j) == ctype and not j["metadata"].get("deletionTimestamp")]
            if len(done) <= int(limit):
                continue

            def started(j: Obj) -> float:
                st = (j.get("status") or {}).get("startTime") or j["metadata"].get("creationTimestamp")
                return metautil.parse_time(st) or 0.0

            done.sort(key=lambda j: (started(j), j["metadata"]["name"]))
            for j in done[:len(done) - int(limit)]:
                await self._delete_job(cj, j)

    async def _update_status(self, cj: Obj) -> None:
        try:
            await self.cronjobs.update_status(cj, namespace=cj["metadata"]["namespace"])
        except StatusError as e:
            if e.code != 404:  # a conflict means our copy is stale: retry from the cache
                raise

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()
