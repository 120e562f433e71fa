"""ClusterRole aggregation controller, as upstream's pkg/controller/clusterroleaggregation.

A ClusterRole with an aggregationRule gets as rules the union of the rules of every other ClusterRole
matching one of its selectors (in selector order, then by name, without duplicates). This is how the
bootstrap admin/edit/view roles get their rules, and how a CRD author extends them with a labelled role.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.api.selectors import selector_from_label_selector
from kubelite.client.controller import Controller
from kubelite.client.informer import SharedInformerFactory

log = logging.getLogger(__name__)

GROUP = "rbac.authorization.k8s.io"
Obj = dict[str, Any]


def aggregated_rules(role: Obj, cluster_roles: list[Obj]) -> list[Obj]:
    name = role["metadata"]["name"]
    rules: list[Obj] = []
    for sel in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
        selector = selector_from_label_selector(sel)
        matching = sorted((r for r in cluster_roles if r["metadata"]["name"] != name and selector.matches_object(r)),
                          key=lambda r: r["metadata"]["name"])
        for other in matching:
            for rule in other.get("rules") or []:
                if rule not in rules:
                    rules.append(rule)
    return rules


class ClusterRoleAggregationController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 1):
        self.cluster_roles = client.resource(GROUP, "v1", "clusterroles")
        self.informer = factory.informer(GROUP, "v1", "clusterroles")
        self.controller = Controller("clusterrole-aggregation-controller", self.sync, workers=workers)
        self.informer.add_handler(on_add=self._changed, on_update=lambda _o, n: self._changed(n),
                                  on_delete=self._changed)

    def _changed(self, _role: Obj) -> None:
        """Any ClusterRole may feed any aggregated one: requeue every aggregated role."""
        for role in self.informer.store.list():
            if role.get("aggregationRule") is not None:
                self.controller.enqueue(role["metadata"]["name"])

    async def sync(self, key: str) -> None:
        role = self.informer.store.get(None, key)
        if role is None or role.get("aggregationRule") is None:
            return
        rules = aggregated_rules(role, self.informer.store.list())
        if (role.get("rules") or []) == rules:
            return
        updated = dict(role, rules=rules)
        try:
            await self.cluster_roles.update(updated, field_manager="clusterrole-aggregation-controller")
        except StatusError as e:
            if e.reason in ("Conflict", "NotFound"):
                return  # a newer version is on its way through the informer
            raise

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
