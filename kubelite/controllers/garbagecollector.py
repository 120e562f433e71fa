"""Garbage collector: deletes objects whose owners are gone, and implements foreground and orphan deletion.

As upstream's pkg/controller/garbagecollector: informers ("monitors") on every listable, deletable
resource discovery serves feed a graph of ownerReferences (uid -> node with owners and dependents).
The served resources are re-read whenever they change (graph_builder's resyncMonitors), so custom
resources of CRDs established or deleted at run time gain or lose their monitor without a restart.
Owners seen only through a reference are "virtual" nodes, verified by a live GET and kept virtual
until an informer reports them. Two queues of uids:
- attempt-to-delete: a dependent whose owners may all be gone (checked live, never from the
  cache) is deleted; an owner with the foregroundDeletion finalizer loses the finalizer once no
  dependent with blockOwnerDeletion is left;
- attempt-to-orphan: an owner with the orphan finalizer has its uid removed from its dependents'
  ownerReferences, then the finalizer removed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.api.meta import parse_time
from kubelite.client.controller import Controller
from kubelite.client.informer import Informer, SharedInformerFactory
from kubelite.controllers.retry import quiet_conflicts

log = logging.getLogger(__name__)

Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
_SETTLE_SECONDS = 2.0
ORPHAN = "orphan"
# kinds the collector never looks at: events are never owned and are numerous
IGNORED = {("", "events"), ("events.k8s.io", "events")}
REQUIRED_VERBS = {"list", "watch", "delete"}
# how often discovery (the served resources) is compared with what the monitors watch; upstream
# polls every 30s, we compare a revision number, so a new CRD is picked up within a second
RESYNC_SECONDS = 0.1  # a revision compare: cheap, and a CRD that lives briefly is still seen
# a node that cannot be settled yet (an owner kind not served yet, an owner not yet seen by any
# informer) is checked again with this backoff, as upstream requeues it rate-limited
RETRY_BASE_SECONDS = 0.5
RETRY_MAX_SECONDS = 60.0


@dataclass
class Node:
    uid: str
    api_version: str
    kind: str
    name: str
    namespace: str | None
    owners: list[Obj] = field(default_factory=list)
    dependents: set[str] = field(default_factory=set)
    virtual: bool = False
    being_deleted: bool = False
    deleting_dependents: bool = False


def _refs(obj: Obj) -> list[Obj]:
    return [r for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid")]


class _AbsentOwners(OrderedDict):
    """An LRU of owner uids verified absent, sparing a GET per dependent of a deleted owner."""

    def add(self, uid: str) -> None:
        self[uid] = True
        self.move_to_end(uid)
        while len(self) > 500:
            self.popitem(last=False)


@dataclass
class _Monitor:
    """The informer feeding the graph with one resource's objects."""

    gvr: tuple[str, str, str]
    informer: Any
    dedicated: bool  # ours to start and stop (custom resources); else the manager's shared informer


def deletable_resources(registry: Any) -> dict[tuple[str, str], Any]:
    """Discovery's preferred version of every resource the collector can list, watch and delete,
    by stored kind (upstream's GetDeletableResources over ServerPreferredResources)."""
    out: dict[tuple[str, str], Any] = {}
    for res in sorted(registry.all(), key=lambda r: not r.preferred):
        if (res.group, res.plural) in IGNORED or not REQUIRED_VERBS <= set(res.verbs):
            continue
        store_id = (res.group if res.storage_group is None else res.storage_group, res.storage_plural or res.plural)
        out.setdefault(store_id, res)  # another served version of a kind already watched
    return out


