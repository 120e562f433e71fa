"""EventRecorder: core/v1 Events as upstream's client-go/tools/record writes them.

`recorder.event(obj, "Normal", "ScalingReplicaSet", "Scaled up replica set x to 3")` returns at
once; a background task writes. Repeats go through upstream's EventCorrelator: a per-object spam
filter (burst 25, one token per 5 minutes), aggregation of >= 10 similar events within 10 minutes
into "(combined from similar events): ...", and identical events PATCHing count and lastTimestamp
of the first one instead of creating new objects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from kubelite.api.errors import StatusError

log = logging.getLogger(__name__)

MAX_QUEUED = 1000
CACHE_SIZE = 4096
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL = 600.0
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0


def _now() -> tuple[float, str]:
    t = time.time()
    return t, datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: dict, field_path: str = "") -> dict:
    """An ObjectReference to `obj` (ref.GetReference): kind, namespace, name, uid, apiVersion, resourceVersion."""
    meta = obj.get("metadata") or {}
    ref = {
        "kind": obj.get("kind", ""),
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "apiVersion": obj.get("apiVersion", ""),
        "resourceVersion": meta.get("resourceVersion", ""),
    }
    if field_path:
        ref["fieldPath"] = field_path
    return {k: v for k, v in ref.items() if v}


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_entry(self, key: Any) -> Any:
        v = self.get(key)
        if v is not None:
            self.move_to_end(key)
        return v

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class EventRecorder:
    def __init__(self, client: Any, component: str, host: str = "", rate_limiter: Any | None = None):
        """`rate_limiter` (a workqueue BucketRateLimiter, may be shared between recorders) paces the
        writes as the kubelet's eventRecordQPS/eventBurst pace its event client."""
        self.client = client
        self.rate_limiter = rate_limiter
        self.component = component
        self.host = host
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._spam = _LRU(CACHE_SIZE)  # source+object -> [tokens, last refill]
        self._aggregate = _LRU(CACHE_SIZE)  # aggregate key -> [set(messages), last seen]
        self._observed = _LRU(CACHE_SIZE)  # full key -> {"name", "count", "firstTimestamp", "resourceVersion"}

    def _source(self) -> dict:
        return {"component": self.component, "host": self.host} if self.host else {"component": self.component}

    def event(self, obj: dict, event_type: str, reason: str, message: str) -> None:
        """Record an event about `obj`; never blocks (drops, logged, if the writer falls far behind)."""
        t, stamp = _now()
        ref = object_reference(obj)
        namespace = ref.get("namespace") or "default"
        event = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": f"{ref.get('name', '')}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": self._source(),
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": event_type,
            "reportingComponent": self.component,
        }
        if self.host:
            event["reportingInstance"] = self.host
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            log.warning("event %s/%s dropped: no running event loop", reason, ref.get("name"))
            return
        if self._queue is None:
            self._queue = asyncio.Queue(MAX_QUEUED)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._writer(), name=f"events-{self.component}")
        try:
            self._queue.put_nowait((t, event))
        except asyncio.QueueFull:
            log.warning("event queue full, dropping %s %s on %s", event_type, reason, ref.get("name"))

    def eventf(self, obj: dict, event_type: str, reason: str, fmt: str, *args: Any) -> None:
        self.event(obj, event_type, reason, fmt % args if args else fmt)

    async def flush(self) -> None:
        """Wait until every event recorded so far is written (for tests and orderly shutdown)."""
        if self._queue is not None:
            await self._queue.join()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # -- EventCorrelator -----------------------------------------------------------------------

    def _spam_ok(self, event: dict, t: float) -> bool:
        io = event["involvedObject"]
        key = (self.component, self.host, io.get("kind"), io.get("namespace"), io.get("name"), io.get("uid"),
               io.get("apiVersion"), event["type"], event["reason"], event["message"])
        bucket = self._spam.get_entry(key)
        if bucket is None:
            bucket = [float(SPAM_BURST), t]
            self._spam.put(key, bucket)
        bucket[0] = min(float(SPAM_BURST), bucket[0] + (t - bucket[1]) * SPAM_QPS)
        bucket[1] = t
        if bucket[0] < 1.0:
            return False
        bucket[0] -= 1.0
        return True

    def _correlate(self, event: dict, t: float) -> tuple[Any, dict | None]:
        """Returns (dedupe key, patch or None for a create) and rewrites `event` in place."""
        io = event["involvedObject"]
        agg_key = (self.component, self.host, io.get("kind"), io.get("namespace"), io.get("name"),
                   io.get("uid"), io.get("apiVersion"), event["type"], event["reason"])
        rec = self._aggregate.get_entry(agg_key)
        if rec is None or t - rec[1] > AGGREGATE_INTERVAL:
            rec = [set(), t]
            self._aggregate.put(agg_key, rec)
        rec[0].add(event["message"])
        rec[1] = t
        if len(rec[0]) < AGGREGATE_MAX_EVENTS:
            key: Any = (*agg_key, event["message"])
        else:
            key = agg_key
            event["message"] = "(combined from similar events): " + event["message"]
        seen = self._observed.get_entry(key)
        if seen is None:
            return key, None
        event["count"] = seen["count"] + 1
        event["firstTimestamp"] = seen["firstTimestamp"]
        event["metadata"]["name"] = seen["name"]
        return key, {"count": event["count"], "lastTimestamp": event["lastTimestamp"], "message": event["message"]}

    async def _writer(self) -> None:
        assert self._queue is not None
        while True:
            t, event = await self._queue.get()
            try:
                if self._spam_ok(event, t):
                    if self.rate_limiter is not None:
                        delay = self.rate_limiter.when(None)
                        if delay > 0:
                            await asyncio.sleep(delay)
                    key, patch = self._correlate(event, t)
                    written = await self._write(event, patch)
                    if written is not None:
                        self._observed.put(key, {
                            "name": written["metadata"]["name"], "count": written.get("count", 1),
                            "firstTimestamp": written.get("firstTimestamp") or event["firstTimestamp"]})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing event failed")
            finally:
                self._queue.task_done()

    async def _write(self, event: dict, patch: dict | None) -> dict | None:
        events = self.client.resource("", "v1", "events")
        ns, name = event["metadata"]["namespace"], event["metadata"]["name"]
        for attempt in range(3):
            try:
                if patch is not None:
                    try:
                        return await events.patch(name, patch, "merge", namespace=ns)
                    except StatusError as e:
                        if e.code != 404:
                            raise
                        patch = None  # the event was deleted (TTL): create it again with the count so far
                return await events.create(event, namespace=ns)
            except StatusError as e:
                if e.code == 409 and e.reason == "AlreadyExists":
                    return None
                if e.code < 500 and e.code != 429:
                    log.warning("event %s/%s rejected: %s", ns, name, e.message)
                    return None
                await asyncio.sleep(0.5 * (attempt + 1))
        log.warning("event %s/%s not written after retries", ns, name)
        return None
