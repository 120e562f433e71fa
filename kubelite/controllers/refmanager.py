"""ControllerRefManager: adopt orphans that match a controller's selector, release those that stop matching.

Upstream's pkg/controller/controller_ref_manager.go. Adoption adds an ownerReference with
controller=true and blockOwnerDeletion=true; release removes it. Both are strategic-merge patches
on the ownerReferences list (merge key uid) carrying only the child's uid as a precondition, as
upstream: a kubelet status write in between must not make the adoption fail, or the controller
would create a replica of its own and may then delete the orphan it meant to adopt. A second
controller reference is refused by validation. Before the first adoption the owner is re-read
live: a controller that is being deleted adopts nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.client.owners import controller_ref, new_controller_ref

log = logging.getLogger(__name__)

__all__ = ["ControllerRefManager", "controller_ref", "new_controller_ref", "recheck_owner"]

Obj = dict[str, Any]


class ControllerRefManager:
    """Claims children (pods or ReplicaSets) for one controller object in one sync."""

    def __init__(self, resource: Any, controller: Obj, api_version: str, kind: str,
                 matches: Callable[[Obj], bool], can_adopt: Callable[[], Awaitable[None]]):
        self.resource = resource  # ResourceClient of the children
        self.controller = controller
        self.api_version = api_version
        self.kind = kind
        self.uid = controller["metadata"]["uid"]
        self.matches = matches
        self._can_adopt = can_adopt
        self._adopt_checked: StatusError | None | bool = False

    async def _check_can_adopt(self) -> None:
        if self._adopt_checked is False:
            try:
                await self._can_adopt()
                self._adopt_checked = None
            except StatusError as e:
                self._adopt_checked = e
        if isinstance(self._adopt_checked, StatusError):
            raise self._adopt_checked

    async def claim(self, children: list[Obj]) -> list[Obj]:
        """The children this controller owns after adopting and releasing as needed."""
        claimed: list[Obj] = []
        errors: list[Exception] = []
        controller_deleting = bool(self.controller["metadata"].get("deletionTimestamp"))
        for child in children:
            ref = controller_ref(child)
            cm = child.get("metadata") or {}
            if ref is not None:
                if ref.get("uid") != self.uid:
                    continue  # owned by someone else
                if self.matches(child):
                    claimed.append(child)
                    continue
                if controller_deleting:
                    continue  # do not release while being deleted (the GC will act)
                try:
                    await self._release(child)
                except StatusError as e:
                    if e.code != 404:
                        errors.append(e)
                continue
            # orphan
            if controller_deleting or not self.matches(child) or cm.get("deletionTimestamp"):
                continue
            try:
                await self._check_can_adopt()
                claimed.append(await self._adopt(child))
            except StatusError as e:
                if e.code not in (404, 409, 422):
                    errors.append(e)
        if errors:
            raise errors[0]
        return claimed

    async def _adopt(self, child: Obj) -> Obj:
        cm = child["metadata"]
        ref = new_controller_ref(self.controller, self.kind, self.api_version)
        patch = {"metadata": {"ownerReferences": [ref], "uid": cm["uid"]}}
        return await self.resource.patch(cm["name"], patch, "strategic", namespace=cm.get("namespace"))

    async def _release(self, child: Obj) -> None:
        cm = child["metadata"]
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": self.uid}], "uid": cm["uid"]}}
        await self.resource.patch(cm["name"], patch, "strategic", namespace=cm.get("namespace"))


def recheck_owner(resource: Any, owner: Obj) -> Callable[[], Awaitable[None]]:
    """RecheckDeletionTimestamp: a live read proving the owner is the same object and not being deleted."""
    async def check() -> None:
        m = owner["metadata"]
        fresh = await resource.get(m["name"], namespace=m.get("namespace"))
        fm = fresh.get("metadata") or {}
        if fm.get("uid") != m["uid"]:
            raise StatusError(409, "Conflict", f"original {m['name']} is gone: got uid {fm.get('uid')}, wanted {m['uid']}")
        if fm.get("deletionTimestamp"):
            raise StatusError(409, "Conflict", f"{m['namespace']}/{m['name']} has just been deleted at "
                                               f"{fm['deletionTimestamp']}")
    return check
