"""What a kubelet says about its own Node: "Starting kubelet." and one event per condition that turns
healthy, as pkg/kubelet/nodestatus records them. Shared by the real kubelet and the simulated nodes."""

from __future__ import annotations

from typing import Any

Event = tuple[str, str, str]  # type, reason, message

# condition type -> (healthy status, event reason when it turns so)
_HEALTHY = (("MemoryPressure", "False", "NodeHasSufficientMemory"),
            ("DiskPressure", "False", "NodeHasNoDiskPressure"),
            ("PIDPressure", "False", "NodeHasSufficientPID"),
            ("Ready", "True", "NodeReady"))
STARTING: Event = ("Normal", "Starting", "Starting kubelet.")
ALLOCATABLE_ENFORCED: Event = ("Normal", "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods")


def node_reference(name: str) -> dict[str, Any]:
    """The kubelet's reference to its node: kind Node, the name as uid, no namespace (pkg/kubelet nodeRef)."""
    return {"kind": "Node", "metadata": {"name": name, "uid": name}}


def condition_events(name: str, old: list[dict] | None, new: list[dict] | None) -> list[Event]:
    """The events for conditions that are healthy in `new` and were not in `old`."""
    was = {c.get("type"): c.get("status") for c in old or []}
    now = {c.get("type"): c.get("status") for c in new or []}
    return [("Normal", reason, f"Node {name} status is now: {reason}")
            for ctype, healthy, reason in _HEALTHY if now.get(ctype) == healthy and was.get(ctype) != healthy]
