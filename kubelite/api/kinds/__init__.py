"""Every kind kubelite serves, one module per API group (core is split by kind family)."""

from __future__ import annotations

from importlib import import_module

from kubelite.api.registry import Registry

# Each module defines register(reg: Registry) -> None.
MODULES = (
    "core",  # core/v1
    "apps",
    "batch",
    "networking",
    "discovery",
    "coordination",
    "events",
    "policy",
    "scheduling",
    "rbac",
    "autoscaling",
    "storage",
    "authentication",
    "authorization",
)


def register_all(reg: Registry) -> None:
    for name in MODULES:
        import_module(f"{__name__}.{name}").register(reg)
