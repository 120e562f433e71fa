"""SelectorSpread (kubelite's take on upstream's retired plugin): spread the replicas of one controller
(same controller ownerReference) across nodes, preferring nodes that run fewer of them."""

from __future__ import annotations

from kubelite.scheduler.framework import SKIPPED, Plugin


class SelectorSpread(Plugin):
    name = "SelectorSpread"
    weight = 1

    def pre_score(self, state, pod, nodes):
        if not pod.owner_uid or not any(pod.owner_uid in n.owner_counts for n in nodes):
            return SKIPPED
        return None

    def score(self, state, pod, nodes):
        owner = pod.owner_uid
        raw = [n.owner_counts.get(owner, 0) for n in nodes]
        mx = max(raw)
        return [100 * (mx - c) // mx for c in raw] if mx else [100] * len(raw)
