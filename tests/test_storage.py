"""The embedded SQLite store: CRUD, compare-and-swap, ordered lists, watches, restarts, kill -9.

These drive the store directly (the API tests drive it through kubectl); async code runs with
asyncio.run inside each test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time

import orjson
import pytest

from kubelite.storage import (
    CompactedError,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    SQLiteStore,
    StorageError,
    open_store,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PODS = "/registry/core/pods/"


def pod(name: str, ns: str = "default", **extra) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, **extra}


def rv(obj: dict) -> int:
    return int(obj["metadata"]["resourceVersion"])


def run(db: str, scenario, **opts):
    """Run scenario(store) against a started store, closing it afterwards."""

    async def main():
        store = SQLiteStore(db, **opts)
        await store.start()
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def next_event(w, timeout: float = 2.0):
    return await asyncio.wait_for(w.__anext__(), timeout)


@pytest.fixture
def db(tmp_path) -> str:
    return str(tmp_path / "state.db")


def test_create_get_update_delete(db):
    async def scenario(s):
        given = pod("web", spec={"containers": [{"name": "c"}]})
        created = await s.create(PODS + "default/web", given)
        assert "resourceVersion" not in given["metadata"], "the caller's dict is never mutated"
        assert rv(created) == s.revision and created["spec"] == given["spec"]
        assert await s.get(PODS + "default/web") is created
        with pytest.raises(KeyExistsError):
            await s.create(PODS + "default/web", pod("web"))

        changed = await s.update(PODS + "default/web", {**created, "spec": {"containers": []}})
        assert rv(changed) == rv(created) + 1, "an update gets the next revision; the old object is untouched"
        assert (await s.get(PODS + "default/web"))["spec"] == {"containers": []}

        gone = await s.delete(PODS + "default/web")
        assert rv(gone) == s.revision > rv(changed), "delete returns the last state at the deletion revision"
        assert gone["spec"] == {"containers": []}
        assert await s.get(PODS + "default/web") is None
        with pytest.raises(KeyNotFoundError):
            await s.update(PODS + "default/web", pod("web"))
        with pytest.raises(KeyNotFoundError):
            await s.delete(PODS + "default/web")

    run(db, scenario)


def test_compare_and_swap_conflicts_carry_the_current_object(db):
    async def scenario(s):
        v1 = await s.create(PODS + "default/a", pod("a"))
        v2 = await s.update(PODS + "default/a", {**v1, "x": 1}, expected_revision=rv(v1))
        with pytest.raises(ConflictError) as e:
            await s.update(PODS + "default/a", {**v1, "x": 2}, expected_revision=rv(v1))
        assert e.value.current is v2
        with pytest.raises(ConflictError) as e:
            await s.delete(PODS + "default/a", expected_revision=rv(v1))
        assert e.value.current is v2
        assert (await s.get(PODS + "default/a"))["x"] == 1
        await s.delete(PODS + "default/a", expected_revision=rv(v2))

    run(db, scenario)


def test_racing_writers_exactly_one_wins(db):
    async def scenario(s):
        results = await asyncio.gather(*(s.create(PODS + "default/race", pod("race", n=i)) for i in range(50)),
                                       return_exceptions=True)
        winners = [r for r in results if isinstance(r, dict)]
        assert len(winners) == 1
        assert all(isinstance(r, KeyExistsError) for r in results if not isinstance(r, dict))
        assert await s.get(PODS + "default/race") is winners[0]

        base = winners[0]
        results = await asyncio.gather(*(s.update(PODS + "default/race", {**base, "n": i}, expected_revision=rv(base))
                                         for i in range(50)), return_exceptions=True)
        assert sum(isinstance(r, dict) for r in results) == 1
        assert all(isinstance(r, ConflictError) for r in results if not isinstance(r, dict))

    run(db, scenario)


def test_reads_and_checks_never_see_uncommitted_writes(db):
    """While another process holds SQLite's write lock, a queued create is invisible and unanswered."""

    async def scenario(s):
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            first = asyncio.create_task(s.create(PODS + "default/p", pod("p")))
            second = asyncio.create_task(s.create(PODS + "default/p", pod("p")))
            await asyncio.sleep(0.2)
            assert not first.done() and not second.done(), "nothing is acknowledged before it commits"
            assert await s.get(PODS + "default/p") is None
            assert (await s.list(PODS))[0] == []
        finally:
            other.execute("ROLLBACK")
            other.close()
        created = await first
        with pytest.raises(KeyExistsError):
            await second
        assert await s.get(PODS + "default/p") is created

    run(db, scenario)


