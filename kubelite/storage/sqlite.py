"""The embedded default store: SQLite shaped like etcd, as k3s's kine adapts SQL to it.

Each object is one row of `objects`; each write also appends its event to `log` in the same
transaction. Revisions never go back, even after the newest object is deleted: the newest log row
is never compacted away, and `meta` records the compacted revision. One writer thread owns the
connection and commits every write queued meanwhile in one transaction (group commit); a write
returns only once its transaction committed. The current state and the recent events live in
memory, so get, list and watch never touch SQLite.

Compare-and-swap is checked on the event loop against the newest intended state (committed state
plus queued writes), so writes are validated in the order they are queued, which is the order they
commit in. A failed check that depended on a not-yet-committed write is answered only once that
write committed, so nobody is told about a state that reads cannot see yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kubelite.storage.interface import (
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    Obj,
    StorageError,
    Store,
    WatchEvent,
)
from kubelite.storage.keyindex import KeyIndex
from kubelite.storage.watchhub import MemoryWatch, WatchHub

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    type TEXT NOT NULL,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

_BUMP_META = (
    "INSERT INTO meta (name, value) VALUES (?, ?) "
    "ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)"
)


@dataclass(slots=True, eq=False)
class _Write:
    type: str  # ADDED | MODIFIED | DELETED
    key: str
    obj: Obj  # the new state; for DELETED the last state with the deletion's revision
    rev: int
    create_rev: int
    done: asyncio.Future[None]  # the caller's: resolved once committed and applied
    batch_done: asyncio.Future[None]  # shared by the transaction; never awaited unshielded


@dataclass(slots=True)
class _Loaded:
    objects: dict[str, Obj]
    create_revs: dict[str, int]
    events: list[WatchEvent]
    forgotten: int
    revision: int


# ---------------------------------------------------------------- on the writer thread


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: transactions are the explicit BEGIN/COMMIT below. The long timeout
    # waits out another process holding the write lock (a backup) instead of failing writes.
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash, not a power loss
    conn.executescript(_SCHEMA)
    return conn


def _load(conn: sqlite3.Connection, history: int) -> _Loaded:
    objects: dict[str, Obj] = {}
    create_revs: dict[str, int] = {}
    mod_revs: dict[str, int] = {}
    for key, value, create_rev, mod_rev in conn.execute("SELECT key, value, create_rev, mod_rev FROM objects"):
        obj = orjson.loads(value)
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(mod_rev)
        objects[key] = obj
        create_revs[key] = create_rev
        mod_revs[key] = mod_rev
    meta_rows = dict(conn.execute("SELECT name, value FROM meta").fetchall())
    forgotten = meta_rows.get("compacted", 0)
    rows = conn.execute("SELECT rev, key, type, value FROM log WHERE rev > ? ORDER BY rev DESC LIMIT ?",
                        (forgotten, history)).fetchall()
    rows.reverse()
    events = []
    for rev, key, typ, value in rows:
        # Share the dict with the current state when the event produced it: half the memory.
        obj = objects[key] if typ != "DELETED" and mod_revs.get(key) == rev else orjson.loads(value)
        events.append(WatchEvent(typ, key, obj, rev))
    if rows:
        older = conn.execute("SELECT max(rev) FROM log WHERE rev < ?", (rows[0][0],)).fetchone()[0]
        forgotten = max(forgotten, older or 0)
    newest_log = conn.execute("SELECT max(rev) FROM log").fetchone()[0] or 0
    revision = max(forgotten, newest_log, max(mod_revs.values(), default=0))
    return _Loaded(objects, create_revs, events, forgotten, revision)


# A batch's rows go in as multi-row statements, not executemany: that releases and retakes the GIL
# around every row, and each time the writer thread waits for the event loop to let go of it, in the
# middle of the event loop's work. 200 rows of 4 parameters stay under older SQLite's limit of 999.
_ROWS_PER_STATEMENT = 200
_INSERT_LOG = "INSERT INTO log (rev, key, type, value) VALUES "
_INSERT_OBJECT = "INSERT INTO objects (key, value, create_rev, mod_rev) VALUES "
_ON_CONFLICT = (" ON CONFLICT(key) DO UPDATE SET value = excluded.value, create_rev = excluded.create_rev, "
                "mod_rev = excluded.mod_rev")


def _insert_rows(conn: sqlite3.Connection, head: str, row: str, tail: str, rows: list[tuple]) -> None:
    for i in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[i:i + _ROWS_PER_STATEMENT]
        conn.execute(head + ", ".join([row] * len(chunk)) + tail, [v for r in chunk for v in r])


def _commit(conn: sqlite3.Connection, batch: list[_Write]) -> None:
    """Write a batch in one transaction: every event to the log, the final state of each key."""
    log_rows = []
    final: dict[str, tuple[_Write, bytes]] = {}
    for w in batch:
        blob = orjson.dumps(w.obj)
        log_rows.append((w.rev, w.key, w.type, blob))
        final[w.key] = (w, blob)
    upserts = [(w.key, blob, w.create_rev, w.rev) for w, blob in final.values() if w.type != "DELETED"]
    deletes = [w.key for w, _ in final.values() if w.type == "DELETED"]
    conn.execute("BEGIN IMMEDIATE")
    try:
        _insert_rows(conn, _INSERT_LOG, "(?, ?, ?, ?)", "", log_rows)
        _insert_rows(conn, _INSERT_OBJECT, "(?, ?, ?, ?)", _ON_CONFLICT, upserts)
        for i in range(0, len(deletes), _ROWS_PER_STATEMENT):
            chunk = deletes[i:i + _ROWS_PER_STATEMENT]
            conn.execute(f"DELETE FROM objects WHERE key IN ({', '.join('?' * len(chunk))})", chunk)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _compact_log(conn: sqlite3.Connection, revision: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # The newest row stays: it is what keeps revisions increasing across a restart.
        conn.execute("DELETE FROM log WHERE rev <= ? AND rev < (SELECT max(rev) FROM log)", (revision,))
        conn.execute(_BUMP_META, ("compacted", revision))
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class _WriterThread(threading.Thread):
    """Owns the one SQLite connection; runs jobs in order and reports each back to the event loop."""

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop):
        super().__init__(name="kubelite-sqlite-writer", daemon=True)
        self._path = path
        self._loop = loop
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def submit(self, fn: Callable[..., Any], args: tuple, on_done: Callable[[Any, BaseException | None], None]) -> None:
        self._jobs.put((fn, args, on_done))

    def stop(self) -> None:
        self._jobs.put(None)

    def run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while (job := self._jobs.get()) is not None:
                fn, args, on_done = job
                result: Any = None
                err: BaseException | None = None
                try:
                    if conn is None:
                        conn = _connect(self._path)
                    result = fn(conn, *args)
                except Exception as e:  # reported to the waiting coroutine
                    err = e
                try:
                    self._loop.call_soon_threadsafe(on_done, result, err)
                except RuntimeError:  # the loop is gone: nobody is waiting any more
                    pass
        finally:
            if conn is not None:
                conn.close()


# ---------------------------------------------------------------- on the event loop


def _stamped(obj: Obj, rev: int) -> Obj:
    """A copy of obj (top level and metadata) carrying rev as its resourceVersion."""
    new = dict(obj)
    meta = dict(obj.get("metadata") or {})
    meta["resourceVersion"] = str(rev)
    new["metadata"] = meta
    return new


def _revision_of(obj: Obj) -> int:
    return int(obj["metadata"]["resourceVersion"])


def _fail(fut: asyncio.Future[None], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
        fut.exception()  # mark retrieved: nobody may be waiting for it


class SQLiteStore(Store):
    """The embedded store. `history` events are kept for watches (in memory and in the log table).

    watch_queue bounds each watcher's buffer of live events; compact_interval is how often the
    log table is trimmed to the events the watch ring still holds.
    """

    def __init__(self, path: str, history: int = 10000, *, watch_queue: int = 1000,
                 compact_interval: float = 60.0):
        self.path = path
        self.history = history
        self._compact_interval = compact_interval
        self._hub = WatchHub(history, watch_queue)
        self._objects: dict[str, Obj] = {}
        self._create_revs: dict[str, int] = {}
        self._index = KeyIndex()
        self._rev = 0  # newest committed revision
        self._last_rev = 0  # newest revision handed out
        self._pending: dict[str, _Write] = {}  # newest queued-but-uncommitted write per key
        self._queued: list[_Write] = []  # the next transaction
        self._queued_done: asyncio.Future[None] | None = None  # its batch_done
        self._inflight: list[_Write] | None = None  # the transaction being committed
        self._db_compacted = 0
        self._writer: _WriterThread | None = None
        self._compactor: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self._started = False
        self._closing = False

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            self._writer = _WriterThread(self.path, asyncio.get_running_loop())
            self._writer.start()
            try:
                loaded: _Loaded = await self._call(_load, max(0, self.history))
            except BaseException:
                self._writer.stop()
                raise
            self._objects = loaded.objects
            self._create_revs = loaded.create_revs
            for key in sorted(loaded.objects):
                self._index.add(key)
            self._rev = self._last_rev = loaded.revision
            self._hub.load(loaded.events, loaded.forgotten, loaded.revision)
            self._db_compacted = loaded.forgotten
            self._compactor = asyncio.create_task(self._compact_periodically())
            self._started = True

    async def close(self) -> None:
        """Flush queued writes, stop watches and the writer thread."""
        if not self._started or self._closing:
            return
        self._closing = True
        while self._queued or self._inflight:
            tail = (self._queued or self._inflight or [])[-1]
            await asyncio.wait([tail.batch_done])
        if self._compactor is not None:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
        self._hub.close_all()
        assert self._writer is not None
        with contextlib.suppress(Exception):
            await self._call(_checkpoint)
        self._writer.stop()
        self._writer.join(timeout=10)  # the thread has nothing left to do but close its connection

    @property
    def revision(self) -> int:
        return self._rev

    # ------------------------------------------------------------ reads: memory only
    async def get(self, key: str) -> Obj | None:
        return self._objects.get(key)

    async def list(self, prefix: str, limit: int = 0, start_after: str = "") -> tuple[list[Obj], int, str]:
        keys, more = self._index.range(prefix, start_after, limit)
        objects = self._objects
        return [objects[k] for k in keys], self._rev, keys[-1] if more else ""

    async def count(self, prefix: str, start_after: str = "") -> int:
        return self._index.count(prefix, start_after)

    def watch(self, prefix: str, revision: int) -> MemoryWatch:
        if not self._started or self._closing:
            raise StorageError("store is not open")
        return self._hub.watch(prefix, revision)

    # ------------------------------------------------------------ writes
    async def create(self, key: str, obj: Obj) -> Obj:
        pending = self._check_writable(key)
        if self._current(key, pending) is not None:
            await self._settle(pending)
            raise KeyExistsError(key)
        rev = self._next_revision()
        w = await self._submit("ADDED", key, _stamped(obj, rev), rev, rev)
        return w.obj

    async def update(self, key: str, obj: Obj, expected_revision: int | None = None) -> Obj:
        pending = self._check_writable(key)
        cur = self._current(key, pending)
        if cur is None:
            await self._settle(pending)
            raise KeyNotFoundError(key)
        if expected_revision is not None and _revision_of(cur) != int(expected_revision):
            await self._settle(pending)
            raise ConflictError(cur)
        create_rev = pending.create_rev if pending is not None else self._create_revs[key]
        rev = self._next_revision()
        w = await self._submit("MODIFIED", key, _stamped(obj, rev), rev, create_rev)
        return w.obj

    async def delete(self, key: str, expected_revision: int | None = None) -> Obj:
        pending = self._check_writable(key)
        cur = self._current(key, pending)
        if cur is None:
            await self._settle(pending)
            raise KeyNotFoundError(key)
        if expected_revision is not None and _revision_of(cur) != int(expected_revision):
            await self._settle(pending)
            raise ConflictError(cur)
        create_rev = pending.create_rev if pending is not None else self._create_revs[key]
        rev = self._next_revision()
        w = await self._submit("DELETED", key, _stamped(cur, rev), rev, create_rev)
        return w.obj

    async def compact(self, revision: int) -> None:
        """Forget history at and before revision (at most the newest committed revision)."""
        revision = min(revision, self._rev)
        self._hub.compact(revision)
        await self._compact_db(revision)

    # ------------------------------------------------------------ internals
    def _check_writable(self, key: str) -> _Write | None:
        if not self._started or self._closing:
            raise StorageError("store is not open")
        return self._pending.get(key)

    def _current(self, key: str, pending: _Write | None) -> Obj | None:
        """The newest intended state of key: its queued write if any, else the committed one."""
        if pending is not None:
            return None if pending.type == "DELETED" else pending.obj
        return self._objects.get(key)

    def _next_revision(self) -> int:
        self._last_rev += 1
        return self._last_rev

    async def _settle(self, pending: _Write | None) -> None:
        """Before failing a check that saw a queued write, wait until that write is committed."""
        if pending is None:
            return
        try:
            await asyncio.shield(pending.batch_done)
        except StorageError:
            raise StorageError("the write this request conflicted with failed; retry") from None

    async def _submit(self, typ: str, key: str, obj: Obj, rev: int, create_rev: int) -> _Write:
        loop = asyncio.get_running_loop()
        if self._queued_done is None:
            self._queued_done = loop.create_future()
        w = _Write(typ, key, obj, rev, create_rev, loop.create_future(), self._queued_done)
        self._queued.append(w)
        self._pending[key] = w
        self._kick()
        # A cancelled caller cancels only its own future; the write itself still commits.
        await w.done
        return w

    def _kick(self) -> None:
        """Hand the queued writes to the writer thread as one transaction, if it is idle."""
        if self._inflight is None and self._queued:
            batch, self._queued = self._queued, []
            self._queued_done = None
            self._inflight = batch
            assert self._writer is not None
            self._writer.submit(_commit, (batch,), lambda _r, err: self._committed(batch, err))

    def _committed(self, batch: list[_Write], err: BaseException | None) -> None:
        self._inflight = None
        if err is not None:
            # Writes queued behind a failed batch were checked against its state: fail them too.
            failed = batch + self._queued
            self._queued = []
            self._queued_done = None
            self._pending.clear()
            exc = StorageError(f"commit failed: {err}")
            for w in failed:
                _fail(w.done, exc)
                _fail(w.batch_done, exc)
            return
        self._kick()  # the next transaction commits while this one is applied
        objects, create_revs, index, pending = self._objects, self._create_revs, self._index, self._pending
        events = []
        for w in batch:
            key = w.key
            prev = objects.get(key)
            if w.type == "DELETED":
                if objects.pop(key, None) is not None:
                    index.remove(key)
                create_revs.pop(key, None)
            else:
                if key not in objects:
                    index.add(key)
                objects[key] = w.obj
                create_revs[key] = w.create_rev
            if pending.get(key) is w:
                del pending[key]
            events.append(WatchEvent(w.type, key, w.obj, w.rev, prev if w.type == "MODIFIED" else None))
        self._rev = batch[-1].rev
        self._hub.publish(events)
        for w in batch:
            if not w.done.done():
                w.done.set_result(None)
        batch[0].batch_done.set_result(None)

    def _call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run fn(conn, *args) on the writer thread, after everything queued before it."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(result: Any, err: BaseException | None) -> None:
            if fut.done():
                return
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(result)

        assert self._writer is not None
        self._writer.submit(fn, args, done)
        return fut

    async def _compact_db(self, revision: int) -> None:
        if revision > self._db_compacted:
            await self._call(_compact_log, revision)
            self._db_compacted = max(self._db_compacted, revision)

    async def _compact_periodically(self) -> None:
        """Trim the log table to the events the watch ring still keeps (upstream compacts every 5 min)."""
        while True:
            await asyncio.sleep(self._compact_interval)
            try:
                await self._compact_db(self._hub.forgotten)
            except Exception:  # retried at the next interval
                pass
