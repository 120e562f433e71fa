"""Upstream's DefaultTolerationSeconds admission: every new pod tolerates a not-ready or unreachable
node for 300 s unless it says otherwise, so a node failure evicts its pods after five minutes
(through the NoExecute taint manager) rather than at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubelite.api.registry import Resource
from kubelite.apiserver.admission import AdmissionPlugin

if TYPE_CHECKING:
    from kubelite.apiserver.service import APIService

DEFAULT_TOLERATION_SECONDS = 300
TAINT_KEYS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def _tolerates(tolerations: list[dict], key: str) -> bool:
    """A toleration already covering `key`:NoExecute (by key, or a wildcard Exists)."""
    for t in tolerations:
        if t.get("effect") not in (None, "", "NoExecute"):
            continue
        if t.get("key") == key or (not t.get("key") and t.get("operator") == "Exists"):
            return True
    return False


class DefaultTolerationSeconds(AdmissionPlugin):
    def __init__(self, seconds: int = DEFAULT_TOLERATION_SECONDS) -> None:
        self.seconds = seconds

    async def start(self, service: APIService) -> None:
        return None

    async def admit(self, op: str, res: Resource, obj: dict[str, Any], old: dict | None) -> None:
        if op != "CREATE" or res.group != "" or res.plural != "pods":
            return
        spec = obj.setdefault("spec", {})
        tolerations = list(spec.get("tolerations") or [])
        for key in TAINT_KEYS:
            if not _tolerates(tolerations, key):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": self.seconds})
        spec["tolerations"] = tolerations
