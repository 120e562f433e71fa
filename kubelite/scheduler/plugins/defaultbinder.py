"""DefaultBinder: write the decision through the pods/binding subresource."""

from __future__ import annotations

from kubelite.api.errors import StatusError
from kubelite.scheduler.framework import ERROR, Plugin, Status


class DefaultBinder(Plugin):
    name = "DefaultBinder"
    events = frozenset()

    async def bind(self, state, pod, node_name):
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        try:
            await self.handle.client.pods.create_subresource(pod.name, "binding", body, namespace=pod.namespace)
        except StatusError as e:
            return Status(ERROR, e.message)
        return None
