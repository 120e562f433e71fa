"""Keeps the served API in step with the CustomResourceDefinitions in the store.

Upstream runs the naming controller (NamesAccepted), the establishing controller (Established) and
the finalizer controller (deleting every custom object before the CRD goes) beside a dynamic
handler. Here one admission plugin does the same at the write path, so a CRD is Established and
served as soon as its create is acknowledged: `admit` names and establishes it, `committed`
(re)registers its versions in the registry, and a deletion runs the cleanup, then drops the
finalizer. `start` registers the stored CRDs before the server serves anything.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from kubelite.api import errors, meta
from kubelite.api.registry import Resource
from kubelite.apiextensions import autoregister, resources
from kubelite.apiserver.admission import AdmissionPlugin

if TYPE_CHECKING:
    from kubelite.apiserver.service import APIService

log = logging.getLogger(__name__)
Obj = dict[str, Any]

GROUP = "apiextensions.k8s.io"
FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
CLEANUP_POLL = 0.2


def is_crd(res: Resource) -> bool:
    return res.group == GROUP and res.plural == "customresourcedefinitions"


def _condition(ctype: str, status: str, reason: str, message: str, old: list[Obj]) -> Obj:
    prev = next((c for c in old if c.get("type") == ctype), None)
    since = prev["lastTransitionTime"] if prev and prev.get("status") == status and prev.get(
        "lastTransitionTime") else meta.now_rfc3339()
    return {"lastTransitionTime": since, "message": message, "reason": reason, "status": status, "type": ctype}


class CRDController(AdmissionPlugin):
    def __init__(self) -> None:
        self.service: APIService | None = None
        self._tasks: set[asyncio.Task] = set()
        self._cleaning: set[str] = set()
        self._apiservices_lock = asyncio.Lock()

    # ------------------------------------------------------------------ startup
    async def start(self, service: APIService) -> None:
        self.service = service
        crd_res = service.registry.get(GROUP, "v1", "customresourcedefinitions")
        if crd_res is None:
            return
        stored, _, _ = await service.store.list(crd_res.storage_prefix())
        for crd in stored:
            if self._established(crd):
                self._install(crd)
            if (crd.get("metadata") or {}).get("deletionTimestamp"):
                self._spawn(self._cleanup(crd["metadata"]["name"]))
        self._spawn(autoregister.sync(service, self._apiservices_lock))

    # ------------------------------------------------------------------ write path
    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        if not is_crd(res) or self.service is None:
            return
        m = obj["metadata"]
        if op == "CREATE":
            finalizers = list(m.get("finalizers") or [])
            if FINALIZER not in finalizers:
                m["finalizers"] = finalizers + [FINALIZER]
        if m.get("deletionTimestamp"):
            return
        self._set_status(obj)

    def _set_status(self, crd: Obj) -> None:
        """NamesAccepted (no other CRD of the group holds these names) and Established, as upstream words them."""
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        status = crd.setdefault("status", {})
        old_conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
        conflict = self._name_conflict(crd)
        conditions = [c for c in old_conditions if c.get("type") not in ("NamesAccepted", "Established")]
        if conflict:
            conditions.append(_condition("NamesAccepted", "False", conflict[0], conflict[1], old_conditions))
            conditions.append(_condition("Established", "False", "NotAccepted", "not all names are accepted",
                                         old_conditions))
        else:
            status["acceptedNames"] = {k: names[k] for k in ("kind", "listKind", "plural", "shortNames",
                                                             "singular", "categories") if names.get(k)}
            conditions.append(_condition("NamesAccepted", "True", "NoConflicts", "no conflicts found",
                                         old_conditions))
            conditions.append(_condition("Established", "True", "InitialNamesAccepted",
                                         "the initial names have been accepted", old_conditions))
        status["conditions"] = conditions

    def _name_conflict(self, crd: Obj) -> tuple[str, str] | None:
        """(reason, message) when another served resource of the group already uses a name."""
        assert self.service is not None
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group") or ""
        for res in self.service.registry.all():
            if res.group != group or (res.custom and res.plural == names.get("plural")):
                continue
            if res.plural == names.get("plural") or res.singular == names.get("plural"):
                return "PluralConflict", f'"{names.get("plural")}" is already in use'
            if res.singular == names.get("singular") or res.plural == names.get("singular"):
                return "SingularConflict", f'"{names.get("singular")}" is already in use'
            for short in names.get("shortNames") or []:
                if short in res.short_names:
                    return "ShortNamesConflict", f'"{short}" is already in use'
            if res.kind == names.get("kind"):
                return "KindConflict", f'"{names.get("kind")}" is already in use'
        return None

    def committed(self, res: Resource, obj: Obj | None, old: Obj | None) -> None:
        if not is_crd(res) or self.service is None:
            return
        if obj is None:
            if old is not None:
                resources.uninstall(self.service.registry, old)
                self._spawn(autoregister.sync(self.service, self._apiservices_lock))
            return
        if self._established(obj):
            self._install(obj)
            self._spawn(autoregister.sync(self.service, self._apiservices_lock))
        if obj["metadata"].get("deletionTimestamp") and obj["metadata"]["name"] not in self._cleaning:
            self._spawn(self._cleanup(obj["metadata"]["name"]))

    @staticmethod
    def _established(crd: Obj) -> bool:
        return any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in (crd.get("status") or {}).get("conditions") or [])

    def _install(self, crd: Obj) -> None:
        assert self.service is not None
        try:
            resources.install(self.service.registry, crd)
        except Exception:  # a stored CRD we cannot serve must not take the server down
            log.exception("cannot serve CustomResourceDefinition %s", crd["metadata"].get("name"))

    def _spawn(self, coro: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ deletion
    async def _cleanup(self, name: str) -> None:
        """Upstream's finalizer controller: Terminating condition, delete every object, drop the finalizer."""
        if name in self._cleaning or self.service is None:
            return
        self._cleaning.add(name)
        svc = self.service
        crd_res = svc.registry.get(GROUP, "v1", "customresourcedefinitions")
        try:
            while True:
                try:
                    crd = await svc.get(crd_res, None, name)
                except errors.StatusError:
                    return
                crd = await self._mark_terminating(crd_res, crd)
                remaining = await self._delete_objects(crd)
                if remaining == 0:
                    break
                await asyncio.sleep(CLEANUP_POLL)
            for _ in range(5):
                try:
                    crd = await svc.get(crd_res, None, name)
                except errors.StatusError:
                    return
                new = meta.deep_copy(crd)
                new["metadata"]["finalizers"] = [f for f in crd["metadata"].get("finalizers") or []
                                                 if f != FINALIZER]
                try:
                    await svc._write_update(crd_res, crd, new, "", False, "apiextensions-apiserver", "Update")
                    return
                except errors.StatusError as e:
                    if e.reason != "Conflict":
                        raise
        except Exception:
            log.exception("cleanup of CustomResourceDefinition %s", name)
        finally:
            self._cleaning.discard(name)

    async def _mark_terminating(self, crd_res: Resource, crd: Obj) -> Obj:
        assert self.service is not None
        conditions = [c for c in (crd.get("status") or {}).get("conditions") or []]
        if any(c.get("type") == "Terminating" and c.get("status") == "True" for c in conditions):
            return crd
        new = meta.deep_copy(crd)
        new.setdefault("status", {})["conditions"] = [c for c in conditions if c.get("type") != "Terminating"] + [
            _condition("Terminating", "True", "InstanceDeletionInProgress",
                       "CustomResource deletion is in progress", conditions)]
        try:
            return await self.service._write_update(crd_res, crd, new, "status", False, "apiextensions-apiserver",
                                                    "Update")
        except errors.StatusError:
            return crd

    async def _delete_objects(self, crd: Obj) -> int:
        """Delete every custom object of the CRD; the number still stored (finalizers may hold some)."""
        assert self.service is not None
        spec = crd.get("spec") or {}
        res = next((r for r in self.service.registry.all()
                    if r.custom and r.group == spec.get("group") and r.plural == (spec.get("names") or {}).get(
                        "plural")), None)
        if res is None:
            return 0
        listed = await self.service.list(res, None)
        for obj in listed["items"]:
            if obj["metadata"].get("deletionTimestamp"):
                continue
            try:
                await self.service.delete(res, obj["metadata"].get("namespace"), obj["metadata"]["name"], {})
            except errors.StatusError as e:
                if e.code != 404:
                    log.warning("deleting %s %s: %s", res.plural, obj["metadata"]["name"], e.message)
        return len((await self.service.list(res, None))["items"])
