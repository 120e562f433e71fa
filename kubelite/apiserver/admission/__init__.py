"""Admission: what upstream does between decoding a request and storing it, beside the kind's strategy.

Each plugin is a small class with one job (namespace lifecycle, cluster IP allocation, ...). The
generic REST service runs `admit` for create/update in order, and `release` after a delete or a
failed write, so allocations are never leaked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubelite.api.registry import Resource

if TYPE_CHECKING:
    from kubelite.apiserver.service import APIService

Obj = dict[str, Any]


@dataclass(frozen=True)
class AdmissionRequest:
    """What upstream's admission.Attributes carry beside the objects."""

    subresource: str = ""
    dry_run: bool = False
    user: Any = None  # auth.UserInfo of the caller; None for the control plane's own components
    warnings: list[str] | None = None  # the response's Warning headers, where the request can carry them


class AdmissionPlugin:
    """Base: override what the plugin needs."""

    _service: APIService | None = None  # set by start(): plugins read the registry and store through it

    async def start(self, service: APIService) -> None:
        """Called once the store is open (e.g. to rebuild allocation maps); overrides call super()."""
        self._service = service

    async def admit(self, op: str, res: Resource, obj: Obj, old: Obj | None) -> None:
        """Mutate or reject (raise StatusError) a CREATE or UPDATE about to be stored."""

    async def mutate_request(self, op: str, res: Resource, obj: Obj | None, old: Obj | None,
                             req: AdmissionRequest) -> None:
        """Late mutating phase with the request's attributes (webhooks): after every admit()."""

    async def validate_request(self, op: str, res: Resource, obj: Obj | None, old: Obj | None,
                               req: AdmissionRequest) -> None:
        """Validating phase, after schema validation; op also DELETE (obj None) and CONNECT."""

    def release(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        """Undo what admit() reserved in obj beyond what old holds (write failed, or obj was deleted)."""

    def committed(self, res: Resource, obj: Obj | None, old: Obj | None) -> None:
        """The write of obj (None: deletion of old) is committed."""


def default_plugins(config: Any) -> list[AdmissionPlugin]:
    from kubelite.apiextensions.controller import CRDController
    from kubelite.apiserver.admission.limit_ranger import LimitRanger
    from kubelite.apiserver.admission.namespace_lifecycle import NamespaceLifecycle
    from kubelite.apiserver.admission.policy import ValidatingAdmissionPolicyPlugin
    from kubelite.apiserver.admission.priority import Priority
    from kubelite.apiserver.admission.resource_quota import ResourceQuotaAdmission
    from kubelite.apiserver.admission.runtime_class import RuntimeClassAdmission
    from kubelite.apiserver.admission.service_account import ServiceAccountAdmission
    from kubelite.apiserver.admission.service_allocation import ServiceAllocation
    from kubelite.apiserver.admission.storage import DefaultStorageClass, StorageObjectInUseProtection
    from kubelite.apiserver.admission.webhook import WebhookAdmission

    return [
        NamespaceLifecycle(),
        LimitRanger(),
        ServiceAccountAdmission(require_existing=getattr(config, "controllers", True)),
        ServiceAllocation(config.service_cidr, config.node_port_range),
        Priority(),
        RuntimeClassAdmission(),
        DefaultStorageClass(), StorageObjectInUseProtection(),
        WebhookAdmission(mutating=True),  # upstream: MutatingAdmissionWebhook, then ...
        ValidatingAdmissionPolicyPlugin(),  # ... ValidatingAdmissionPolicy, then ...
        WebhookAdmission(mutating=False),  # ... ValidatingAdmissionWebhook, just before ResourceQuota
        ResourceQuotaAdmission(),
        CRDController(),  # serves CustomResourceDefinitions: registers them as they are written
    ]
