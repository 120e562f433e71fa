"""Which Services select a pod: what both endpoint controllers need to know when a pod changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]


def services_selecting(services: Any, pod: Obj) -> set[str]:
    """Keys (ns/name) of the Services in the pod's namespace whose selector matches its labels."""
    ns = pod["metadata"].get("namespace")
    labels = pod["metadata"].get("labels") or {}
    keys = set()
    for svc in services.list(ns):
        sel = (svc.get("spec") or {}).get("selector")
        if sel and all(labels.get(k) == v for k, v in sel.items()):
            keys.add(f"{ns}/{svc['metadata']['name']}")
    return keys


def pod_handlers(services: Any, enqueue: Callable[[str], None]) -> tuple[Callable, Callable, Callable]:
    """(on_add, on_update, on_delete) enqueueing every Service that selects (or selected) the pod."""

    def changed(pod: Obj) -> None:
        for key in services_selecting(services, pod):
            enqueue(key)

    def updated(old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        keys = services_selecting(services, new)
        if (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {}):
            keys |= services_selecting(services, old)
        for key in keys:
            enqueue(key)

    return changed, updated, changed
