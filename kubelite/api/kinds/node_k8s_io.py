"""node.k8s.io/v1: RuntimeClass (the handler names a CRI runtime configuration)."""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import age_cell, age_column, definition
from kubelite.api.registry import Column, Obj, Registry, Resource

GROUP = "node.k8s.io"


def validate_runtimeclass(obj: Obj) -> list[FieldError]:
    """ValidateRuntimeClass: the handler is a DNS-1123 label."""
    handler = obj.get("handler") or ""
    if not handler:
        return [ferr.required("handler", "")]
    return [ferr.invalid("handler", handler, m) for m in common.dns1123_label(handler)]


def validate_runtimeclass_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = common.validate_object_meta_update(new, old) + validate_runtimeclass(new)
    if new.get("handler") != old.get("handler"):
        errs.append(ferr.invalid("handler", new.get("handler"), "field is immutable"))
    return errs


def register(reg: Registry) -> None:
    reg.register(Resource(
        group=GROUP, version="v1", kind="RuntimeClass", plural="runtimeclasses", namespaced=False,
        definition=definition(GROUP, "v1", "RuntimeClass"),
        columns=(Column("Handler", "string", description=common.column_doc("io.k8s.api.node.v1.RuntimeClass",
                                                                           "handler")), age_column()),
        row=lambda obj: [obj.get("handler") or "", age_cell(obj)],
        validate=validate_runtimeclass, validate_update=validate_runtimeclass_update,
    ))
