"""The meta.k8s.io/v1 Table envelope: what `kubectl get` asks for and prints as columns.

Columns and cells are per kind (Resource.columns/row); this module only wraps them.
"""

from __future__ import annotations

from typing import Any

from kubelite.api.registry import Column, Resource

Obj = dict[str, Any]

_NAME = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. Name is "
    "primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0,
}
_CREATED_AT = Column("Created At", "date", description="CreationTimestamp is a timestamp representing the server "
                     "time when this object was created.")


def _column(c: Column) -> dict:
    return {"name": c.name, "type": c.type, "format": c.format, "description": c.description, "priority": c.priority}


def column_definitions(res: Resource) -> list[dict]:
    if res.name_in_row:
        return [_NAME | {"priority": c.priority, "name": c.name} if c.format == "name" else _column(c)
                for c in res.columns]
    cols = res.columns or (_CREATED_AT,)
    return [_NAME] + [_column(c) for c in cols]


def _cells(res: Resource, obj: Obj) -> list:
    if res.name_in_row:
        try:
            return list(res.row(obj))
        except Exception:
            return ["<unknown>"] * len(res.columns)
    name = res.name_cell(obj) if res.name_cell else obj.get("metadata", {}).get("name", "")
    if not res.columns:
        return [name, obj.get("metadata", {}).get("creationTimestamp")]
    try:
        return [name, *res.row(obj)]
    except Exception:  # a printer must never fail a GET: show what we can
        return [name] + ["<unknown>"] * len(res.columns)


def _row_object(obj: Obj, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def table(res: Resource, objects: list[Obj], list_meta: dict, include_object: str = "Metadata",
          with_columns: bool = True) -> Obj:
    rows = []
    for obj in objects:
        row: Obj = {"cells": _cells(res, obj)}
        ro = _row_object(obj, include_object)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions(res) if with_columns else [],
        "rows": rows,
    }


def wants_table(accept: str) -> bool:
    """True when the Accept header's first acceptable type is a meta.k8s.io Table."""
    for part in accept.split(","):
        p = part.replace(" ", "")
        if "as=Table" in p and "g=meta.k8s.io" in p:
            return True
        if p.startswith("application/json") or p.startswith("*/*") or p.startswith("application/yaml"):
            return False
    return False
