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
    "core_cluster",  # core/v1 PodTemplate, ComponentStatus, Binding
    "storage_csi",  # storage.k8s.io/v1 CSI kinds
    "admissionregistration",
    "apiextensions",
    "apiregistration",
    "certificates",
    "flowcontrol",
    "node_k8s_io",  # node.k8s.io
    "metrics",  # metrics.k8s.io (served by kubelite.metrics)
)


def register_all(reg: Registry) -> None:
    for name in MODULES:
        import_module(f"{__name__}.{name}").register(reg)