def test_a_cancelled_caller_does_not_cancel_its_queued_write(db):
    async def scenario(s):
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            impatient = asyncio.create_task(s.create(PODS + "default/c", pod("c")))
            await asyncio.sleep(0.05)
            impatient.cancel()
            racing = asyncio.create_task(s.create(PODS + "default/c", pod("c")))
            await asyncio.sleep(0.05)
            assert not racing.done()
        finally:
            other.execute("ROLLBACK")
            other.close()
        with pytest.raises(KeyExistsError):
            await racing
        assert impatient.cancelled() and await s.get(PODS + "default/c") is not None

    run(db, scenario)


def test_list_is_in_key_order_and_pages_with_start_after(db):
    async def scenario(s):
        names = [("ns1", "b"), ("ns10", "a"), ("ns1", "a"), ("ns2", "c"), ("ns1", "c"), ("ns1", "aa")]
        for ns, name in names:
            await s.create(f"{PODS}{ns}/{name}", pod(name, ns))
        await s.create("/registry/core/nodes/n1", {"metadata": {"name": "n1"}})
        await s.create("/registry/core/configmaps/ns1/x", {"metadata": {"name": "x", "namespace": "ns1"}})

        every, rev, cont = await s.list(PODS)
        assert [o["metadata"]["namespace"] + "/" + o["metadata"]["name"] for o in every] == [
            "ns1/a", "ns1/aa", "ns1/b", "ns1/c", "ns10/a", "ns2/c"]
        assert rev == s.revision and cont == ""
        ns1, _, _ = await s.list(PODS + "ns1/")
        assert [o["metadata"]["name"] for o in ns1] == ["a", "aa", "b", "c"], "ns10 is not under ns1/"

        pages, after = [], ""
        while True:
            page, _, after = await s.list(PODS, limit=4 if not pages else 1, start_after=after)
            pages.append([o["metadata"]["name"] for o in page])
            if not after:
                break
        assert pages == [["a", "aa", "b", "c"], ["a"], ["c"]]
        page, _, after = await s.list(PODS + "ns1/", limit=2, start_after=PODS + "ns1/a")
        assert [o["metadata"]["name"] for o in page] == ["aa", "b"] and after == PODS + "ns1/b"

        whole, _, _ = await s.list("/registry/")
        keys = [o["metadata"].get("namespace", "") + "/" + o["metadata"]["name"] for o in whole]
        assert len(keys) == 8 and keys[0] == "ns1/x" and keys[1] == "/n1", "configmaps, nodes, pods in key order"

        await s.delete(PODS + "ns1/aa")
        assert [o["metadata"]["name"] for o in (await s.list(PODS + "ns1/"))[0]] == ["a", "b", "c"]

    run(db, scenario)


def test_watch_replays_from_a_revision_then_goes_live(db):
    async def scenario(s):
        a = await s.create(PODS + "ns1/a", pod("a", "ns1"))
        await s.create(PODS + "ns1/b", pod("b", "ns1"))
        await s.create(PODS + "ns2/other", pod("other", "ns2"))
        await s.create("/registry/core/configmaps/ns1/cm", {"metadata": {"name": "cm"}})

        w = s.watch(PODS + "ns1/", rv(a))
        everything = s.watch(PODS, 0)
        ev = await next_event(w)
        assert (ev.type, ev.object["metadata"]["name"]) == ("ADDED", "b")

        b2 = await s.update(PODS + "ns1/b", {**pod("b", "ns1"), "x": 1})
        await s.create(PODS + "ns2/ignored", pod("ignored", "ns2"))
        gone = await s.delete(PODS + "ns1/a")
        ev = await next_event(w)
        assert (ev.type, ev.revision, ev.object) == ("MODIFIED", rv(b2), b2)
        ev = await next_event(w)
        assert (ev.type, ev.revision, ev.object["metadata"]["resourceVersion"]) == ("DELETED", rv(gone), str(rv(gone)))
        assert w.revision == rv(gone)
        assert w.bookmark().type == "BOOKMARK" and w.bookmark().revision == s.revision
        with pytest.raises(asyncio.TimeoutError):
            await next_event(w, 0.1)

        seen = [(await next_event(everything)).revision for _ in range(6)]
        assert seen == sorted(seen) and len(set(seen)) == 6
        w.close()
        with pytest.raises(StopAsyncIteration):
            await w.__anext__()

    run(db, scenario)


