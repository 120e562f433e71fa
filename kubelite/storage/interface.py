"""The one storage interface the API server uses; SQLite (default) and etcd sit behind it.

Shaped after what upstream's apiserver needs from etcd (kine adapts SQL to the same shape):
keys are strings like `/registry/apps/deployments/default/web`, every write gets a new global
revision, objects carry that revision as `metadata.resourceVersion`, and watches replay from a
revision. Objects are plain JSON dicts. Objects returned by a store are shared with its cache:
callers must never mutate them (copy first).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


class StorageError(Exception):
    pass


class KeyExistsError(StorageError):
    """create() of a key that exists."""


class KeyNotFoundError(StorageError):
    """update()/delete() of a key that does not exist."""


class ConflictError(StorageError):
    """Compare-and-swap failed: the object's current revision differs from the expected one."""

    def __init__(self, current: Obj | None):
        super().__init__("revision mismatch")
        self.current = current


class CompactedError(StorageError):
    """A watch or list asked for a revision older than the oldest one kept: upstream answers 410 Gone."""

    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED | BOOKMARK
    key: str
    object: Obj  # for DELETED: the last state, with resourceVersion = the deletion's revision
    revision: int
    prev: Obj | None = None  # for MODIFIED: the state before, when known (selector transitions)


class Watch(ABC):
    """A stream of events for keys under a prefix. Iterate it; close() ends it."""

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...

    async def next(self, timeout: float) -> WatchEvent | None:
        """The next event, or None when none came within timeout; StopAsyncIteration at the end."""
        try:
            return await asyncio.wait_for(self.__aiter__().__anext__(), timeout)
        except TimeoutError:
            return None

    @abstractmethod
    def close(self) -> None: ...


class Store(ABC):
    @abstractmethod
    async def start(self) -> None:
        """Open the backend and load what the cache needs; idempotent."""

    @abstractmethod
    async def close(self) -> None: ...

    @property
    @abstractmethod
    def revision(self) -> int:
        """The newest committed revision."""

    @abstractmethod
    async def get(self, key: str) -> Obj | None: ...

    @abstractmethod
    async def list(self, prefix: str, limit: int = 0, start_after: str = "") -> tuple[list[Obj], int, str]:
        """Objects whose key starts with prefix, in key order, after key start_after.

        Returns (objects, revision the list reflects, last key returned if more remain else "").
        """

    @abstractmethod
    async def count(self, prefix: str, start_after: str = "") -> int:
        """How many keys start with prefix and sort after start_after (a LIST's remainingItemCount)."""

    @abstractmethod
    async def create(self, key: str, obj: Obj) -> Obj:
        """Store a new object; returns it with metadata.resourceVersion set. Raises KeyExistsError."""

    @abstractmethod
    async def update(self, key: str, obj: Obj, expected_revision: int | None = None) -> Obj:
        """Replace an object, optionally only if its revision is expected_revision.

        Raises KeyNotFoundError, ConflictError.
        """

    @abstractmethod
    async def delete(self, key: str, expected_revision: int | None = None) -> Obj:
        """Delete; returns the last state with resourceVersion set to the deletion revision."""

    @abstractmethod
    def watch(self, prefix: str, revision: int) -> Watch:
        """Events for keys under prefix with revision > `revision`.

        Raises CompactedError if `revision` is older than the history kept.
        """

    @abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history at and before revision."""
