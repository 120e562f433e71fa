"""TTLAfterFinishedController (upstream pkg/controller/ttlafterfinished): delete finished Jobs
ttlSecondsAfterFinished after their Complete or Failed condition, cascading in the foreground."""

from __future__ import annotations

import logging
import time
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.informer import SharedInformerFactory, split_meta_namespace_key
from kubelite.controllers.job.util import is_finished

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def finish_time(job: Obj) -> float | None:
    """jobFinishTime: lastTransitionTime of the True Complete or Failed condition."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return metautil.parse_time(c.get("lastTransitionTime"))
    return None


def time_left(job: Obj, now: float | None = None) -> float | None:
    """Seconds until the TTL expires (<= 0: expired); None when the Job needs no cleanup."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None or not is_finished(job) or (job.get("metadata") or {}).get("deletionTimestamp"):
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    return finished + int(ttl) - (time.time() if now is None else now)


class TTLAfterFinishedController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 2):
        self.jobs = client.resource("batch", "v1", "jobs")
        self.job_informer = factory.informer("batch", "v1", "jobs")
        self.controller = Controller("ttl-after-finished-controller", self.sync, workers=workers)
        self.controller.watch(self.job_informer, self._key_if_needed)

    @staticmethod
    def _key_if_needed(job: Obj) -> str | None:
        if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is None or not is_finished(job):
            return None
        return f"{job['metadata']['namespace']}/{job['metadata']['name']}"

    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        job = self.job_informer.store.get(ns, name)
        if job is None:
            return None
        left = time_left(job)
        if left is None:
            return None
        if left > 0:
            return left
        # the cached TTL may be stale: decide on a fresh read, then delete exactly that object
        try:
            fresh = await self.jobs.get(name, namespace=ns)
        except StatusError as e:
            if e.code == 404:
                return None
            raise
        left = time_left(fresh)
        if left is None:
            return None
        if left > 0:
            return left
        try:
            await self.jobs.delete(name, namespace=ns, propagation_policy="Foreground",
                                   preconditions={"uid": fresh["metadata"]["uid"]})
        except StatusError as e:
            if e.code not in (404, 409):
                raise
        return None

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
