"""Upstream's NamespaceLifecycle admission: no new content in missing or terminating namespaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubelite.api import errors
from kubelite.api.registry import Resource
from kubelite.apiserver.admission import AdmissionPlugin

if TYPE_CHECKING:
    pass

IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")

# Objects that may still be written into a terminating namespace (upstream lets the namespace
# controller and kubelets finish their work: events and status updates, deletions)
_ALWAYS_ALLOWED = {("", "events"), ("events.k8s.io", "events")}


class NamespaceLifecycle(AdmissionPlugin):
    async def admit(self, op: str, res: Resource, obj: dict[str, Any], old: dict | None) -> None:
        if op != "CREATE" or not res.namespaced or self._service is None:
            return
        ns_name = obj["metadata"].get("namespace", "")
        ns_res = self._service.registry.get("", "v1", "namespaces")
        ns = await self._service.store.get(ns_res.key(None, ns_name))
        if ns is None:
            raise errors.new_not_found("namespaces", "", ns_name)
        if ns.get("metadata", {}).get("deletionTimestamp") and (res.group, res.plural) not in _ALWAYS_ALLOWED:
            raise errors.StatusError(
                403, "Forbidden",
                f'{res.qualified} "{obj["metadata"].get("name") or obj["metadata"].get("generateName", "")}" is '
                f"forbidden: unable to create new content in namespace {ns_name} because it is being terminated",
                {"name": obj["metadata"].get("name", ""), "group": res.group, "kind": res.plural,
                 "causes": [{"reason": "NamespaceTerminating",
                             "message": f"namespace {ns_name} is being terminated",
                             "field": "metadata.namespace"}]},
            )


def check_namespace_deletable(name: str) -> None:
    if name in IMMORTAL_NAMESPACES:
        raise errors.new_forbidden("namespaces", "", name, "this namespace may not be deleted")
