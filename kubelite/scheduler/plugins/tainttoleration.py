"""TaintToleration: NoSchedule/NoExecute taints filter, PreferNoSchedule taints lower the score."""

from __future__ import annotations

from kubelite.scheduler.framework import (
    NODE_ADD,
    NODE_UPDATE,
    SKIPPED,
    Plugin,
    default_normalize,
    unresolvable,
)


def tolerates(toleration: dict, taint: dict) -> bool:
    """Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def first_untolerated(taints: list[dict], tolerations: list[dict]) -> dict | None:
    for taint in taints:
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


class TaintToleration(Plugin):
    name = "TaintToleration"
    weight = 3
    events = frozenset((NODE_ADD, NODE_UPDATE))

    def filter(self, state, pod, node):
        if not node.taints:
            return None
        taint = first_untolerated(node.taints, pod.tolerations)
        if taint is None:
            return None
        return unresolvable(f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}")

    def pre_score(self, state, pod, nodes):
        # uniform scores change nothing: skip unless some node prefers not to schedule
        if not any(n.prefer_no_schedule for n in nodes):
            return SKIPPED
        state[self.name] = [t for t in pod.tolerations if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"]
        return None

    def score(self, state, pod, nodes):
        tols = state.get(self.name) or []
        raw = [sum(1 for taint in n.prefer_no_schedule if not any(tolerates(t, taint) for t in tols)) for n in nodes]
        return default_normalize(raw, reverse=True)
