"""ControllerExpectations: what a controller asked for and has not yet seen in its informer.

Upstream's pkg/controller/controller_utils.go: after creating N pods a ReplicaSet must not sync
again (and create N more) until its pod informer has shown it those creations, or the record is
older than five minutes (a lost watch event must not wedge the controller forever).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

EXPECTATIONS_TIMEOUT = 5 * 60.0


@dataclass
class _Expectee:
    add: int = 0
    delete: int = 0
    timestamp: float = field(default_factory=time.monotonic)
    # deletions are tracked by uid, so a deletion seen twice (update with deletionTimestamp, then
    # the delete itself) is counted once: upstream's UIDTrackingControllerExpectations
    deleting: set[str] = field(default_factory=set)

    def fulfilled(self) -> bool:
        return self.add <= 0 and self.delete <= 0

    def expired(self) -> bool:
        return time.monotonic() - self.timestamp > EXPECTATIONS_TIMEOUT


class ControllerExpectations:
    def __init__(self) -> None:
        self._store: dict[str, _Expectee] = {}

    def satisfied(self, key: str) -> bool:
        """True when the controller may sync: nothing pending, expectations met, or expired."""
        e = self._store.get(key)
        if e is None:
            return True
        return e.fulfilled() or e.expired()

    def expect_creations(self, key: str, adds: int) -> None:
        self._store[key] = _Expectee(add=adds)

    def expect_deletions(self, key: str, uids: list[str]) -> None:
        self._store[key] = _Expectee(delete=len(uids), deleting=set(uids))

    def creation_observed(self, key: str) -> None:
        e = self._store.get(key)
        if e is not None:
            e.add -= 1

    def deletion_observed(self, key: str, uid: str) -> None:
        e = self._store.get(key)
        if e is not None and uid in e.deleting:
            e.deleting.discard(uid)
            e.delete -= 1

    def lower_creations(self, key: str, n: int = 1) -> None:
        """A create that failed (or was skipped) will never be observed."""
        e = self._store.get(key)
        if e is not None:
            e.add -= n

    def delete(self, key: str) -> None:
        self._store.pop(key, None)
