"""Storage benchmark: the SQLite store's create rate, LIST cost and watch delivery, beside raw SQLite.

Run: python bench/store.py [--quick]
The raw figure is a plain sqlite3 loop (WAL, synchronous=NORMAL, one 1 KB row per commit): the
store's group commit should beat it under concurrency. Nothing here asserts: figures go into notes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kubelite.storage import SQLiteStore  # noqa: E402

PODS = "/registry/core/pods/"


def raw_sqlite_upsert_rate(path: str, n: int = 5000) -> float:
    """Single-row upserts per second on this machine: WAL, synchronous=NORMAL, one commit each, 1 KB rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
        value = os.urandom(512).hex().encode()  # 1 KB
        start = time.perf_counter()
        for i in range(n):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                         (f"/registry/core/configmaps/default/raw-{i}", value))
            conn.execute("COMMIT")
        return n / (time.perf_counter() - start)
    finally:
        conn.close()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def pod(ns: str, name: str) -> dict:
    """About 1 KB of JSON, shaped like a small pod."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": "0" * 36, "labels": {"app": "bench", "tier": "web"},
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "c", "image": "localhost/busybox:1", "command": ["sleep", "3600"],
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                 "nodeName": "node-1", "restartPolicy": "Always"},
        "status": {"phase": "Running", "podIP": "10.42.0.1", "notes": "x" * 500},
    }


async def creates(store: SQLiteStore, ns: str, callers: int, total: int) -> float:
    async def caller(c: int) -> None:
        for i in range(c, total, callers):
            await store.create(f"{PODS}{ns}/p{i}", pod(ns, f"p{i}"))

    start = time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(callers)))
    return total / (time.perf_counter() - start)


async def list_latency(store: SQLiteStore, prefix: str, runs: int = 20) -> tuple[int, float, float]:
    times = []
    n = 0
    for _ in range(runs):
        start = time.perf_counter()
        objs, _, _ = await store.list(prefix)
        times.append(time.perf_counter() - start)
        n = len(objs)
    page = []
    for _ in range(runs):
        start = time.perf_counter()
        await store.list(prefix, limit=500, start_after=f"{prefix}p3")
        page.append(time.perf_counter() - start)
    return n, statistics.median(times) * 1e3, statistics.median(page) * 1e3


async def watch_latency(store: SQLiteStore, watchers: int, events: int = 50) -> tuple[float, float]:
    """Delay from just before update() to each watcher receiving the event; watchers on pods."""
    key = f"{PODS}watch/target"
    await store.create(key, pod("watch", "target"))
    latencies: list[float] = []
    # Spread the watchers like an API server's: all pods, one namespace, or another namespace.
    prefixes = [PODS, f"{PODS}watch/", f"{PODS}elsewhere/"]
    streams = [store.watch(prefixes[i % 3] if watchers > 1 else PODS, store.revision) for i in range(watchers)]
    expected = sum(1 for i in range(watchers) if watchers == 1 or i % 3 != 2) * events

    async def consume(w) -> None:
        async for ev in w:
            latencies.append(time.perf_counter() - ev.object["t"])

    tasks = [asyncio.create_task(consume(w)) for w in streams]
    await asyncio.sleep(0.05)
    for _ in range(events):
        await store.update(key, {**pod("watch", "target"), "t": time.perf_counter()})
        await asyncio.sleep(0.02)
    deadline = time.monotonic() + 10
    while len(latencies) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    for w in streams:
        w.close()
    await asyncio.gather(*tasks)
    await store.delete(key)
    return pct(latencies, 50) * 1e3, pct(latencies, 99) * 1e3


async def run(data_dir: str, scale: float, raw: float) -> None:
    store = SQLiteStore(os.path.join(data_dir, "store.db"))
    await store.start()
    try:
        rates = {}
        for callers in (1, 8, 64):
            total = max(callers, int((2000 if callers == 1 else 10000) * scale))
            rates[callers] = rate = await creates(store, f"c{callers}", callers, total)
            print(f"creates/s {callers:3d} concurrent callers: {rate:8.0f}   (ratio to raw SQLite {rate / raw:5.2f})")
        print(f"  target > 2000 creates/s at 64 callers: {rates[64] / 2000:.1f}x")
        await creates(store, "list", 64, 10000)
        n, full, page = await list_latency(store, f"{PODS}list/")
        print(f"LIST of {n} objects:     {full:7.2f} ms median   (limit=500 page: {page:.3f} ms)")
        all_pods, _, _ = await store.list(PODS)
        start = time.perf_counter()
        await store.list(PODS)
        print(f"LIST of all {len(all_pods)} pods:  {(time.perf_counter() - start) * 1e3:7.2f} ms")
        for watchers in (1, 100, 1000):
            p50, p99 = await watch_latency(store, watchers, max(10, int(50 * scale)))
            print(f"watch delivery {watchers:5d} watchers p50/p99: {p50:6.2f} / {p99:6.2f} ms   (target p99 < 50 ms)")
    finally:
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller counts")
    args = ap.parse_args()
    data_dir = tempfile.mkdtemp(prefix="kubelite-bench-store-")
    try:
        print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}")
        raw = raw_sqlite_upsert_rate(os.path.join(data_dir, "raw.db"))
        print(f"raw SQLite upserts/s (WAL, synchronous=NORMAL, 1 KB, one commit each): {raw:8.0f}")
        asyncio.run(run(data_dir, 0.2 if args.quick else 1.0, raw))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
