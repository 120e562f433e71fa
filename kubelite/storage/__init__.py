"""Storage: one interface (`interface.py`), the embedded SQLite store, and `open_store` to pick one."""

from __future__ import annotations

from kubelite.storage.interface import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    Obj,
    StorageError,
    Store,
    Watch,
    WatchEvent,
)
from kubelite.storage.sqlite import SQLiteStore

__all__ = [
    "CompactedError",
    "ConflictError",
    "KeyExistsError",
    "KeyNotFoundError",
    "Obj",
    "SQLiteStore",
    "StorageError",
    "Store",
    "Watch",
    "WatchEvent",
    "open_store",
]


def open_store(url_or_path: str, history: int = 10000) -> Store:
    """The store for a data location: a file path (or sqlite:// URL) means the embedded SQLite store.

    The store still has to be started (`await store.start()`).
    """
    if url_or_path.startswith("etcd://"):
        raise StorageError(f"etcd storage ({url_or_path}) is not implemented yet; use a SQLite file path")
    if url_or_path.startswith("sqlite://"):
        url_or_path = url_or_path[len("sqlite://"):]
    elif "://" in url_or_path:
        raise StorageError(f"unsupported storage URL {url_or_path!r}: use a SQLite file path")
    if not url_or_path:
        raise StorageError("empty storage path")
    return SQLiteStore(url_or_path, history)