class GarbageCollector:
    def __init__(self, client: Any, factory: SharedInformerFactory, registry: Any, workers: int = 5):
        self.client = client
        self.factory = factory
        self.registry = registry
        self.nodes: dict[str, Node] = {}
        self.absent = _AbsentOwners()
        self.delete_queue = Controller("garbage-collector-delete", quiet_conflicts(self._attempt_to_delete),
                                       workers=workers)
        self.orphan_queue = Controller("garbage-collector-orphan", quiet_conflicts(self._attempt_to_orphan), workers=1)
        self._kinds: dict[tuple[str, str], Any] = {}  # (group, kind) -> Resource
        self._monitors: dict[tuple[str, str], _Monitor] = {}
        self._revision = -1
        self._retries: dict[str, int] = {}  # uid -> checks of a node that cannot be settled yet
        self._resync_task: asyncio.Task | None = None
        self._running = False
        self._sync_monitors()

    # ---------------------------------------------------------------- monitors (discovery resync)
    def _sync_monitors(self) -> list[Any]:
        """Watch every deletable resource discovery lists now; the dedicated informers to stop.

        As upstream's resyncMonitors: resources that appeared (a CustomResourceDefinition established
        at run time) get an informer, those gone (a CRD deleted) lose theirs. Built-in resources share
        the manager's informers; custom ones get informers of their own, started and stopped here.
        """
        self._revision = self.registry.revision
        wanted = deletable_resources(self.registry)
        kinds: dict[tuple[str, str], Any] = {}
        for res in sorted(self.registry.all(), key=lambda r: not r.preferred):
            if (res.group, res.plural) not in IGNORED and REQUIRED_VERBS <= set(res.verbs):
                kinds.setdefault((res.group, res.kind), res)
        old_kinds, self._kinds = self._kinds, kinds
        stopped: list[Any] = []
        gone: set[tuple[str, str]] = set()
        for sid, mon in list(self._monitors.items()):
            res = wanted.get(sid)
            if res is not None and (res.group, res.version, res.plural) == mon.gvr:
                continue
            if not mon.dedicated:
                continue  # a shared informer stays; built-in resources do not come and go
            del self._monitors[sid]
            stopped.append(mon.informer)
            log.info("garbage collector: stopped monitoring %s", "/".join(mon.gvr))
            gone |= {gk for gk, r in old_kinds.items()
                     if (r.group, r.plural) == (mon.gvr[0], mon.gvr[2]) and gk not in kinds}
        if gone:
            # a resource no longer served (its CRD deleted, which deleted every object first): its
            # objects are gone even if their deletion events raced the monitor's stop
            for node in [n for n in self.nodes.values() if not n.virtual]:
                group = node.api_version.rpartition("/")[0]
                if (group, node.kind) in gone:
                    self._remove_node(node.uid)
        for sid, res in wanted.items():
            if sid in self._monitors:
                continue
            gvr = (res.group, res.version, res.plural)
            if res.custom:
                inf = Informer(self.client, *gvr)
                if self._running:
                    log.info("garbage collector: monitoring %s", "/".join(gvr))
            else:
                inf = self.factory.informer(*gvr)
            inf.add_handler(self._on_upsert, lambda _old, new: self._on_upsert(new), self._on_delete)
            self._monitors[sid] = _Monitor(gvr, inf, res.custom)
            if self._running and res.custom:
                inf.start()
        return stopped

    async def _resync_loop(self) -> None:
        """Re-read discovery when the served API changed: a revision compare, so cheap to do often."""
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            if self.registry.revision == self._revision:
                continue
            try:
                for inf in self._sync_monitors():
                    await inf.stop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("garbage collector: resyncing monitors")

    # ---------------------------------------------------------------- graph builder
    def _resource_for(self, api_version: str, kind: str) -> Any:
        group, _, version = api_version.rpartition("/")
        res = self.registry.by_kind(group, version, kind)
        return res if res is not None else self._kinds.get((group, kind))

    def _on_upsert(self, obj: Obj) -> None:
        m = obj.get("metadata") or {}
        uid = m.get("uid")
        if not uid:
            return
        refs = _refs(obj)
        node = self.nodes.get(uid)
        if node is None:
            node = Node(uid, obj.get("apiVersion", ""), obj.get("kind", ""), m.get("name", ""), m.get("namespace"))
            self.nodes[uid] = node
            node.owners = refs
            for ref in refs:
                self._add_dependent(ref, node)
        else:
            if node.virtual:
                node.virtual = False
                node.api_version, node.kind = obj.get("apiVersion", node.api_version), obj.get("kind", node.kind)
                node.name, node.namespace = m.get("name", node.name), m.get("namespace")
            old = {r["uid"]: r for r in node.owners}
            new = {r["uid"]: r for r in refs}
            if old != new:
                for ouid, ref in old.items():
                    if ouid not in new or new[ouid] != ref:
                        owner = self.nodes.get(ouid)
                        if owner is not None:
                            if ouid not in new:
                                owner.dependents.discard(uid)
                            if owner.deleting_dependents:
                                self.delete_queue.enqueue(ouid)
                node.owners = refs
                for ouid, ref in new.items():
                    if ouid not in old:
                        self._add_dependent(ref, node)
        being_deleted = bool(m.get("deletionTimestamp"))
        finalizers = m.get("finalizers") or []
        if being_deleted and ORPHAN in finalizers:
            self.orphan_queue.enqueue(uid)
        if being_deleted and FOREGROUND in finalizers:
            node.deleting_dependents = True
            for dep in list(node.dependents):
                self.delete_queue.enqueue(dep)
            self.delete_queue.enqueue(uid)
        node.being_deleted = being_deleted
        if refs and not being_deleted and any(r["uid"] in self.absent for r in refs):
            self.delete_queue.enqueue(uid)

    def _add_dependent(self, ref: Obj, dep: Node) -> None:
        owner = self.nodes.get(ref["uid"])
        if owner is None:
            owner = Node(ref["uid"], ref.get("apiVersion", ""), ref.get("kind", ""), ref.get("name", ""),
                         dep.namespace, virtual=True)
            self.nodes[ref["uid"]] = owner
            self.delete_queue.enqueue(ref["uid"])  # verify that the owner exists
        owner.dependents.add(dep.uid)

    def _on_delete(self, obj: Obj) -> None:
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            self._remove_node(uid)

    def _remove_node(self, uid: str) -> None:
        node = self.nodes.pop(uid, None)
        if node is None:
            return
        if node.dependents:
            self.absent.add(uid)
        for dep in node.dependents:
            self.delete_queue.enqueue(dep)
        for ref in node.owners:
            owner = self.nodes.get(ref["uid"])
            if owner is None:
                continue
            owner.dependents.discard(uid)
            if owner.deleting_dependents:
                self.delete_queue.enqueue(ref["uid"])

    # ---------------------------------------------------------------- live reads
    def _client_for(self, api_version: str, kind: str) -> tuple[Any, Any] | None:
        res = self._resource_for(api_version, kind)
        if res is None:
            return None
        return res, self.client.resource(res.group, res.version, res.plural)

    async def _get(self, node: Node) -> Obj | None:
        """The live object of node, or None when it does not exist (or is another object now)."""
        found = self._client_for(node.api_version, node.kind)
        if found is None:
            raise LookupError(f"no resource for {node.api_version} {node.kind}")
        res, rc = found
        try:
            obj = await rc.get(node.name, namespace=node.namespace if res.namespaced else None)
        except StatusError as e:
            if e.code == 404:
                return None
            raise
        if (obj.get("metadata") or {}).get("uid") != node.uid:
            return None
        return obj

    # ---------------------------------------------------------------- attempt to delete
    async def _attempt_to_delete(self, uid: str) -> float | None:
        try:
            await self._attempt_to_delete_item(uid)
        except LookupError as e:
            # a kind not served (yet: a CRD not established, or not yet seen by the resync), or an
            # owner no informer has reported yet: upstream requeues these rate-limited, so do we
            if uid not in self.nodes:
                self._retries.pop(uid, None)
                return None
            n = self._retries.get(uid, 0)
            self._retries[uid] = n + 1
            log.debug("garbage collector: %s: %s; retrying", uid, e)
            return min(RETRY_BASE_SECONDS * 2 ** n, RETRY_MAX_SECONDS)
        self._retries.pop(uid, None)
        return None

    async def _attempt_to_delete_item(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        latest = await self._get(node)
        if latest is None:
            # the object (a virtual owner, or one whose delete event we have not seen) is gone
            self._remove_node(uid)
            self.absent.add(uid)
            return
        if node.virtual:
            # it exists; it stays virtual until an informer reports it (its resource's monitor may
            # not run yet), so that its deletion is not missed meanwhile
            raise LookupError(f"{node.api_version} {node.kind} {node.name} not observed yet")
        lm = latest.get("metadata") or {}
        finalizers = lm.get("finalizers") or []
        if lm.get("deletionTimestamp") and FOREGROUND not in finalizers:
            return
        if lm.get("deletionTimestamp") and FOREGROUND in finalizers:
            node.deleting_dependents = True
            await self._process_deleting_dependents(node, latest)
            return
        refs = _refs(latest)
        if not refs:
            return
        solid, dangling, waiting = await self._classify(latest, refs)
        if solid:
            if not dangling and not waiting:
                return
            drop = {r["uid"] for r in dangling + waiting}
            await self._patch_owner_refs(node, latest, [r for r in refs if r["uid"] not in drop])
            return
        if waiting and node.dependents:
            for dep_uid in list(node.dependents):
                dep = self.nodes.get(dep_uid)
                if dep is not None and dep.deleting_dependents:
                    # a cycle of foreground deletions: stop blocking our owners, then go foreground ourselves
                    wuids = {r["uid"] for r in waiting}
                    unblocked = [dict(r, blockOwnerDeletion=False) if r["uid"] in wuids else r for r in refs]
                    await self._patch_owner_refs(node, latest, unblocked)
                    break
            await self._delete(node, "Foreground")
            return
        policy = "Background"
        if ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        await self._delete(node, policy)

    async def _classify(self, obj: Obj, refs: list[Obj]) -> tuple[list[Obj], list[Obj], list[Obj]]:
        solid: list[Obj] = []
        dangling: list[Obj] = []
        waiting: list[Obj] = []
        ns = (obj.get("metadata") or {}).get("namespace")
        for ref in refs:
            if ref["uid"] in self.absent:
                dangling.append(ref)
                continue
            found = self._client_for(ref.get("apiVersion", ""), ref.get("kind", ""))
            if found is None:
                # an owner kind we cannot look up: never delete on its account, try again later
                raise LookupError(f"no resource for {ref.get('apiVersion')} {ref.get('kind')}")
            res, rc = found
            if res.namespaced and not ns:
                dangling.append(ref)  # a cluster-scoped object cannot be owned by a namespaced one
                continue
            try:
                owner = await rc.get(ref.get("name", ""), namespace=ns if res.namespaced else None)
            except StatusError as e:
                if e.code != 404:
                    raise
                owner = None
            if owner is None or (owner.get("metadata") or {}).get("uid") != ref["uid"]:
                self.absent.add(ref["uid"])
                dangling.append(ref)
                continue
            om = owner.get("metadata") or {}
            if om.get("deletionTimestamp") and FOREGROUND in (om.get("finalizers") or []):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def _process_deleting_dependents(self, node: Node, latest: Obj) -> None:
        blocking = []
        for dep_uid in list(node.dependents):
            dep = self.nodes.get(dep_uid)
            if dep is None:
                continue
            for ref in dep.owners:
                if ref["uid"] == node.uid and ref.get("blockOwnerDeletion"):
                    blocking.append(dep)
                    break
        if not blocking:
            # dependents created just before the deletion may not have reached our informers yet
            # (they lag the store under load): let "no dependents" hold for a moment before acting
            started = parse_time((latest.get("metadata") or {}).get("deletionTimestamp"))
            if started is not None and time.time() - started < _SETTLE_SECONDS:
                self.delete_queue.enqueue_after(node.uid, _SETTLE_SECONDS)
                return
            if node.namespace and await self._live_blocking_pods(node):
                self.delete_queue.enqueue_after(node.uid, 1.0)  # our pod informer has not caught up
                return
            await self._remove_finalizer(node, latest, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.delete_queue.enqueue(dep.uid)

    async def _live_blocking_pods(self, node: Node) -> bool:
        """Pods, the commonest dependents, read live: a lagging informer must not let an owner go."""
        pods = (await self.client.resource("", "v1", "pods").list(node.namespace))["items"]
        return any(ref.get("uid") == node.uid and ref.get("blockOwnerDeletion")
                   for p in pods for ref in (p.get("metadata") or {}).get("ownerReferences") or [])

    # ---------------------------------------------------------------- attempt to orphan
    async def _attempt_to_orphan(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None:
            return
        for dep_uid in list(node.dependents):
            dep = self.nodes.get(dep_uid)
            if dep is None:
                continue
            for _ in range(5):
                try:
                    latest = await self._get(dep)
                except LookupError:
                    break
                if latest is None:
                    break
                refs = _refs(latest)
                if not any(r["uid"] == uid for r in refs):
                    break
                try:
                    await self._patch_owner_refs(dep, latest, [r for r in refs if r["uid"] != uid])
                    break
                except StatusError as e:
                    if e.code != 409:
                        raise
        try:
            latest = await self._get(node)
        except LookupError:
            return
        if latest is not None:
            await self._remove_finalizer(node, latest, ORPHAN)

    # ---------------------------------------------------------------- writes
    async def _patch_owner_refs(self, node: Node, latest: Obj, refs: list[Obj]) -> None:
        found = self._client_for(node.api_version, node.kind)
        if found is None:
            return
        res, rc = found
        lm = latest["metadata"]
        patch = {"metadata": {"ownerReferences": refs or None, "uid": lm["uid"],
                              "resourceVersion": lm["resourceVersion"]}}
        try:
            await rc.patch(lm["name"], patch, "merge", namespace=lm.get("namespace") if res.namespaced else None)
        except StatusError as e:
            if e.code != 404:
                raise

    async def _delete(self, node: Node, policy: str) -> None:
        found = self._client_for(node.api_version, node.kind)
        if found is None:
            return
        res, rc = found
        log.info("garbage collector: deleting %s %s/%s (%s)", node.kind, node.namespace or "", node.name, policy)
        try:
            await rc.delete(node.name, namespace=node.namespace if res.namespaced else None,
                            propagation_policy=policy, preconditions={"uid": node.uid})
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    async def _remove_finalizer(self, node: Node, latest: Obj, finalizer: str) -> None:
        found = self._client_for(node.api_version, node.kind)
        if found is None:
            return
        res, rc = found
        for _ in range(5):
            finalizers = latest["metadata"].get("finalizers") or []
            if finalizer not in finalizers:
                return
            obj = dict(latest)
            obj["metadata"] = dict(latest["metadata"], finalizers=[f for f in finalizers if f != finalizer])
            try:
                await rc.update(obj)
                return
            except StatusError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
            fresh = await self._get(node)
            if fresh is None:
                return
            latest = fresh
        raise StatusError(409, "Conflict", f"removing finalizer {finalizer} from {node.kind} {node.name}: "
                                           "too many conflicts")

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._running = True
        for mon in self._monitors.values():
            if mon.dedicated:
                mon.informer.start()
        self._resync_task = asyncio.get_running_loop().create_task(self._resync_loop(),
                                                                   name="garbage-collector-resync")
        self.delete_queue.start()
        self.orphan_queue.start()

    async def stop(self) -> None:
        self._running = False
        if self._resync_task is not None:
            self._resync_task.cancel()
            await asyncio.gather(self._resync_task, return_exceptions=True)
            self._resync_task = None
        await self.delete_queue.stop()
        await self.orphan_queue.stop()
        for mon in self._monitors.values():
            if mon.dedicated:
                await mon.informer.stop()
