"""ResourceQuotaController (upstream pkg/controller/resourcequota) and the quota evaluators it shares
with the ResourceQuota admission plugin (upstream pkg/quota/v1/evaluator/core).

For every ResourceQuota, status.hard mirrors spec.hard and status.used is recalculated from the
objects in the namespace: object counts (`pods`, `services`, `count/<resource>[.<group>]`...) and
compute (`requests.cpu`, `limits.memory`, ...) of pods that are not terminal, within the quota's
scopes. Any change to a tracked object requeues the quotas of its namespace; a full resync runs
every five minutes, as upstream's.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.api.kinds.common import format_quantity, parse_quantity, quantity_format
from kubelite.client.controller import Controller
from kubelite.client.informer import SharedInformerFactory, split_meta_namespace_key
from kubelite.controllers.workloads import requeue_on_conflict

log = logging.getLogger(__name__)

Obj = dict[str, Any]

RESYNC_PERIOD = 300.0

# resources whose plain name counts objects, and the (group, plural) they count
LEGACY_COUNTS = {
    "pods": ("", "pods"), "services": ("", "services"), "configmaps": ("", "configmaps"),
    "secrets": ("", "secrets"), "replicationcontrollers": ("", "replicationcontrollers"),
    "resourcequotas": ("", "resourcequotas"), "persistentvolumeclaims": ("", "persistentvolumeclaims"),
}
COMPUTE = ("cpu", "memory", "ephemeral-storage")
_FORMATS = {"cpu": "DecimalSI", "memory": "BinarySI", "ephemeral-storage": "BinarySI", "storage": "BinarySI"}


def count_resource(group: str, plural: str) -> str:
    return f"count/{plural}.{group}" if group else f"count/{plural}"


def parse_count_resource(name: str) -> tuple[str, str] | None:
    """`count/deployments.apps` -> ("apps", "deployments"); `count/pods` -> ("", "pods")."""
    if not name.startswith("count/"):
        return LEGACY_COUNTS.get(name)
    rest = name[len("count/"):]
    plural, _, group = rest.partition(".")
    return group, plural


# ------------------------------------------------------------------------------ pods
def _sum_requirements(containers: list[Obj], kind: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for c in containers:
        for k, v in ((c.get("resources") or {}).get(kind) or {}).items():
            try:
                out[k] = out.get(k, Decimal(0)) + parse_quantity(v)
            except ValueError:
                continue
    return out


def pod_compute(pod: Obj, kind: str) -> dict[str, Decimal]:
    """PodRequests/PodLimits: sum of containers, at least the largest init container, plus overhead."""
    spec = pod.get("spec") or {}
    total = _sum_requirements(spec.get("containers") or [], kind)
    for ic in spec.get("initContainers") or []:
        if ic.get("restartPolicy") == "Always":  # sidecars run alongside
            for k, v in _sum_requirements([ic], kind).items():
                total[k] = total.get(k, Decimal(0)) + v
            continue
        for k, v in _sum_requirements([ic], kind).items():
            if v > total.get(k, Decimal(0)):
                total[k] = v
    for k, v in (spec.get("overhead") or {}).items():
        try:
            total[k] = total.get(k, Decimal(0)) + parse_quantity(v)
        except ValueError:
            continue
    return total


def is_terminal_pod(pod: Obj) -> bool:
    """QuotaV1Pod: succeeded and failed pods no longer use quota."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_best_effort(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {}
        if res.get("requests") or res.get("limits"):
            return False
    return True


def pod_matches_scope(pod: Obj, scope: str, operator: str = "Exists", values: list[str] | None = None) -> bool:
    spec = pod.get("spec") or {}
    if scope == "Terminating":
        return spec.get("activeDeadlineSeconds") is not None and spec["activeDeadlineSeconds"] >= 0
    if scope == "NotTerminating":
        return spec.get("activeDeadlineSeconds") is None or spec["activeDeadlineSeconds"] < 0
    if scope == "BestEffort":
        return is_best_effort(pod)
    if scope == "NotBestEffort":
        return not is_best_effort(pod)
    if scope == "PriorityClass":
        pc = spec.get("priorityClassName") or ""
        if operator == "In":
            return pc in (values or [])
        if operator == "NotIn":
            return pc not in (values or [])
        if operator == "DoesNotExist":
            return not pc
        return bool(pc)
    if scope == "CrossNamespacePodAffinity":
        return False
    return True


