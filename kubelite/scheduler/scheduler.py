"""The scheduler component: informers feed the cache and the queue; one loop runs scheduling cycles.

scheduleOne, as upstream: pop the next pod, PreFilter, Filter a sample of the nodes (adaptive
percentageOfNodesToScore, round-robin start), PostFilter (preemption) when nothing fits, PreScore and
Score the feasible nodes, pick the best (random among ties), assume the pod in the cache, Reserve,
then bind in the background so the next cycle starts at once. Failures record a FailedScheduling
event, set the PodScheduled=False condition and park the pod until a relevant cluster event.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory
from kubelite.scheduler.cache import Cache
from kubelite.scheduler.framework import (
    NODE_ADD,
    NODE_UPDATE,
    POD_ADD,
    POD_DELETE,
    POD_UPDATE,
    CycleState,
    Framework,
    Handle,
    Status,
    fit_error_message,
)
from kubelite.scheduler.nodeinfo import NodeInfo, PodInfo
from kubelite.scheduler.plugins import default_plugins
from kubelite.scheduler.queue import FLUSH_INTERVAL, SchedulingQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]
DEFAULT_SCHEDULER_NAME = "default-scheduler"
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
NO_NODES_AVAILABLE = "no nodes available to schedule pods"


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int = 0) -> int:
    """Upstream's numFeasibleNodesToFind: all nodes under 100, else an adaptive share (50% - n/125, >= 5%)."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    if percentage <= 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    if percentage >= 100:
        return num_all_nodes
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


def _is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


class FitError(Exception):
    def __init__(self, num_nodes: int, statuses: dict[str, Status], pre_filter: Status | None = None):
        super().__init__()
        self.num_nodes = num_nodes
        self.statuses = statuses
        self.pre_filter = pre_filter
        self.post_filter_msg = ""

    def plugins(self) -> set[str]:
        names = {st.plugin for st in self.statuses.values() if st.plugin}
        if self.pre_filter is not None and self.pre_filter.plugin:
            names.add(self.pre_filter.plugin)
        return names

    def message(self) -> str:
        if self.num_nodes == 0:
            return NO_NODES_AVAILABLE
        pre = self.pre_filter.message if self.pre_filter is not None else ""
        return fit_error_message(self.num_nodes, self.statuses, pre, self.post_filter_msg)


