"""The FlowSchema `Dangling` condition, as upstream's priority-and-fairness config controller keeps it:
False while the PriorityLevelConfiguration a FlowSchema names exists, True when it does not (the
MISSINGPL column of `kubectl get flowschemas`)."""

from __future__ import annotations

from typing import Any

from kubelite.api import meta as metautil
from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.informer import SharedInformerFactory

Obj = dict[str, Any]

GROUP, VERSION = "flowcontrol.apiserver.k8s.io", "v1"
UPDATE_DELAY = 2.0


def dangling_condition(fs: Obj, levels: set[str]) -> Obj:
    name = ((fs.get("spec") or {}).get("priorityLevelConfiguration") or {}).get("name", "")
    if name in levels:
        return {"type": "Dangling", "status": "False", "reason": "Found",
                "message": f'This FlowSchema references the PriorityLevelConfiguration object named "{name}" '
                           "and it exists"}
    return {"type": "Dangling", "status": "True", "reason": "NotFound",
            "message": f'This FlowSchema references the PriorityLevelConfiguration object named "{name}" '
                       "but there is no such object"}


class FlowSchemaStatusController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 1):
        self.flowschemas = client.resource(GROUP, VERSION, "flowschemas")
        self.fs_informer = factory.informer(GROUP, VERSION, "flowschemas")
        self.pl_informer = factory.informer(GROUP, VERSION, "prioritylevelconfigurations")
        self.controller = Controller("flowschema-status", self.sync, workers=workers)
        # a new schema gets its condition at once; after a change the controller waits a moment, so that
        # a client's read-modify-write of the status (as upstream's e2e does) is not raced into a 409
        self.fs_informer.add_handler(
            on_add=lambda fs: self.controller.enqueue(fs["metadata"]["name"]),
            on_update=lambda _old, fs: self.controller.enqueue_after(fs["metadata"]["name"], UPDATE_DELAY))
        # a level appearing or going away changes every schema that names it
        self.pl_informer.add_handler(on_add=self._levels_changed, on_delete=self._levels_changed)

    def _levels_changed(self, _obj: Obj) -> None:
        for fs in self.fs_informer.store.list(None):
            self.controller.enqueue(fs["metadata"]["name"])

    async def sync(self, key: str) -> None:
        fs = self.fs_informer.store.get(None, key)
        if fs is None:
            return
        levels = {pl["metadata"]["name"] for pl in self.pl_informer.store.list(None)}
        conditions = metautil.deep_copy((fs.get("status") or {}).get("conditions") or [])
        if not metautil.set_status_condition(conditions, dangling_condition(fs, levels)):
            return
        try:
            await self.flowschemas.update_status({**fs, "status": {**(fs.get("status") or {}),
                                                                   "conditions": conditions}})
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
