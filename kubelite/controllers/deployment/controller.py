"""DeploymentController: watches Deployments, ReplicaSets and pods; owns ReplicaSets.

One sync of a deployment key: claim ReplicaSets (adopt/release by selector), then either only
sync status (being deleted), scale (paused or a scaling event), roll back (rollback annotation),
or take one step of the Recreate or RollingUpdate strategy. Mirrors upstream's
pkg/controller/deployment/deployment_controller.go.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.api.selectors import selector_from_label_selector
from kubelite.client.controller import Controller
from kubelite.client.events import EventRecorder
from kubelite.client.informer import SharedInformerFactory, split_meta_namespace_key
from kubelite.controllers.deployment import progress, recreate, rollback, rolling, sync
from kubelite.controllers.deployment.util import REVISION_ANNOTATION, annotations
from kubelite.controllers.refmanager import ControllerRefManager, controller_ref, recheck_owner
from kubelite.controllers.retry import quiet_conflicts

log = logging.getLogger(__name__)

Obj = dict[str, Any]

COMPONENT = "deployment-controller"


class DeploymentController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 5):
        self.client = client
        self.deployments = client.resource("apps", "v1", "deployments")
        self.replicasets = client.resource("apps", "v1", "replicasets")
        self.d_informer = factory.informer("apps", "v1", "deployments")
        self.rs_informer = factory.informer("apps", "v1", "replicasets")
        self.pod_informer = factory.informer("", "v1", "pods")
        self.recorder = EventRecorder(client, COMPONENT)
        self.controller = Controller(COMPONENT, quiet_conflicts(self.sync), workers=workers)
        self.controller.watch(self.d_informer)
        self.rs_informer.add_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pod_informer.add_handler(on_delete=self._pod_deleted)

    # ---------------------------------------------------------------- event handlers
    def _deployment_key_for(self, obj: Obj, ref: Obj | None) -> str | None:
        if ref is None or ref.get("kind") != "Deployment":
            return None
        ns = obj["metadata"].get("namespace")
        d = self.d_informer.store.get(ns, ref.get("name", ""))
        if d is None or d["metadata"].get("uid") != ref.get("uid"):
            return None
        return f"{ns}/{d['metadata']['name']}"

    def _deployments_matching(self, rs: Obj) -> list[str]:
        ns = rs["metadata"].get("namespace")
        labels = rs["metadata"].get("labels") or {}
        out = []
        for d in self.d_informer.store.list(ns):
            try:
                sel = selector_from_label_selector((d.get("spec") or {}).get("selector"))
            except Exception:
                continue
            if not sel.empty() and sel.matches(labels):
                out.append(f"{ns}/{d['metadata']['name']}")
        return out

    def _rs_added(self, rs: Obj) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            self._rs_deleted(rs)
            return
        ref = controller_ref(rs)
        if ref is not None:
            key = self._deployment_key_for(rs, ref)
            if key:
                self.controller.enqueue(key)
            return
        for key in self._deployments_matching(rs):
            self.controller.enqueue(key)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        cur, prev = controller_ref(new), controller_ref(old)
        if prev is not None and (cur is None or cur.get("uid") != prev.get("uid")):
            key = self._deployment_key_for(old, prev)
            if key:
                self.controller.enqueue(key)
        if cur is not None:
            key = self._deployment_key_for(new, cur)
            if key:
                self.controller.enqueue(key)
            return
        if (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {}) or prev is not None:
            for key in self._deployments_matching(new):
                self.controller.enqueue(key)

    def _rs_deleted(self, rs: Obj) -> None:
        key = self._deployment_key_for(rs, controller_ref(rs))
        if key:
            self.controller.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for every old pod to be gone: a pod deletion may unblock it."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        ns = pod["metadata"].get("namespace")
        rs = self.rs_informer.store.get(ns, ref.get("name", ""))
        if rs is None:
            return
        key = self._deployment_key_for(rs, controller_ref(rs))
        if not key:
            return
        d = self.d_informer.store.get(*split_meta_namespace_key(key))
        if d is not None and ((d.get("spec") or {}).get("strategy") or {}).get("type") == "Recreate":
            self.controller.enqueue(key)

    # ---------------------------------------------------------------- sync
    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        cached = self.d_informer.store.get(ns, name)
        if cached is None:
            return None
        d = metautil.deep_copy(cached)
        spec = d.get("spec") or {}
        sel = spec.get("selector")
        if sel is not None and not (sel.get("matchLabels") or sel.get("matchExpressions")):
            self.recorder.event(d, "Warning", "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector is required.")
            if (d.get("status") or {}).get("observedGeneration", 0) < d["metadata"].get("generation", 0):
                d.setdefault("status", {})["observedGeneration"] = d["metadata"].get("generation", 0)
                await self.write_status(d)
            return None
        rs_list = await self.replica_sets_for(d)
        if d["metadata"].get("deletionTimestamp"):
            await sync.sync_status_only(self, d, rs_list)
            return None
        await progress.check_paused_conditions(self, d)
        if spec.get("paused"):
            await sync.sync(self, d, rs_list)
            return None
        if rollback.rollback_to(d) is not None:
            await rollback.rollback(self, d, rs_list)
            return None
        if sync.is_scaling_event(d, rs_list):
            await sync.sync(self, d, rs_list)
            return None
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            await recreate.rollout_recreate(self, d, rs_list, self.pod_map(d, rs_list))
        else:
            await rolling.rollout_rolling(self, d, rs_list)
        return None

    async def replica_sets_for(self, d: Obj) -> list[Obj]:
        """ReplicaSets this deployment controls, adopting orphans and releasing mismatches."""
        ns = d["metadata"]["namespace"]
        sel = selector_from_label_selector((d.get("spec") or {}).get("selector"))
        mgr = ControllerRefManager(self.replicasets, d, "apps/v1", "Deployment",
                                   lambda rs: sel.matches(rs["metadata"].get("labels") or {}),
                                   recheck_owner(self.deployments, d))
        claimed = await mgr.claim(self.rs_informer.store.list(ns))
        return [metautil.deep_copy(rs) for rs in claimed]

    def pod_map(self, d: Obj, rs_list: list[Obj]) -> dict[str, list[Obj]]:
        """Pods of this deployment grouped by the uid of the ReplicaSet controlling them."""
        ns = d["metadata"]["namespace"]
        sel = selector_from_label_selector((d.get("spec") or {}).get("selector"))
        uids = {rs["metadata"]["uid"]: [] for rs in rs_list}
        for pod in self.pod_informer.store.list(ns, sel):
            ref = controller_ref(pod)
            if ref is not None and ref.get("uid") in uids:
                uids[ref["uid"]].append(pod)
        return uids

    # ---------------------------------------------------------------- writes
    async def write_status(self, d: Obj) -> Obj:
        """UpdateStatus of the deployment (and, as upstream's status update does, its revision annotation)."""
        want_rev = annotations(d).get(REVISION_ANNOTATION)
        # DeploymentStatus fields are all omitempty
        d["status"] = {k: v for k, v in (d.get("status") or {}).items() if v not in (0, None, [])}
        out = await self.deployments.update_status(d)
        if annotations(out).get(REVISION_ANNOTATION) != want_rev and want_rev is not None:
            # this API server keeps metadata on status writes: set the annotation with a regular update
            fixed = dict(out)
            fixed["metadata"] = dict(out["metadata"])
            fixed["metadata"]["annotations"] = dict(annotations(out), **{REVISION_ANNOTATION: want_rev})
            out = await self.deployments.update(fixed)
        d.clear()
        d.update(out)
        return d

    async def update_deployment(self, d: Obj) -> Obj:
        out = await self.deployments.update(d)
        d.clear()
        d.update(out)
        return d

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.recorder.stop()


__all__ = ["DeploymentController", "StatusError"]
