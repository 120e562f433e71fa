"""coordination.k8s.io/v1: Lease (leader election and node heartbeats)."""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import age_cell, age_column, definition
from kubelite.api.registry import Column, Obj, Registry, Resource


def validate_lease_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    """ValidateLeaseSpec."""
    errs: list[FieldError] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errs.append(ferr.invalid(f"{path}.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errs.append(ferr.invalid(f"{path}.leaseTransitions", transitions, "must be greater than or equal to 0"))
    strategy = spec.get("strategy")
    if strategy is not None:
        errs.extend(ferr.invalid(f"{path}.strategy", strategy, m) for m in common.qualified_name(strategy))
    if spec.get("preferredHolder") and not strategy:
        errs.append(ferr.forbidden(f"{path}.preferredHolder", "may only be specified if `strategy` is defined"))
    return errs


def validate_lease(obj: Obj) -> list[FieldError]:
    errs = common.validate_object_meta(obj, True, "subdomain")
    errs.extend(validate_lease_spec(obj.get("spec") or {}))
    return errs


def validate_lease_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_lease_spec(new.get("spec") or {})


def lease_row(obj: Obj) -> list:
    return [(obj.get("spec") or {}).get("holderIdentity") or "", age_cell(obj)]


LEASE_COLUMNS = (
    Column("Holder", "string", description="holderIdentity contains the identity of the holder of a current lease."),
    age_column(),
)


def register(reg: Registry) -> None:
    g, v = "coordination.k8s.io", "v1"
    reg.register(Resource(
        group=g, version=v, kind="Lease", plural="leases", namespaced=True, definition=definition(g, v, "Lease"),
        columns=LEASE_COLUMNS, row=lease_row, validate=validate_lease, validate_update=validate_lease_update,
    ))