def test_too_old_revision_is_compacted(db):
    async def scenario(s):
        for i in range(30):
            await s.create(f"{PODS}default/p{i}", pod(f"p{i}"))
        with pytest.raises(CompactedError) as e:
            s.watch(PODS, 1)
        assert e.value.requested == 1
        w = s.watch(PODS, s.revision - 3)  # within the last `history` events
        assert [(await next_event(w)).revision for _ in range(3)] == [s.revision - 2, s.revision - 1, s.revision]

        await s.compact(s.revision - 1)
        with pytest.raises(CompactedError):
            s.watch(PODS, s.revision - 2)
        s.watch(PODS, s.revision - 1).close()

    run(db, scenario, history=5)


def test_revisions_keep_increasing_across_restarts(db):
    async def first(s):
        await s.create(PODS + "default/a", pod("a"))
        b = await s.create(PODS + "default/b", pod("b"))
        gone = await s.delete(PODS + "default/b")  # the newest key is gone: its revision must not return
        return rv(b), rv(gone)

    b_rev, deleted_rev = run(db, first)

    async def second(s):
        assert s.revision == deleted_rev
        assert await s.get(PODS + "default/b") is None
        assert rv(await s.get(PODS + "default/a")) < b_rev
        w = s.watch(PODS, b_rev)  # the event log survives the restart
        ev = await next_event(w)
        assert (ev.type, ev.revision) == ("DELETED", deleted_rev)
        c = await s.create(PODS + "default/c", pod("c"))
        assert rv(c) > deleted_rev
        await s.compact(s.revision)
        return rv(c)

    c_rev = run(db, second)

    async def third(s):
        assert s.revision == c_rev
        with pytest.raises(CompactedError):
            s.watch(PODS, c_rev - 1)
        assert rv(await s.create(PODS + "default/d", pod("d"))) == c_rev + 1

    run(db, third)


def test_slow_watcher_is_closed_without_holding_up_others(db):
    async def scenario(s):
        slow = s.watch(PODS, s.revision)
        fast = s.watch(PODS, s.revision)
        got = []

        async def consume():
            async for ev in fast:
                got.append(ev.revision)
                if len(got) == 40:
                    return

        reader = asyncio.create_task(consume())
        for i in range(40):
            await s.create(f"{PODS}default/p{i}", pod(f"p{i}"))
        await asyncio.wait_for(reader, 2)
        assert got == sorted(got) and len(got) == 40
        drained = [ev.revision async for ev in slow]  # what was buffered, then the end of the stream
        assert slow.overflowed and drained == got[:len(drained)] and len(drained) < 40

    run(db, scenario, watch_queue=8)


def test_close_flushes_queued_writes(db):
    async def scenario(s):
        for i in range(200):
            asyncio.ensure_future(s.create(f"{PODS}default/p{i}", pod(f"p{i}")))
        await asyncio.sleep(0)

    run(db, scenario)

    async def check(s):
        assert len((await s.list(PODS))[0]) == 200

    run(db, check)


def test_open_store_picks_the_backend(db):
    assert isinstance(open_store(db), SQLiteStore)
    assert isinstance(open_store("sqlite://" + db), SQLiteStore)
    with pytest.raises(StorageError, match="etcd"):
        open_store("etcd://127.0.0.1:2379")


WRITER = r"""
import asyncio, sys
from kubelite.storage import SQLiteStore

async def main():
    store = SQLiteStore(sys.argv[1])
    await store.start()
    async def writer(k):
        i = 0
        while True:
            key = f"/registry/core/configmaps/default/w{k}-{i}"
            await store.create(key, {"metadata": {"name": f"w{k}-{i}"}, "data": {"pad": "x" * 1024}})
            sys.stdout.write(key + "\n")
            sys.stdout.flush()
            i += 1
    await asyncio.gather(*(writer(k) for k in range(8)))

asyncio.run(main())
"""


def test_kill9_loses_no_acknowledged_write(db):
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, db], stdout=subprocess.PIPE, env=env, text=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(db) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=10)
    acked = out.split()
    assert len(acked) > 50

    conn = sqlite3.connect(db)
    rows = dict(conn.execute("SELECT key, value FROM objects").fetchall())
    conn.close()
    for value in rows.values():
        obj = orjson.loads(value)
        assert obj["data"]["pad"] == "x" * 1024 and int(obj["metadata"]["resourceVersion"]) > 0

    async def check(s):
        present = {o["metadata"]["name"] for o in (await s.list("/registry/core/configmaps/default/"))[0]}
        missing = [k for k in acked if k.rsplit("/", 1)[1] not in present]
        assert not missing
        await s.create("/registry/core/configmaps/default/after", {"metadata": {"name": "after"}})

    run(db, check)
