"""Admission: what upstream does between decoding a request and storing it, beside the kind's strategy.

Each plugin is a small class with one job (namespace lifecycle, cluster IP allocation, ...). The
generic REST service runs `admit` for create/update in order, and `release` after a delete or a
failed write, so allocations are never leaked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubelite.api.registry import Resource

if TYPE_CHECKING:
    from kubelite.apiserver.service import APIService

Obj = dict[str, Any]


class AdmissionPlugin:
    """Base: override what the plugin needs."""

    _service: APIService | None = None  # set by start(): plugins read the registry and store through it

    async def start(self, service: APIService) -> None:
        """Called once the store is open (e.g. to rebuild allocation maps); overrides call super()."""
        self._service = service

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        """Mutate or reject (raise StatusError) a CREATE or UPDATE about to be stored."""

    def release(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        """Undo what admit() reserved in obj beyond what old holds (write failed, or obj was deleted)."""

    def committed(self, res: Resource, obj: Obj | None, old: Obj | None) -> None:
        """The write of obj (None: deletion of old) is committed."""


def default_plugins(config: Any) -> list[AdmissionPlugin]:
    from kubelite.apiextensions.controller import CRDController
    from kubelite.apiserver.admission.limit_ranger import LimitRanger
    from kubelite.apiserver.admission.namespace_lifecycle import NamespaceLifecycle
    from kubelite.apiserver.admission.priority import Priority
    from kubelite.apiserver.admission.resource_quota import ResourceQuotaAdmission
    from kubelite.apiserver.admission.runtime_class import RuntimeClassAdmission
    from kubelite.apiserver.admission.service_allocation import ServiceAllocation

    return [
        NamespaceLifecycle(),
        LimitRanger(),
        ServiceAllocation(config.service_cidr, config.node_port_range),
        Priority(),
        RuntimeClassAdmission(),
        ResourceQuotaAdmission(),
        CRDController(),  # serves CustomResourceDefinitions: registers them as they are written
    ]