class Scheduler:
    """kube-scheduler with one profile; `client` is the one kubelite client (in-process or HTTPS)."""

    def __init__(self, client: Any, scheduler_name: str = DEFAULT_SCHEDULER_NAME,
                 percentage_of_nodes_to_score: int = 0):
        self.client = client
        self.scheduler_name = scheduler_name
        self.percentage = percentage_of_nodes_to_score
        self.factory = SharedInformerFactory(client, trim_managed_fields=True)
        self.pod_informer = self.factory.informer("", "v1", "pods")
        self.node_informer = self.factory.informer("", "v1", "nodes")
        self.ns_informer = self.factory.informer("", "v1", "namespaces")
        self.cache = Cache()
        self.queue = SchedulingQueue()
        self.recorder = EventRecorder(client, scheduler_name)
        self.handle = Handle(self.cache, client, self.recorder)
        self.handle.informer_factory, self.handle.queue = self.factory, self.queue  # VolumeBinding's listers and wake-ups
        self.framework = Framework(default_plugins(self.handle))
        self.handle.framework = self.framework
        self.next_start_node_index = 0
        self.scheduled = 0  # pods bound so far (bench and debugging)
        self._tasks: set[asyncio.Task] = set()
        self._loop_task: asyncio.Task | None = None
        self._flush_task: asyncio.Task | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.ns_informer.add_handler(self._ns_changed, lambda _o, n: self._ns_changed(n), self._ns_deleted)
        self.node_informer.add_handler(self._node_added, self._node_updated, self._node_deleted)
        self.pod_informer.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        await self.factory.start()
        await self.factory.wait_for_sync()
        loop = asyncio.get_running_loop()
        self._loop_task = loop.create_task(self.run(), name="scheduler-loop")
        self._flush_task = loop.create_task(self._flush_periodically(), name="scheduler-flush")
        log.info("scheduler %s started", self.scheduler_name)

    async def stop(self) -> None:
        self.queue.close()
        for t in [self._loop_task, self._flush_task, *self._tasks]:
            if t is not None:
                t.cancel()
        await asyncio.gather(*[t for t in [self._loop_task, self._flush_task, *self._tasks] if t],
                             return_exceptions=True)
        for p in self.framework.plugins:
            stop = getattr(p, "stop", None)
            if stop is not None:
                await stop()
        await self.factory.stop()
        await self.recorder.stop()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.queue.flush_unschedulable_left_over()

    # -- event handlers: only cache and queue bookkeeping ----------------------------------------

    def _responsible(self, pod: Obj) -> bool:
        return ((pod.get("spec") or {}).get("schedulerName") or DEFAULT_SCHEDULER_NAME) == self.scheduler_name

    def _move(self, event: str) -> None:
        self.queue.move_all(self.framework.events.get(event, set()))

    def _ns_changed(self, ns: Obj) -> None:
        meta = ns.get("metadata") or {}
        self.cache.namespace_labels[meta.get("name", "")] = meta.get("labels") or {}

    def _ns_deleted(self, ns: Obj) -> None:
        self.cache.namespace_labels.pop((ns.get("metadata") or {}).get("name", ""), None)

    def _node_added(self, node: Obj) -> None:
        self.cache.add_node(node)
        self._move(NODE_ADD)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        ni = self.cache.node(new["metadata"]["name"])
        before = (ni.labels, ni.taints, ni.prefer_no_schedule, ni.unschedulable, ni.alloc_cpu, ni.alloc_memory,
                  ni.alloc_pods, ni.alloc_scalar) if ni is not None else None
        ni = self.cache.update_node(new)
        after = (ni.labels, ni.taints, ni.prefer_no_schedule, ni.unschedulable, ni.alloc_cpu, ni.alloc_memory,
                 ni.alloc_pods, ni.alloc_scalar)
        if before != after:  # heartbeats change nothing the plugins look at
            self._move(NODE_UPDATE)

    def _node_deleted(self, node: Obj) -> None:
        self.cache.remove_node(node)

    def _pod_added(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            if not _is_terminal(pod):
                self.cache.add_pod(pod)
                if self.cache.has_pods_with_affinity() or (pod.get("spec") or {}).get("topologySpreadConstraints"):
                    self.queue.move_all(self.framework.events.get(POD_ADD, set()))
            return
        if self._responsible(pod) and not _is_terminal(pod) and not pod["metadata"].get("deletionTimestamp"):
            uid = pod["metadata"].get("uid", "")
            if not self.cache.is_assumed(uid):
                self.queue.add(PodInfo(pod))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        uid = new["metadata"].get("uid", "")
        if (new.get("spec") or {}).get("nodeName"):
            self.queue.delete(uid)
            self.cache.clear_nominated(uid)
            if _is_terminal(new):
                if self.cache.pods_on(new["spec"]["nodeName"]) is not None:
                    self.cache.remove_pod(new)
                    self._move(POD_DELETE)
                return
            self.cache.update_pod(new)
            if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
                self._move(POD_UPDATE)
            return
        if not self._responsible(new) or self.cache.is_assumed(uid):
            return
        if new["metadata"].get("deletionTimestamp") or _is_terminal(new):
            self.queue.delete(uid)
            return
        if uid in self.queue:
            self.queue.update(new)
        else:
            self.queue.add(PodInfo(new))

    def _pod_deleted(self, pod: Obj) -> None:
        uid = pod["metadata"].get("uid", "")
        self.cache.clear_nominated(uid)
        if (pod.get("spec") or {}).get("nodeName") or self.cache.is_assumed(uid):
            self.cache.remove_pod(pod)
            self._move(POD_DELETE)
        self.queue.delete(uid)

    # -- the scheduling loop -----------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            pi = await self.queue.pop()
            if pi is None:
                return
            try:
                self.schedule_one(pi)
            except Exception as e:  # a bug must not stop scheduling
                log.exception("scheduling %s failed", pi.key)
                self._handle_failure(pi, self.queue.scheduling_cycle, str(e), False, None, set())
            await asyncio.sleep(0)  # let informers and bindings run between cycles

    def schedule_one(self, pi: PodInfo) -> None:
        cycle = self.queue.scheduling_cycle
        live = self.pod_informer.store.get(pi.namespace, pi.name)
        if live is None or live["metadata"].get("uid") != pi.uid or live["metadata"].get("deletionTimestamp") \
                or (live.get("spec") or {}).get("nodeName"):
            self.queue.delete(pi.uid)  # deleted, or bound by someone else, meanwhile
            return
        if live is not pi.pod:
            pi.update(live)
        state = CycleState()
        try:
            node_name = self.schedule_pod(state, pi)
        except FitError as fe:
            nominated: str | None = None
            for p in self.framework.post_filter_plugins:
                nominated, st = p.post_filter(state, pi, fe.statuses)
                if st.code != 0:
                    fe.post_filter_msg = st.message
                break
            self._handle_failure(pi, cycle, fe.message(), True, nominated, fe.plugins())
            return
        # assume, reserve, then bind asynchronously
        self.cache.assume_pod(pi, node_name)
        self.framework.run_reserve(state, pi, node_name)
        self.queue.done(pi.uid)
        self._spawn(self._bind(state, pi, node_name))

    def schedule_pod(self, state: CycleState, pi: PodInfo) -> str:
        cache = self.cache
        all_nodes = cache.node_list
        if not all_nodes:
            raise FitError(0, {})
        st = self.framework.run_pre_filter(state, pi)
        if st is not None:
            if st.is_rejected():
                raise FitError(len(all_nodes), {n.name: st for n in all_nodes}, st)
            raise RuntimeError(st.message)
        filters = self.framework.active_filters(state)
        nominated_map = cache.nominated

        def check(node: NodeInfo) -> Status | None:
            if nominated_map and node.name in nominated_map:
                return self._filter_with_nominated(state, pi, node, filters)
            for name, fn in filters:
                s = fn(state, pi, node)
                if s is not None:
                    s.plugin = name
                    return s
            return None

        # a pod that preempted others tries its nominated node first
        nominated = (pi.pod.get("status") or {}).get("nominatedNodeName")
        if nominated:
            ni = cache.node(nominated)
            if ni is not None and check(ni) is None:
                return nominated

        if state.node_names is not None:
            nodes = [n for n in (cache.node(name) for name in sorted(state.node_names)) if n is not None]
            start = 0
        else:
            nodes = all_nodes
            start = self.next_start_node_index % len(nodes)
        n = len(nodes)
        want = num_feasible_nodes_to_find(n, self.percentage)
        feasible: list[NodeInfo] = []
        statuses: dict[str, Status] = {}
        processed = 0
        for i in range(n):
            node = nodes[(start + i) % n]
            processed += 1
            if nominated_map and node.name in nominated_map:
                s = self._filter_with_nominated(state, pi, node, filters)
            else:  # run_filters inlined: this loop is the scheduler's hot path
                s = None
                for name, fn in filters:
                    s = fn(state, pi, node)
                    if s is not None:
                        s.plugin = name
                        break
            if s is None:
                feasible.append(node)
                if len(feasible) >= want:
                    break
            else:
                statuses[node.name] = s
        if state.node_names is None:
            self.next_start_node_index = (start + processed) % n
        if not feasible:
            for node in all_nodes:  # nodes the PreFilterResult excluded count as not matching
                if node.name not in statuses and (state.node_names is not None and node.name not in state.node_names):
                    statuses[node.name] = Status(3, "node(s) didn't satisfy plugin(s) [NodeAffinity]",
                                                 plugin="NodeAffinity")
            raise FitError(len(all_nodes), statuses)
        if len(feasible) == 1:
            return feasible[0].name
        self.framework.run_pre_score(state, pi, feasible)
        scores = self.framework.run_score(state, pi, feasible)
        return self._select_host(feasible, scores)

    @staticmethod
    def _select_host(nodes: list[NodeInfo], scores: list[int]) -> str:
        """selectHost: the highest score, uniformly at random among ties."""
        best = max(scores)
        ties = [i for i, s in enumerate(scores) if s == best]
        return nodes[ties[0] if len(ties) == 1 else random.choice(ties)].name

    def _filter_with_nominated(self, state: CycleState, pi: PodInfo, node: NodeInfo,
                               filters: list) -> Status | None:
        """addNominatedPods: count pods nominated here with at least our priority, then filter."""
        others = [p for p in self.cache.nominated.get(node.name, {}).values()
                  if p.uid != pi.uid and p.priority >= pi.priority]
        target = node
        if others:
            target = node.clone()
            for p in others:
                target.add_pod(p)
        for name, fn in filters:
            s = fn(state, pi, target)
            if s is not None:
                s.plugin = name
                return s
        return None

    # -- binding cycle -----------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bind(self, state: CycleState, pi: PodInfo, node_name: str) -> None:
        try:
            st = await self.framework.run_bind(state, pi, node_name)
        except Exception as e:  # noqa: BLE001 - a failed bind is retried like upstream's handleBindingCycleError
            st = Status(1, str(e))
        if st is None:
            self.scheduled += 1
            self.cache.clear_nominated(pi.uid)
            self.recorder.event(pi.pod, "Normal", "Scheduled",
                                f"Successfully assigned {pi.namespace}/{pi.name} to {node_name}")
            return
        log.info("binding %s to %s failed: %s", pi.key, node_name, st.message)
        self.cache.forget_pod(pi)
        self.framework.run_unreserve(state, pi, node_name)
        self._move(POD_DELETE)  # the assumed pod's room is free again
        live = self.pod_informer.store.get(pi.namespace, pi.name)
        if live is not None and live["metadata"].get("uid") == pi.uid and not (live.get("spec") or {}).get("nodeName"):
            self.queue.add_backoff(pi)
            self.recorder.event(pi.pod, "Warning", "FailedScheduling", f"Binding rejected: {st.message}")

    # -- failures ----------------------------------------------------------------------------------

    def _handle_failure(self, pi: PodInfo, cycle: int, message: str, unschedulable: bool,
                        nominated: str | None, plugins: set[str]) -> None:
        pi.unschedulable_plugins = plugins
        self.queue.requeue(pi, cycle, unschedulable)
        if nominated is not None:
            self.cache.set_nominated(pi, nominated)
        self.recorder.event(pi.pod, "Warning", "FailedScheduling", message)
        self._spawn(self._update_status(pi, "Unschedulable" if unschedulable else "SchedulerError", message,
                                        nominated))

    async def _update_status(self, pi: PodInfo, reason: str, message: str, nominated: str | None) -> None:
        """updatePod: PodScheduled=False with the reason and message, and status.nominatedNodeName."""
        status = pi.pod.get("status") or {}
        old = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        want_nominated = nominated if nominated else ""
        have_nominated = status.get("nominatedNodeName") or ""
        same = old is not None and old.get("status") == "False" and old.get("reason") == reason \
            and old.get("message") == message
        if same and (nominated is None or want_nominated == have_nominated):
            return
        cond = {"type": "PodScheduled", "status": "False", "lastProbeTime": None, "reason": reason,
                "message": message,
                "lastTransitionTime": old.get("lastTransitionTime") if old and old.get("status") == "False"
                else metautil.now_rfc3339()}
        patch: dict = {"status": {"conditions": [cond]}}
        if nominated is not None and want_nominated != have_nominated:
            patch["status"]["nominatedNodeName"] = want_nominated or None
        try:
            await self.client.pods.patch(pi.name, patch, "strategic", namespace=pi.namespace, subresource="status")
        except StatusError as e:
            if e.code != 404:
                log.warning("updating the status of %s failed: %s", pi.key, e.message)
