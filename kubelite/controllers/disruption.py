"""DisruptionController (upstream pkg/controller/disruption): PodDisruptionBudget status.

Watches PDBs and pods (and the workload controllers, for their scale). For each PDB it counts the
selected pods that are healthy (Ready and not being deleted, not recently evicted), works out how
many must stay healthy (minAvailable, or the controllers' total scale minus maxUnavailable) and
publishes disruptionsAllowed with the DisruptionAllowed condition; the eviction subresource reads it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.api.selectors import selector_from_label_selector
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory, split_meta_namespace_key
from kubelite.controllers import podutil
from kubelite.controllers.refmanager import controller_ref
from kubelite.controllers.workloads import requeue_on_conflict

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DELETION_TIMEOUT = 2 * 60.0  # an evicted pod not deleted within this is healthy again

# controller kinds whose spec.replicas is the expected scale (finders of getExpectedScale)
_SCALABLE = {
    ("apps", "ReplicaSet"): ("apps", "v1", "replicasets"),
    ("", "ReplicationController"): ("", "v1", "replicationcontrollers"),
    ("apps", "StatefulSet"): ("apps", "v1", "statefulsets"),
    ("apps", "Deployment"): ("apps", "v1", "deployments"),
}


class ExpectedScaleError(Exception):
    pass


def _scaled(value: Any, total: int) -> int:
    """GetScaledValueFromIntOrPercent rounding up."""
    if isinstance(value, str) and value.endswith("%"):
        return int(math.ceil(int(value[:-1]) * total / 100))
    return int(value)


class DisruptionController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 2):
        self.client = client
        self.pdbs = client.resource("policy", "v1", "poddisruptionbudgets")
        self.pdb_informer = factory.informer("policy", "v1", "poddisruptionbudgets")
        self.pod_informer = factory.informer("", "v1", "pods")
        self.informers = {gk: factory.informer(*gvr) for gk, gvr in _SCALABLE.items()}
        self.recorder = EventRecorder(client, "controllermanager")
        self.controller = Controller("disruption-controller", self.sync, workers=workers)
        self.controller.watch(self.pdb_informer)
        self.pod_informer.add_handler(self._pod_changed, lambda _o, n: self._pod_changed(n), self._pod_changed)
        for inf in self.informers.values():
            inf.add_handler(self._workload_changed, lambda _o, n: self._workload_changed(n), self._workload_changed)

    def _pod_changed(self, pod: Obj) -> None:
        ns = pod["metadata"].get("namespace")
        labels = pod["metadata"].get("labels") or {}
        for pdb in self.pdb_informer.store.list(ns):
            try:
                sel = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
            except Exception:
                continue
            if sel.matches(labels):
                self.controller.enqueue(pdb)

    def _workload_changed(self, obj: Obj) -> None:
        for pdb in self.pdb_informer.store.list(obj["metadata"].get("namespace")):
            self.controller.enqueue(pdb)

    # ---------------------------------------------------------------- sync
    @requeue_on_conflict
    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        pdb = self.pdb_informer.store.get(ns, name)
        if pdb is None:
            return None
        spec = pdb.get("spec") or {}
        try:
            sel = selector_from_label_selector(spec.get("selector"))
        except Exception:
            sel = None
        pods = [] if sel is None else [p for p in self.pod_informer.store.list(ns) if sel.matches_object(p)]
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        try:
            expected, desired, unmanaged = self._expected_pod_count(pdb, pods)
        except ExpectedScaleError as e:
            self.recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                f"Failed to calculate the number of expected pods: {e}")
            await self._fail_safe(pdb, str(e))
            return None
        if unmanaged:
            self.recorder.event(pdb, "Warning", "UnmanagedPods",
                                f"Pods selected by this PodDisruptionBudget (selector: {sel.to_string() if sel else ''})"
                                " were found to be unmanaged. As a result, the status of the PDB cannot be calculated "
                                "correctly, which may result in undefined behavior. To account for these pods please "
                                "set \".spec.minAvailable\" field of the PDB to an integer value.")
        now = time.time()
        disrupted, recheck = self._disrupted_pods(pdb, pods, now)
        healthy = sum(1 for p in pods if not p["metadata"].get("deletionTimestamp")
                      and p["metadata"]["name"] not in disrupted and podutil.is_pod_ready(p))
        await self._update_status(pdb, healthy, desired, expected, disrupted)
        return recheck

    def _expected_pod_count(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int, list[str]]:
        """getExpectedPodCount: (expectedPods, desiredHealthy, unmanaged pod names)."""
        spec = pdb.get("spec") or {}
        unmanaged: list[str] = []
        if spec.get("maxUnavailable") is not None:
            expected, unmanaged = self._expected_scale(pdb, pods)
            max_unavailable = _scaled(spec["maxUnavailable"], expected)
            return expected, max(expected - max_unavailable, 0), unmanaged
        min_available = spec.get("minAvailable")
        if min_available is None:
            return len(pods), 0, unmanaged
        if isinstance(min_available, int):
            return len(pods), min_available, unmanaged
        if isinstance(min_available, str) and min_available.endswith("%"):
            expected, unmanaged = self._expected_scale(pdb, pods)
            return expected, _scaled(min_available, expected), unmanaged
        return len(pods), int(min_available), unmanaged

    def _expected_scale(self, pdb: Obj, pods: list[Obj]) -> tuple[int, list[str]]:
        """getExpectedScale: the sum of spec.replicas of the distinct controllers of the pods."""
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        ns = pdb["metadata"]["namespace"]
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            if ref.get("uid") in scales:
                continue
            owner, scale = self._find_scale(ns, ref)
            if owner is None:
                raise ExpectedScaleError(f"found no controllers for pod {pod['metadata']['name']!r}")
            scales[owner] = scale
        return sum(scales.values()), unmanaged

    def _find_scale(self, ns: str, ref: Obj) -> tuple[str | None, int]:
        group = (ref.get("apiVersion") or "").split("/")[0] if "/" in (ref.get("apiVersion") or "") else ""
        gvr_key = (group, ref.get("kind", ""))
        inf = self.informers.get(gvr_key)
        if inf is None:
            return None, 0
        obj = inf.store.get(ns, ref.get("name", ""))
        if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
            return None, 0
        if gvr_key == ("apps", "ReplicaSet"):
            dref = controller_ref(obj)
            if dref is not None and dref.get("kind") == "Deployment":
                dep = self.informers[("apps", "Deployment")].store.get(ns, dref.get("name", ""))
                if dep is not None and dep["metadata"].get("uid") == dref.get("uid"):
                    return dep["metadata"]["uid"], int((dep.get("spec") or {}).get("replicas", 1))
        return obj["metadata"]["uid"], int((obj.get("spec") or {}).get("replicas", 1))

    def _disrupted_pods(self, pdb: Obj, pods: list[Obj], now: float) -> tuple[dict[str, str], float | None]:
        """buildDisruptedPodMap: evictions not yet turned into deletions, dropped after DELETION_TIMEOUT."""
        existing = {p["metadata"]["name"]: p for p in pods}
        out: dict[str, str] = {}
        recheck: float | None = None
        for name, stamp in ((pdb.get("status") or {}).get("disruptedPods") or {}).items():
            pod = existing.get(name)
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                continue
            t = metautil.parse_time(stamp) or 0.0
            expires = t + DELETION_TIMEOUT
            if expires <= now:
                continue
            out[name] = stamp
            recheck = expires - now if recheck is None else min(recheck, expires - now)
        return out, recheck

    async def _fail_safe(self, pdb: Obj, message: str) -> None:
        status = dict(pdb.get("status") or {})
        status["disruptionsAllowed"] = 0
        status["observedGeneration"] = pdb["metadata"].get("generation", 1)
        status["conditions"] = _set_condition(status.get("conditions"), "False", "SyncFailed", message,
                                              pdb["metadata"].get("generation", 1))
        await self._write(pdb, status)

    async def _update_status(self, pdb: Obj, healthy: int, desired: int, expected: int,
                             disrupted: dict[str, str]) -> None:
        allowed = max(healthy - desired, 0) if expected > 0 else 0
        gen = pdb["metadata"].get("generation", 1)
        old = pdb.get("status") or {}
        status: Obj = {"currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
                       "disruptionsAllowed": allowed, "observedGeneration": gen}
        if disrupted:
            status["disruptedPods"] = disrupted
        if allowed > 0:
            status["conditions"] = _set_condition(old.get("conditions"), "True", "SufficientPods", "", gen)
        else:
            status["conditions"] = _set_condition(old.get("conditions"), "False", "InsufficientPods", "", gen)
        if {k: v for k, v in old.items() if v not in (None, {}, [])} == status:
            return
        await self._write(pdb, status)

    async def _write(self, pdb: Obj, status: Obj) -> None:
        try:
            await self.pdbs.update_status({**pdb, "status": status})
        except StatusError as e:
            if e.code == 404:
                return
            raise

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()


def _set_condition(conditions: list[Obj] | None, status: str, reason: str, message: str, gen: int) -> list[Obj]:
    """apimeta.SetStatusCondition for DisruptionAllowed: the transition time moves only with the status."""
    old = next((c for c in conditions or [] if c.get("type") == "DisruptionAllowed"), None)
    ltt = old.get("lastTransitionTime") if old is not None and old.get("status") == status else metautil.now_rfc3339()
    cond = {"type": "DisruptionAllowed", "status": status, "observedGeneration": gen, "reason": reason,
            "message": message, "lastTransitionTime": ltt}
    return [c for c in conditions or [] if c.get("type") != "DisruptionAllowed"] + [cond]
