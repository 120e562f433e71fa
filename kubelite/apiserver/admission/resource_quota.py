"""Upstream's ResourceQuota admission: a create that would take a namespace past a quota is refused.

For every ResourceQuota of the namespace that covers the new object (its hard resources and its
scopes), used + requested must stay within hard, else 403 `exceeded quota: q, requested: pods=1,
used: pods=2, limited: pods=2`. An admitted create is charged to status.used at once (with a
compare-and-swap on the quota), so a burst of creates cannot overrun the quota before the
resourcequota controller recalculates; the controller's recount later corrects any drift.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kubelite.api import errors
from kubelite.api.kinds.common import parse_quantity
from kubelite.api.registry import Resource
from kubelite.apiserver.admission import AdmissionPlugin
from kubelite.controllers.resourcequota import format_usage, matches_quota, object_usage

if TYPE_CHECKING:
    pass

Obj = dict[str, Any]

_RETRIES = 5


def _pretty(values: dict[str, str]) -> str:
    """prettyPrint: sorted `name=value` pairs joined by commas."""
    return ",".join(f"{k}={values[k]}" for k in sorted(values))


def _q(v: Any) -> Decimal:
    try:
        return parse_quantity(v)
    except ValueError:
        return Decimal(0)


def _obj_key(res: Resource, obj: Obj) -> tuple[str, str, str, str]:
    m = obj.get("metadata") or {}
    return res.group, res.plural, m.get("namespace", ""), m.get("name", "")


class ResourceQuotaAdmission(AdmissionPlugin):
    def __init__(self) -> None:
        # charges made for objects whose write is still in flight: object key -> [(quota key, usage)]
        self._pending: dict[tuple[str, str, str, str], list[tuple[str, dict[str, Decimal]]]] = {}
        self._tasks: set[asyncio.Task] = set()

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        if op != "CREATE" or not res.namespaced or self._service is None:
            return
        ns = obj["metadata"].get("namespace", "")
        quota_res = self._service.registry.get("", "v1", "resourcequotas")
        if quota_res is None:
            return
        usage = object_usage(res.group, res.plural, obj)
        if not usage:
            return
        for _ in range(_RETRIES):
            quotas, _, _ = await self._service.store.list(quota_res.storage_prefix() + ns + "/")
            quotas = [q for q in quotas if (q.get("metadata") or {}).get("namespace") == ns]
            if not quotas:
                return
            charges: list[tuple[Obj, dict[str, str], dict[str, Decimal]]] = []
            for quota in quotas:
                hard = (quota.get("spec") or {}).get("hard") or {}
                relevant = {r: v for r, v in usage.items() if r in hard}
                if not relevant or not matches_quota(quota, res.group, res.plural, obj):
                    continue
                used = (quota.get("status") or {}).get("used") or {}
                missing = [r for r in relevant if r not in used]
                if missing:
                    raise errors.new_forbidden(res.plural, res.group, obj["metadata"].get("name", ""),
                                               f"status unknown for quota: {quota['metadata']['name']}, "
                                               f"resource: {', '.join(sorted(missing))}")
                failed_req: dict[str, str] = {}
                failed_used: dict[str, str] = {}
                failed_hard: dict[str, str] = {}
                new_used = dict(used)
                for r, v in relevant.items():
                    total = _q(used[r]) + v
                    if total > _q(hard[r]):
                        failed_req[r] = format_usage(r, v, hard[r])
                        failed_used[r] = used[r]
                        failed_hard[r] = hard[r]
                    new_used[r] = format_usage(r, total, hard[r])
                if failed_req:
                    raise errors.new_forbidden(
                        res.plural, res.group, obj["metadata"].get("name", ""),
                        f"exceeded quota: {quota['metadata']['name']}, requested: {_pretty(failed_req)}, "
                        f"used: {_pretty(failed_used)}, limited: {_pretty(failed_hard)}")
                charges.append((quota, new_used, relevant))
            if await self._charge(quota_res, charges):
                self._pending[_obj_key(res, obj)] = [(quota_res.key(q["metadata"]["namespace"], q["metadata"]["name"]), r)
                                          for q, _, r in charges]
                return
        raise errors.StatusError(409, "Conflict", "Operation cannot be fulfilled on resourcequotas: "
                                                  "the quota was modified concurrently, please retry")

    async def _charge(self, quota_res: Resource, charges: list[tuple[Obj, dict[str, str], dict[str, Decimal]]]) -> bool:
        """Write the new usage to each quota; False when one changed meanwhile (start over)."""
        from kubelite.storage.interface import ConflictError

        assert self._service is not None
        for quota, new_used, _ in charges:
            m = quota["metadata"]
            updated = dict(quota)
            updated["status"] = dict(quota.get("status") or {}, used=new_used)
            try:
                await self._service.store.update(quota_res.key(m["namespace"], m["name"]), updated,
                                                 int(m["resourceVersion"]))
            except ConflictError:
                return False
        return True

    def committed(self, res: Resource, obj: Obj | None, old: Obj | None) -> None:
        if obj is not None:
            self._pending.pop(_obj_key(res, obj), None)

    def release(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        """The create failed after the charge: give the usage back (in the background)."""
        charged = self._pending.pop(_obj_key(res, obj), None)
        if not charged:
            return
        task = asyncio.get_running_loop().create_task(self._uncharge(charged))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _uncharge(self, charged: list[tuple[str, dict[str, Decimal]]]) -> None:
        from kubelite.storage.interface import ConflictError

        assert self._service is not None
        for key, usage in charged:
            for _ in range(_RETRIES):
                quota = await self._service.store.get(key)
                if quota is None:
                    break
                hard = (quota.get("spec") or {}).get("hard") or {}
                used = dict((quota.get("status") or {}).get("used") or {})
                for r, v in usage.items():
                    if r in used:
                        used[r] = format_usage(r, max(_q(used[r]) - v, Decimal(0)), hard.get(r))
                updated = dict(quota, status=dict(quota.get("status") or {}, used=used))
                try:
                    await self._service.store.update(key, updated, int(quota["metadata"]["resourceVersion"]))
                    break
                except ConflictError:
                    continue
