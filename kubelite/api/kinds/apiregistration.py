"""apiregistration.k8s.io/v1: APIService, one per served group-version (see kubelite.apiextensions.autoregister).

Every group-version kubelite serves is local: upstream's availability controller marks local
APIServices `Available=True` with reason `Local`, which is done here when one is written.
"""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api import meta
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import age_cell, age_column, definition
from kubelite.api.registry import Column, Obj, Registry, Resource

GROUP = "apiregistration.k8s.io"


def _local_status(obj: Obj) -> None:
    if (obj.get("spec") or {}).get("service") is None:
        conds = (obj.get("status") or {}).get("conditions") or []
        if not any(c.get("type") == "Available" and c.get("status") == "True" for c in conds):
            obj["status"] = {"conditions": [{
                "lastTransitionTime": meta.now_rfc3339(), "message": "Local APIServices are always available",
                "reason": "Local", "status": "True", "type": "Available"}]}


def prepare_create(obj: Obj) -> None:
    obj.pop("status", None)
    _local_status(obj)


def prepare_update(new: Obj, old: Obj) -> None:
    _local_status(new)


def default_apiservice(obj: Obj) -> None:
    svc = (obj.get("spec") or {}).get("service")
    if isinstance(svc, dict) and svc.get("port") is None:
        svc["port"] = 443


def validate_apiservice(obj: Obj) -> list[FieldError]:
    """ValidateAPIService: the name is <version>.<group>; priorities are positive (at most 20000)."""
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    name = (obj.get("metadata") or {}).get("name") or ""
    group, version = spec.get("group") or "", spec.get("version") or ""
    if name and name != f"{version}.{group}":
        errs.append(ferr.invalid("metadata.name", name, f'must be `spec.version+"."+spec.group`: '
                                                        f'"{version}.{group}"'))
    if not version:
        errs.append(ferr.required("spec.version", ""))
    gpm, vp = spec.get("groupPriorityMinimum"), spec.get("versionPriority")
    if not isinstance(gpm, int) or gpm <= 0 or gpm > 20000:
        errs.append(ferr.invalid("spec.groupPriorityMinimum", gpm, "must be positive and less than 20000"))
    if not isinstance(vp, int) or vp <= 0 or vp > 1000:
        errs.append(ferr.invalid("spec.versionPriority", vp, "must be positive and less than 1000"))
    if spec.get("service") is None:
        if spec.get("caBundle"):
            errs.append(ferr.invalid("spec.caBundle", "", "local APIServices may not have a caBundle"))
    return errs


def apiservice_row(obj: Obj) -> list:
    """printAPIService: SERVICE is Local or namespace/name; AVAILABLE is the condition, with its reason when not True."""
    svc = (obj.get("spec") or {}).get("service")
    service = "Local" if svc is None else f"{svc.get('namespace', '')}/{svc.get('name', '')}"
    available = "Unknown"
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Available":
            available = c.get("status") or "Unknown"
            if available != "True" and c.get("reason"):
                available = f"{available} ({c['reason']})"
    return [service, available, age_cell(obj)]


def register(reg: Registry) -> None:
    reg.register(Resource(
        group=GROUP, version="v1", kind="APIService", plural="apiservices", namespaced=False,
        subresources=("status",), definition=definition(GROUP, "v1", "APIService"),
        columns=(Column("Service", "string", description="The reference to the service that hosts this API "
                        "endpoint."),
                 Column("Available", "string", description="Whether this service is available."), age_column()),
        row=apiservice_row, default=default_apiservice, validate=validate_apiservice,
        validate_update=lambda new, old: common.validate_object_meta_update(new, old) + validate_apiservice(new),
        prepare_create=prepare_create, prepare_update=prepare_update, name_rule="path",  # "v1." is valid
    ))