def quota_scopes(quota: Obj) -> list[tuple[str, str, list[str]]]:
    spec = quota.get("spec") or {}
    out = [(s, "Exists", []) for s in spec.get("scopes") or []]
    for e in (spec.get("scopeSelector") or {}).get("matchExpressions") or []:
        out.append((e.get("scopeName", ""), e.get("operator", "Exists"), e.get("values") or []))
    return out


def matches_quota(quota: Obj, group: str, plural: str, obj: Obj) -> bool:
    """Scopes apply to pods only; a scoped quota ignores other objects."""
    scopes = quota_scopes(quota)
    if not scopes:
        return True
    if (group, plural) != ("", "pods"):
        return False
    return all(pod_matches_scope(obj, s, op, vals) for s, op, vals in scopes)


def object_usage(group: str, plural: str, obj: Obj) -> dict[str, Decimal]:
    """Usage(): what one object counts against a quota."""
    one = Decimal(1)
    usage: dict[str, Decimal] = {count_resource(group, plural): one}
    if group == "":
        if plural in LEGACY_COUNTS:
            usage[plural] = one
        if plural == "pods":
            if is_terminal_pod(obj):
                return {}
            for k, v in pod_compute(obj, "requests").items():
                if k in COMPUTE:
                    usage[f"requests.{k}"] = v
                    usage[k] = v
                elif "/" in k or k.startswith("hugepages-"):
                    usage[f"requests.{k}"] = v
            for k, v in pod_compute(obj, "limits").items():
                if k in COMPUTE:
                    usage[f"limits.{k}"] = v
        elif plural == "services":
            spec = obj.get("spec") or {}
            stype = spec.get("type") or "ClusterIP"
            if stype == "LoadBalancer":
                usage["services.loadbalancers"] = one
            if stype in ("NodePort", "LoadBalancer"):
                usage["services.nodeports"] = Decimal(len(spec.get("ports") or []))
        elif plural == "persistentvolumeclaims":
            req = (((obj.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
            if req is not None:
                try:
                    usage["requests.storage"] = parse_quantity(req)
                except ValueError:
                    pass
            sc = (obj.get("spec") or {}).get("storageClassName")
            if sc:
                usage[f"{sc}.storageclass.storage.k8s.io/persistentvolumeclaims"] = one
                if "requests.storage" in usage:
                    usage[f"{sc}.storageclass.storage.k8s.io/requests.storage"] = usage["requests.storage"]
    return usage


def format_usage(resource: str, value: Decimal, hard: Any = None) -> str:
    """The Quantity string of a usage, in the format of its hard limit when there is one."""
    fmt = "DecimalSI"
    if isinstance(hard, str):
        fmt = quantity_format(hard)
    else:
        base = resource.split(".", 1)[-1] if resource.startswith(("requests.", "limits.")) else resource
        fmt = _FORMATS.get(base, "DecimalSI")
    if fmt == "BinarySI" and value != value.to_integral_value():
        fmt = "DecimalSI"
    return format_quantity(value, fmt)


def tracked_resources(quota: Obj) -> set[tuple[str, str]]:
    """The (group, plural) lists a quota's hard resources need."""
    out: set[tuple[str, str]] = set()
    for name in ((quota.get("spec") or {}).get("hard") or {}):
        gp = parse_count_resource(name)
        if gp is not None:
            out.add(gp)
        elif name in COMPUTE or name.startswith(("requests.", "limits.")) or name in ("services.loadbalancers",
                                                                                        "services.nodeports"):
            if name == "requests.storage":
                out.add(("", "persistentvolumeclaims"))
            elif name.startswith("services."):
                out.add(("", "services"))
            else:
                out.add(("", "pods"))
        elif "storageclass.storage.k8s.io" in name:
            out.add(("", "persistentvolumeclaims"))
    return out


# ------------------------------------------------------------------------------ controller
class ResourceQuotaController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 2):
        self.client = client
        self.factory = factory
        self.quotas = client.resource("", "v1", "resourcequotas")
        self.quota_informer = factory.informer("", "v1", "resourcequotas")
        self.controller = Controller("resourcequota-controller", self.sync, workers=workers)
        self.quota_informer.add_handler(self.controller.enqueue, self._quota_updated, None)
        self.informers: dict[tuple[str, str], Any] = {}
        self._versions: dict[str, str] | None = None
        for gp in LEGACY_COUNTS.values():
            self._ensure_informer(*gp)
        self._resync_task: Any = None

    def _quota_updated(self, old: Obj, new: Obj) -> None:
        """Only a change of hard (or used missing a resource) needs a recount: status-only updates
        are usually the admission plugin's charges, which a recount from a lagging cache would undo."""
        hard = (new.get("spec") or {}).get("hard") or {}
        st = new.get("status") or {}
        if hard != ((old.get("spec") or {}).get("hard") or {}) or st.get("hard") != hard or \
                set(hard) - set(st.get("used") or {}):
            self.controller.enqueue(new)

    def _version_of(self, group: str) -> str | None:
        if self._versions is None:
            from kubelite.api.registry import default_registry

            self._versions = {g: vs[0] for g, vs in default_registry().group_versions().items() if vs}
        return self._versions.get(group)

    def _ensure_informer(self, group: str, plural: str) -> Any:
        inf = self.informers.get((group, plural))
        if inf is not None:
            return inf
        version = self._version_of(group)
        if version is None:
            return None
        inf = self.factory.informer(group, version, plural)
        self.informers[(group, plural)] = inf

        def replenish(obj: Obj) -> None:
            ns = (obj.get("metadata") or {}).get("namespace")
            if ns:
                for q in self.quota_informer.store.list(ns):
                    self.controller.enqueue(q)

        def updated(old: Obj, new: Obj) -> None:
            if object_usage(group, plural, old) != object_usage(group, plural, new):
                replenish(new)

        # upstream's replenishment: creations are charged by admission, so only a deletion or a
        # change of usage (a pod turning terminal) is recounted; a recount on creation would race
        # with admission's charges for objects not yet committed and undo them
        inf.add_handler(None, updated, replenish)
        return inf

    @requeue_on_conflict
    async def sync(self, key: str) -> float | None:
        ns, name = split_meta_namespace_key(key)
        quota = self.quota_informer.store.get(ns, name)
        if quota is None:
            return None
        hard = (quota.get("spec") or {}).get("hard") or {}
        totals = await self._totals(quota, ns, hard, live=False)
        old_used = (quota.get("status") or {}).get("used") or {}
        if any(r in old_used and v < parse_quantity(old_used[r]) for r, v in totals.items()):
            # admission charged usage our caches may not show yet: only lower it on a live count
            totals = await self._totals(quota, ns, hard, live=True)
        used = {r: format_usage(r, v, hard.get(r)) for r, v in totals.items()}
        status = {"hard": dict(hard), "used": used}
        if (quota.get("status") or {}) == status:
            return RESYNC_PERIOD
        try:
            await self.quotas.update_status({**quota, "status": status})
        except StatusError as e:
            if e.code == 404:
                return None
            raise
        return RESYNC_PERIOD

    async def _totals(self, quota: Obj, ns: str, hard: dict, live: bool) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {r: Decimal(0) for r in hard}
        for group, plural in tracked_resources(quota):
            inf = self._ensure_informer(group, plural)
            if inf is None:
                continue
            if live:
                objs = (await self.client.resource(group, inf.gvr[1], plural).list(ns))["items"]
            else:
                if not inf.has_synced:
                    await inf.wait_for_sync()
                objs = inf.store.list(ns)
            for obj in objs:
                if not matches_quota(quota, group, plural, obj):
                    continue
                for r, v in object_usage(group, plural, obj).items():
                    if r in totals and (group, plural) == _owner_of(r, group, plural):
                        totals[r] += v
        return totals

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()


def _owner_of(resource: str, group: str, plural: str) -> tuple[str, str]:
    """Which list a quota resource is computed from (so `pods` is never summed from services)."""
    gp = parse_count_resource(resource)
    if gp is not None:
        return gp
    if resource in ("services.loadbalancers", "services.nodeports"):
        return "", "services"
    if resource == "requests.storage" or "storageclass.storage.k8s.io" in resource:
        return "", "persistentvolumeclaims"
    return "", "pods"
