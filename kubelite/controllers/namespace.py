"""Namespace controller: empties a terminating namespace, then releases its `kubernetes` finalizer.

Upstream's pkg/controller/namespace/deletion: for a namespace with a deletionTimestamp, delete
every namespaced object of every kind discovery serves at the time (custom resources included),
with deletecollection, report progress in the status
conditions (NamespaceContentRemaining, NamespaceFinalizersRemaining, ...), retry until nothing is
left, then PUT /api/v1/namespaces/<name>/finalize without "kubernetes"; the API server removes
the namespace once spec.finalizers is empty.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.informer import SharedInformerFactory
from kubelite.controllers.retry import quiet_conflicts

log = logging.getLogger(__name__)

Obj = dict[str, Any]

FINALIZER = "kubernetes"
RETRY_SECONDS = 1.0
CONDITION_TYPES = ("NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
                   "NamespaceDeletionContentFailure", "NamespaceContentRemaining", "NamespaceFinalizersRemaining")


class NamespaceController:
    def __init__(self, client: Any, factory: SharedInformerFactory, registry: Any, workers: int = 5):
        self.client = client
        self.namespaces = client.resource("", "v1", "namespaces")
        self.informer = factory.informer("", "v1", "namespaces")
        self.controller = Controller("namespace-controller", quiet_conflicts(self.sync), workers=workers)
        self.controller.watch(self.informer)
        self.registry = registry
        self._resources: list[Any] = []
        self._revision = -1

    def resources(self) -> list[Any]:
        """Discovery's namespaced, deletable resources, one (preferred) version per stored kind.

        Read again whenever the served API changed (the registry's revision moves when a
        CustomResourceDefinition is established or removed), as upstream's deleter asks discovery on
        every pass: custom objects of a CRD created after start-up are deleted too.
        """
        if self.registry.revision != self._revision:
            self._revision = self.registry.revision
            out: list[Any] = []
            seen: set[tuple[str, str]] = set()
            for res in sorted(self.registry.all(), key=lambda r: not r.preferred):
                if not res.namespaced or "list" not in res.verbs or "delete" not in res.verbs:
                    continue
                sid = (res.group if res.storage_group is None else res.storage_group,
                       res.storage_plural or res.plural)
                if sid in seen:
                    continue
                seen.add(sid)
                out.append(res)
            self._resources = out
        return self._resources

    async def sync(self, key: str) -> float | None:
        ns = self.informer.store.get(None, key)
        if ns is None or not (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None
        remaining, finalizers, failures = await self._delete_content(key)
        await self._update_conditions(ns, remaining, finalizers, failures)
        if remaining or failures:
            return RETRY_SECONDS
        if not await self._finalize(key):
            log.warning("namespace %s: finalize did not remove %r from spec.finalizers; retrying", key, FINALIZER)
            return 5.0
        return None

    async def _delete_content(self, namespace: str) -> tuple[dict[str, int], dict[str, int], list[str]]:
        """Delete everything in the namespace; count what is still there and the finalizers holding it."""
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        failures: list[str] = []
        for res in self.resources():
            rc = self.client.resource(res.group, res.version, res.plural)
            try:
                listed = await rc.list(namespace)
                items = listed.get("items") or []
                if not items:
                    continue
                if "deletecollection" in res.verbs:
                    await rc.delete_collection(namespace)
                else:
                    for obj in items:
                        try:
                            await rc.delete(obj["metadata"]["name"], namespace=namespace)
                        except StatusError as e:
                            if e.code != 404:
                                raise
                left = (await rc.list(namespace)).get("items") or []
            except StatusError as e:
                if e.code in (404, 405):
                    continue
                failures.append(e.message)
                continue
            if left:
                remaining[f"{res.plural}.{res.group}"] = len(left)
                for obj in left:
                    for f in (obj.get("metadata") or {}).get("finalizers") or []:
                        finalizers[f] = finalizers.get(f, 0) + 1
        return remaining, finalizers, failures

    async def _update_conditions(self, ns: Obj, remaining: dict[str, int], finalizers: dict[str, int],
                                 failures: list[str]) -> None:
        conds = {
            "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered", "All resources successfully discovered"),
            "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions",
                                                            "All legacy kube types successfully parsed"),
            "NamespaceDeletionContentFailure": (
                ("True", "ContentDeletionFailed", "Failed to delete all resource types, " + str(len(failures))
                 + " remaining: " + ", ".join(sorted(failures))) if failures else
                ("False", "ContentDeleted", "All content successfully deleted, may be waiting on finalization")),
            "NamespaceContentRemaining": (
                ("True", "SomeResourcesRemain", "Some resources are remaining: " + ", ".join(
                    f"{k} has {v} resource instances" for k, v in sorted(remaining.items())))
                if remaining else ("False", "ContentRemoved", "All content successfully removed")),
            "NamespaceFinalizersRemaining": (
                ("True", "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: " + ", ".join(
                    f"{k} in {v} resource instances" for k, v in sorted(finalizers.items())))
                if finalizers else ("False", "ContentHasNoFinalizers", "All content-preserving finalizers finished")),
        }
        status = metautil.deep_copy(ns.get("status") or {})
        old = {c.get("type"): c for c in status.get("conditions") or []}
        new_conds = [c for c in status.get("conditions") or [] if c.get("type") not in CONDITION_TYPES]
        changed = False
        for ctype in CONDITION_TYPES:
            st, reason, msg = conds[ctype]
            cur = old.get(ctype)
            if cur is not None and cur.get("status") == st and cur.get("reason") == reason and cur.get("message") == msg:
                new_conds.append(cur)
                continue
            changed = True
            # as upstream, the transition time moves only when the status does
            since = cur.get("lastTransitionTime") if cur is not None and cur.get("status") == st else None
            new_conds.append({"type": ctype, "status": st, "lastTransitionTime": since or metautil.now_rfc3339(),
                              "reason": reason, "message": msg})
        if not changed:
            return
        status["conditions"] = new_conds
        obj = dict(ns, status=status)
        try:
            await self.namespaces.update_status(obj)
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    async def _finalize(self, name: str) -> bool:
        """PUT .../finalize without "kubernetes"; True once the API server has let go of it."""
        ns = await self.namespaces.get(name)
        spec = dict(ns.get("spec") or {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        body = dict(ns, spec=spec)
        try:
            out = await self.namespaces.update_subresource(name, "finalize", body)
        except StatusError as e:
            if e.code == 404 and "finalize" not in e.message:
                return True  # already gone
            raise
        if out.get("kind") == "Status":
            return True
        return FINALIZER not in ((out.get("spec") or {}).get("finalizers") or [])

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
