"""policy/v1: PodDisruptionBudget (validation, status reset and printer as upstream)."""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import (
    GoRepr,
    age_cell,
    age_column,
    definition,
    not_more_than_100_percent,
    validate_positive_int_or_percent,
)
from kubelite.api.registry import Column, Obj, Registry, Resource

EVICTION_POLICIES = ["AlwaysAllow", "IfHealthyBudget"]


def validate_pdb_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    """ValidatePodDisruptionBudgetSpec."""
    errs: list[FieldError] = []
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        errs.append(ferr.invalid(path, GoRepr("policy.PodDisruptionBudgetSpec{...}"),
                                 "minAvailable and maxUnavailable cannot be both set"))
    for key, value in (("minAvailable", min_available), ("maxUnavailable", max_unavailable)):
        if value is not None:
            errs.extend(validate_positive_int_or_percent(value, f"{path}.{key}"))
            errs.extend(not_more_than_100_percent(value, f"{path}.{key}"))
    errs.extend(common.validate_label_selector(spec.get("selector"), f"{path}.selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in EVICTION_POLICIES:
        errs.append(ferr.not_supported(f"{path}.unhealthyPodEvictionPolicy", policy, EVICTION_POLICIES))
    return errs


def validate_pdb(obj: Obj) -> list[FieldError]:
    errs = common.validate_object_meta(obj, True, "subdomain")
    errs.extend(validate_pdb_spec(obj.get("spec") or {}))
    return errs


def validate_pdb_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_pdb_spec(new.get("spec") or {})


def prepare_create_pdb(obj: Obj) -> None:
    """Status reset; PodDisruptionBudgetStatus's counters are not omitempty."""
    obj["status"] = {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}


def pdb_row(obj: Obj) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    return [
        str(min_available) if min_available is not None else "N/A",
        str(max_unavailable) if max_unavailable is not None else "N/A",
        status.get("disruptionsAllowed") or 0,
        age_cell(obj),
    ]


PDB_COLUMNS = (
    Column("Min Available", "string", description="The minimum number of pods that must be available."),
    Column("Max Unavailable", "string", description="The maximum number of pods that may be unavailable."),
    Column("Allowed Disruptions", "integer", description="Calculated number of pods that may be disrupted at this "
           "time."),
    age_column(),
)


def register(reg: Registry) -> None:
    g, v = "policy", "v1"
    reg.register(Resource(
        group=g, version=v, kind="PodDisruptionBudget", plural="poddisruptionbudgets", namespaced=True,
        short_names=("pdb",), subresources=("status",), definition=definition(g, v, "PodDisruptionBudget"),
        columns=PDB_COLUMNS, row=pdb_row, validate=validate_pdb, validate_update=validate_pdb_update,
        prepare_create=prepare_create_pdb, tracks_generation=True,
    ))
