"""The scheduling framework: statuses, cycle state, the plugin interface and the profile running them.

As kube-scheduler's framework, a plugin implements some of the extension points; the profile
(`Framework`) runs them in order. Python-specific choice: Filter is called per node (it may stop
early) but PreScore/Score take the whole list of feasible nodes, one call per plugin per cycle,
since a Python call per node per plugin would cost more than the scoring itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubelite.scheduler.cache import Cache
    from kubelite.scheduler.nodeinfo import NodeInfo, PodInfo

# framework.Code
SUCCESS, ERROR, UNSCHEDULABLE, UNSCHEDULABLE_AND_UNRESOLVABLE, WAIT, SKIP = range(6)
MAX_NODE_SCORE = 100

# cluster events a rejected pod may wait for (framework.ClusterEvent, simplified to strings)
NODE_ADD, NODE_UPDATE, POD_ADD, POD_UPDATE, POD_DELETE = "Node/Add", "Node/Update", "Pod/Add", "Pod/Update", "Pod/Delete"
ALL_EVENTS = frozenset((NODE_ADD, NODE_UPDATE, POD_ADD, POD_UPDATE, POD_DELETE))


class Status:
    """A plugin's verdict; reasons are the phrases the FitError histogram counts."""

    __slots__ = ("code", "reasons", "plugin")

    def __init__(self, code: int, *reasons: str, plugin: str = ""):
        self.code = code
        self.reasons = list(reasons)
        self.plugin = plugin

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def is_rejected(self) -> bool:
        return self.code in (UNSCHEDULABLE, UNSCHEDULABLE_AND_UNRESOLVABLE)

    def __repr__(self) -> str:
        return f"Status({self.code}, {self.reasons!r}, plugin={self.plugin!r})"


def unschedulable(*reasons: str) -> Status:
    return Status(UNSCHEDULABLE, *reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(UNSCHEDULABLE_AND_UNRESOLVABLE, *reasons)


SKIPPED = Status(SKIP)


class CycleState(dict):
    """Per-pod, per-cycle scratch space plugins share (framework.CycleState); keys are plugin names."""

    def __init__(self) -> None:
        super().__init__()
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()
        self.node_names: set[str] | None = None  # PreFilterResult: only these nodes can fit


class Handle:
    """What plugins may use beyond the cycle's arguments (framework.Handle): the cache and the API."""

    def __init__(self, cache: Cache, client: Any = None, recorder: Any = None, framework: Framework | None = None):
        self.cache = cache
        self.client = client
        self.recorder = recorder
        self.framework = framework


class Plugin:
    """Base of every plugin. Implement any of:

    pre_filter(state, pod) -> Status | None          (SKIPPED: this plugin's filter is not needed)
    filter(state, pod, node) -> Status | None         (None: the node fits)
    post_filter(state, pod, statuses) -> (nominated node or None, Status)
    pre_score(state, pod, nodes) -> Status | None     (SKIPPED: no opinion for this pod)
    score(state, pod, nodes) -> list[int]             (already normalized to 0..100)
    reserve(state, pod, node_name) / unreserve(state, pod, node_name)
    async bind(state, pod, node_name) -> Status | None
    """

    name = ""
    weight = 1
    # cluster events that may make a pod this plugin rejected schedulable (EventsToRegister)
    events: frozenset[str] = ALL_EVENTS

    def __init__(self, handle: Handle):
        self.handle = handle


class Framework:
    """One profile (default-scheduler): plugins by extension point, in registration order."""

    def __init__(self, plugins: Iterable[Plugin]):
        self.plugins = list(plugins)
        by = self._by_point
        self.pre_filter_plugins = by("pre_filter")
        self.filter_plugins = by("filter")
        self.post_filter_plugins = by("post_filter")
        self.pre_score_plugins = by("pre_score")
        self.score_plugins = by("score")
        self.reserve_plugins = by("reserve")
        self.bind_plugins = by("bind")
        self.events: dict[str, set[str]] = {}
        for p in self.plugins:
            for ev in p.events:
                self.events.setdefault(ev, set()).add(p.name)

    def _by_point(self, point: str) -> list[Plugin]:
        return [p for p in self.plugins if callable(getattr(p, point, None))]

    def plugin(self, name: str) -> Plugin | None:
        return next((p for p in self.plugins if p.name == name), None)

    def run_pre_filter(self, state: CycleState, pod: PodInfo) -> Status | None:
        for p in self.pre_filter_plugins:
            st = p.pre_filter(state, pod)
            if st is None:
                continue
            if st.code == SKIP:
                state.skip_filter.add(p.name)
                continue
            st.plugin = p.name
            return st
        return None

    def active_filters(self, state: CycleState) -> list[tuple[str, Any]]:
        return [(p.name, p.filter) for p in self.filter_plugins if p.name not in state.skip_filter]

    def run_filters(self, state: CycleState, pod: PodInfo, node: NodeInfo,
                    filters: list[tuple[str, Any]] | None = None) -> Status | None:
        """The first rejecting plugin's status (upstream stops at the first failure too)."""
        for name, fn in filters if filters is not None else self.active_filters(state):
            st = fn(state, pod, node)
            if st is not None:
                st.plugin = name
                return st
        return None

    def run_pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> None:
        for p in self.pre_score_plugins:
            st = p.pre_score(state, pod, nodes)
            if st is not None and st.code == SKIP:
                state.skip_score.add(p.name)

    def run_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """Weighted sum of every plugin's normalized scores, per node."""
        totals = [0] * len(nodes)
        for p in self.score_plugins:
            if p.name in state.skip_score:
                continue
            scores = p.score(state, pod, nodes)
            w = p.weight
            for i, s in enumerate(scores):
                totals[i] += s * w
        return totals

    def run_reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        for p in self.reserve_plugins:
            p.reserve(state, pod, node_name)

    def run_unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        for p in reversed(self.reserve_plugins):
            unreserve = getattr(p, "unreserve", None)
            if unreserve is not None:
                unreserve(state, pod, node_name)

    async def run_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None:
        for p in self.bind_plugins:
            st = await p.bind(state, pod, node_name)
            if st is not None and st.code == SKIP:
                continue
            return st
        return Status(ERROR, "no bind plugin bound the pod")


def default_normalize(scores: list[int], reverse: bool = False) -> list[int]:
    """helper.DefaultNormalizeScore: scale to 0..100 by the maximum, optionally reversed."""
    mx = max(scores) if scores else 0
    if mx == 0:
        return [MAX_NODE_SCORE] * len(scores) if reverse else [0] * len(scores)
    if reverse:
        return [MAX_NODE_SCORE - MAX_NODE_SCORE * s // mx for s in scores]
    return [MAX_NODE_SCORE * s // mx for s in scores]


NO_NODE_AVAILABLE = "0/{} nodes are available"


def fit_error_message(num_nodes: int, statuses: dict[str, Status], pre_filter_msg: str = "",
                      post_filter_msg: str = "") -> str:
    """FitError.Error(): `0/N nodes are available: <sorted histogram>. <postfilter message>.`"""
    msg = NO_NODE_AVAILABLE.format(num_nodes) + ":"
    if pre_filter_msg:
        msg += f" {pre_filter_msg}."
    else:
        counts: dict[str, int] = {}
        for st in statuses.values():
            for r in st.reasons:
                counts[r] = counts.get(r, 0) + 1
        if counts:
            msg += " " + ", ".join(sorted(f"{n} {r}" for r, n in counts.items())) + "."
    if post_filter_msg:
        msg += f" {post_filter_msg}."
    return msg
