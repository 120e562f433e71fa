"""VolumeBinding: a pod's PersistentVolumeClaims decide where it may run, and get bound for it.

PreFilter rejects pods whose claims are missing, being deleted, or unbound with Immediate binding
(the PV controller binds those, and the pod is retried when claims or volumes change). Filter checks
bound volumes' node affinity and, for WaitForFirstConsumer claims, that the node has a matching
Available volume or that the class can provision. Reserve keeps the choice for the chosen node;
PreBind writes it (the volume's claimRef, or the claim's volume.kubernetes.io/selected-node for its
provisioner) and waits for the claims to be bound. This framework has no PreBind point: the plugin
runs it as the first bind plugin, answering Skip so that DefaultBinder binds the pod afterwards.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.controllers import pvutil
from kubelite.scheduler.framework import ERROR, SKIPPED, Plugin, Status, unresolvable, unschedulable

Obj = dict[str, Any]

ERR_UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
ERR_NODE_CONFLICT = "node(s) had volume node affinity conflict"
ERR_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
BIND_TIMEOUT = 600.0  # bindTimeoutSeconds
PVC_EVENTS = frozenset(("PersistentVolumeClaim/Add", "PersistentVolumeClaim/Update",
                        "PersistentVolume/Add", "PersistentVolume/Update", "StorageClass/Add", "Node/Add"))


class _PodVolumes:
    """PreFilter's findings: bound claims' volumes, and claims to bind on the chosen node."""

    __slots__ = ("bound", "to_bind", "by_node", "chosen")

    def __init__(self) -> None:
        self.bound: list[Obj] = []
        self.to_bind: list[Obj] = []
        self.by_node: dict[str, list[tuple[Obj, Obj | None]]] = {}  # node -> (claim, static volume or None)
        self.chosen: list[tuple[Obj, Obj | None]] = []


class VolumeBinding(Plugin):
    name = "VolumeBinding"
    events = PVC_EVENTS

    def __init__(self, handle: Any):
        super().__init__(handle)
        factory = getattr(handle, "informer_factory", None)
        self.enabled = factory is not None
        if not self.enabled:
            return
        self.pvcs = factory.informer("", "v1", "persistentvolumeclaims")
        self.pvs = factory.informer("", "v1", "persistentvolumes")
        self.classes = factory.informer("storage.k8s.io", "v1", "storageclasses")
        self.pvcs.add_handler(lambda o: self._moved(), lambda o, n: self._moved(), None)
        self.pvs.add_handler(lambda o: self._moved(), lambda o, n: self._moved(), None)
        self.classes.add_handler(lambda o: self._moved(), None, None)
        self._changed = asyncio.Event()

    def _moved(self) -> None:
        """A claim, volume or class changed: parked pods this plugin rejected get another try, and
        PreBind waiters look again."""
        queue = getattr(self.handle, "queue", None)
        if queue is not None:
            queue.move_all({self.name})
        self._changed.set()

    # ------------------------------------------------------------------------- PreFilter
    def pre_filter(self, state: Any, pod: Any) -> Status | None:
        if not self.enabled:
            return SKIPPED
        names = pvutil.pod_claim_names(pod.pod)
        if not names:
            return SKIPPED
        pv_store = self.pvs.store
        found = _PodVolumes()
        for name in names:
            pvc = self.pvcs.store.get(pod.namespace, name)
            if pvc is None:
                return unresolvable(f'persistentvolumeclaim "{name}" not found')
            if pvc["metadata"].get("deletionTimestamp"):
                return unresolvable(f'persistentvolumeclaim "{name}" is being deleted')
            volume_name = (pvc.get("spec") or {}).get("volumeName")
            if volume_name and (pvc.get("status") or {}).get("phase") == "Bound":
                pv = pv_store.get(None, volume_name)
                if pv is not None:
                    found.bound.append(pv)
                continue
            if pvutil.is_delay_binding(pvc, self.classes.store):
                found.to_bind.append(pvc)
            else:
                return unresolvable(ERR_UNBOUND_IMMEDIATE)
        state[self.name] = found
        return None

    # ------------------------------------------------------------------------- Filter
    def filter(self, state: Any, pod: Any, node: Any) -> Status | None:
        found: _PodVolumes | None = state.get(self.name)
        if found is None:
            return None
        node_obj = node.node or {"metadata": {"name": node.name, "labels": node.labels}}
        for pv in found.bound:
            if not pvutil.node_affinity_matches(pv, node_obj):
                return unresolvable(ERR_NODE_CONFLICT)
        if not found.to_bind:
            return None
        volumes = self.pvs.store.list()
        taken: set[str] = set()
        plan: list[tuple[Obj, Obj | None]] = []
        for pvc in found.to_bind:
            pv = pvutil.find_matching_volume(pvc, volumes, node=node_obj, exclude=taken, delay_binding=True)
            if pv is not None:
                taken.add(pv["metadata"]["name"])
                plan.append((pvc, pv))
                continue
            sc = self.classes.store.get(None, pvutil.claim_class(pvc))
            if sc is None or (sc.get("provisioner") or pvutil.NO_PROVISIONER) == pvutil.NO_PROVISIONER:
                return unschedulable(ERR_BIND_CONFLICT)
            plan.append((pvc, None))
        found.by_node[node.name] = plan
        return None

    # ------------------------------------------------------------------------- Reserve
    def reserve(self, state: Any, pod: Any, node_name: str) -> None:
        found: _PodVolumes | None = state.get(self.name)
        if found is not None:
            found.chosen = found.by_node.get(node_name, [])

    def unreserve(self, state: Any, pod: Any, node_name: str) -> None:
        found: _PodVolumes | None = state.get(self.name)
        if found is not None:
            found.chosen = []

    # ------------------------------------------------------------------------- PreBind
    async def bind(self, state: Any, pod: Any, node_name: str) -> Status | None:
        found: _PodVolumes | None = state.get(self.name)
        if found is None or not found.chosen:
            return SKIPPED
        client = self.handle.client
        try:
            for pvc, pv in found.chosen:
                meta = pvc["metadata"]
                if pv is not None:
                    fresh = metautil.deep_copy(pv)
                    fresh["spec"]["claimRef"] = pvutil.claim_ref(pvc)
                    fresh["metadata"].setdefault("annotations", {})[pvutil.ANN_BOUND_BY_CONTROLLER] = "yes"
                    await client.persistentvolumes.update(fresh)
                elif (meta.get("annotations") or {}).get(pvutil.ANN_SELECTED_NODE) != node_name:
                    await client.persistentvolumeclaims.patch(
                        meta["name"], {"metadata": {"annotations": {pvutil.ANN_SELECTED_NODE: node_name}}},
                        namespace=meta["namespace"])
        except StatusError as e:
            return Status(ERROR, f"binding volumes: {e.message}")
        deadline = time.monotonic() + BIND_TIMEOUT
        while True:
            pending = [pvc for pvc, _ in found.chosen if not self._bound(pvc)]
            if not pending:
                return SKIPPED
            for pvc in pending:
                live = self.pvcs.store.get(pvc["metadata"]["namespace"], pvc["metadata"]["name"])
                if live is None or live["metadata"].get("uid") != pvc["metadata"].get("uid"):
                    return Status(ERROR, f'binding volumes: persistentvolumeclaim "{pvc["metadata"]["name"]}" '
                                         "not found")
            left = deadline - time.monotonic()
            if left <= 0:
                return Status(ERROR, "binding volumes: context deadline exceeded")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))
            except TimeoutError:
                pass

    def _bound(self, pvc: Obj) -> bool:
        live = self.pvcs.store.get(pvc["metadata"]["namespace"], pvc["metadata"]["name"])
        if live is None:
            return False
        ann = live["metadata"].get("annotations") or {}
        return bool((live.get("spec") or {}).get("volumeName")) and ann.get(pvutil.ANN_BIND_COMPLETED) == "yes"
