"""API server benchmark: start-up, idle memory, create rate, GET/LIST latency, watch delivery.

Run: python bench/api.py [--quick]
Prints figures with the machine's raw SQLite commit rate beside them, and the ratios to the targets
of the control-plane issue. Nothing here asserts: figures go into the notes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import aiohttp
import orjson

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Bench:
    def __init__(self, data_dir: str, port: int):
        self.data_dir = data_dir
        self.port = port
        self.base = f"https://127.0.0.1:{port}"
        tls = os.path.join(data_dir, "tls")
        self.ssl = ssl.create_default_context(cafile=os.path.join(tls, "ca.crt"))
        self.ssl.load_cert_chain(os.path.join(tls, "admin.crt"), os.path.join(tls, "admin.key"))

    def session(self, limit: int = 100) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl, limit=limit),
                                     json_serialize=lambda o: orjson.dumps(o).decode())

    async def ensure_ns(self, s: aiohttp.ClientSession, name: str) -> None:
        async with s.post(self.base + "/api/v1/namespaces", json={"metadata": {"name": name}}) as r:
            await r.read()

    async def creates(self, kind: str, clients: int, total: int, ns: str = "") -> float:
        ns = ns or f"bench-{kind}-{clients}"
        async with self.session(clients) as s:
            await self.ensure_ns(s, ns)
            counter = iter(range(total))

            def body(i: int) -> dict:
                if kind == "configmaps":
                    return {"metadata": {"name": f"cm-{i}"}, "data": {"k": "v" * 200}}
                return {"metadata": {"name": f"pod-{i}", "labels": {"app": "bench"}},
                        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}

            async def worker() -> None:
                for i in counter:
                    async with s.post(f"{self.base}/api/v1/namespaces/{ns}/{kind}", json=body(i)) as r:
                        await r.read()
                        if r.status != 201:
                            raise RuntimeError(f"create failed: {r.status} {await r.text()}")

            t = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(clients)))
            return total / (time.perf_counter() - t)

    async def get_latency(self, clients: int, per_client: int, pid: int = 0) -> tuple[float, float, float, float, float]:
        """GET and LIST p50/p99 in ms, and the server's CPU ms per request (with pid) once connected."""
        ns = "bench-configmaps-64"
        gets: list[float] = []
        lists: list[float] = []
        async with self.session(clients) as s:
            async def warm(k: int) -> None:
                async with s.get(f"{self.base}/api/v1/namespaces/{ns}/configmaps/cm-{k % 500}") as r:
                    await r.read()

            # the pool's connections first, untimed: TLS handshakes are not GET latency
            await asyncio.gather(*(warm(k) for k in range(clients)))
            cpu = cpu_seconds(pid) if pid else 0.0

            async def worker(k: int) -> None:
                for i in range(per_client):
                    t = time.perf_counter()
                    async with s.get(f"{self.base}/api/v1/namespaces/{ns}/configmaps/cm-{(k * 31 + i) % 500}") as r:
                        await r.read()
                    gets.append(time.perf_counter() - t)
                    if i % 10 == 0:
                        t = time.perf_counter()
                        async with s.get(f"{self.base}/api/v1/namespaces/{ns}/configmaps?limit=50") as r:
                            await r.read()
                        lists.append(time.perf_counter() - t)

            await asyncio.gather(*(worker(k) for k in range(clients)))
            cpu = (cpu_seconds(pid) - cpu) / (len(gets) + len(lists)) * 1e3 if pid else float("nan")
        return pct(gets, 50) * 1e3, pct(gets, 99) * 1e3, pct(lists, 50) * 1e3, pct(lists, 99) * 1e3, cpu

    async def list_pods(self, ns: str) -> tuple[float, int]:
        async with self.session() as s:
            times = []
            n = 0
            for _ in range(3):
                t = time.perf_counter()
                async with s.get(f"{self.base}/api/v1/namespaces/{ns}/pods") as r:
                    data = orjson.loads(await r.read())
                times.append(time.perf_counter() - t)
                n = len(data["items"])
            return min(times) * 1e3, n

    async def watch_latency(self, watchers: int, events: int) -> tuple[float, float]:
        ns = f"bench-watch-{watchers}"
        latencies: list[float] = []
        sent: dict[str, float] = {}
        async with self.session(watchers + 10) as s:
            await self.ensure_ns(s, ns)
            async with s.get(f"{self.base}/api/v1/namespaces/{ns}/configmaps") as r:
                rv = orjson.loads(await r.read())["metadata"]["resourceVersion"]
            ready = 0
            done = asyncio.Event()
            got = [0] * watchers

            async def watcher(k: int) -> None:
                nonlocal ready
                url = f"{self.base}/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion={rv}"
                async with s.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as r:
                    ready += 1
                    async for line in r.content:
                        ev = orjson.loads(line)
                        name = ev["object"]["metadata"]["name"]
                        if name not in sent:  # e.g. kube-root-ca.crt, published into every new namespace
                            continue
                        latencies.append(time.perf_counter() - sent[name])
                        got[k] += 1
                        if got[k] >= events:
                            break
                if all(g >= events for g in got):
                    done.set()

            tasks = [asyncio.create_task(watcher(k)) for k in range(watchers)]
            while ready < watchers:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)
            for i in range(events):
                name = f"w-{i}"
                sent[name] = time.perf_counter()
                async with s.post(f"{self.base}/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": name}}) as r:
                    await r.read()
                await asyncio.sleep(0.02)
            try:
                await asyncio.wait_for(done.wait(), 60)
            finally:
                for t in tasks:
                    t.cancel()
        return pct(latencies, 50) * 1e3, pct(latencies, 99) * 1e3


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process: steadier than wall time on a shared machine."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, busy: float = 0.1, limit: float = 180.0) -> float:
    """Wait until the server uses under `busy` of a core over a second (the scheduler has finished
    its first attempt at every unschedulable pod, and its events are written); seconds waited."""
    t = time.perf_counter()
    while time.perf_counter() - t < limit:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < busy:
            break
    return time.perf_counter() - t


def start_cluster(data_dir: str, port: int) -> tuple[float, int]:
    kc = os.path.join(data_dir, "kubeconfig")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kubelite", "up", "--data-dir", data_dir, "--port", str(port),
                    "--kubeconfig", kc, "--simulated-nodes", "0"], check=True, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t
    with open(os.path.join(data_dir, "kubelite.pid")) as f:
        pid = int(f.read().strip())
    return elapsed, pid


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller counts")
    args = ap.parse_args()
    scale = 0.2 if args.quick else 1.0
    from store import raw_sqlite_upsert_rate  # bench/store.py

    data_dir = tempfile.mkdtemp(prefix="kubelite-bench-")
    port = free_port()
    try:
        up_s, pid = start_cluster(data_dir, port)
        time.sleep(1.0)
        idle = rss_mb(pid)
        b = Bench(data_dir, port)
        print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
        print(f"kubelite up -> ready:          {up_s * 1000:7.0f} ms   (target < 1500 ms)")
        print(f"idle RSS of the server:        {idle:7.1f} MB   (target < 120 MB)")
        raw = raw_sqlite_upsert_rate(os.path.join(data_dir, "raw.db"))
        print(f"raw SQLite upserts/s (WAL, synchronous=NORMAL, 1 KB, one commit each): {raw:8.0f}")
        rates = {}
        for kind in ("configmaps", "pods"):
            for clients in (1, 8, 64):
                total = int((300 if clients == 1 else 2000) * scale) or 50
                cpu = cpu_seconds(pid)
                rate = asyncio.run(b.creates(kind, clients, total))
                cpu = (cpu_seconds(pid) - cpu) / total * 1e3
                rates[(kind, clients)] = rate
                print(f"creates/s {kind:10s} {clients:3d} clients: {rate:7.0f}   (ratio to raw SQLite {rate / raw:5.2f}; "
                      f"server CPU {cpu:.2f} ms per create, TLS handshakes included)")
        print(f"  target >= 2000 creates/s at 64 clients: configmaps at {rates[('configmaps', 64)] / 2000:.2f}x")
        g50, g99, l50, l99, cpu = asyncio.run(b.get_latency(64, int(100 * scale) or 20, pid))
        print(f"GET  p50/p99 at 64 clients:    {g50:6.2f} / {g99:6.2f} ms   (target p99 < 10 ms; "
              f"server CPU {cpu:.2f} ms per GET or LIST)")
        print(f"LIST(limit=50) p50/p99 at 64:  {l50:6.2f} / {l99:6.2f} ms")
        asyncio.run(b.creates("pods", 64, int(10000 * scale), ns="bench-list"))
        ms, n = asyncio.run(b.list_pods("bench-list"))
        print(f"LIST of {n} pods:            {ms:7.0f} ms")
        # the 10,000 pods have no node: the scheduler's first attempts and their events keep the
        # server busy for a while, which would be measured as watch latency
        print(f"server settled after:          {settle(pid):7.1f} s")
        for watchers in (1, 100, 1000):
            w = max(1, int(watchers * scale)) if watchers > 1 else 1
            p50, p99 = asyncio.run(b.watch_latency(w, 20))
            print(f"watch delivery {w:5d} watchers p50/p99: {p50:6.1f} / {p99:6.1f} ms   (target p99 < 50 ms at 1000)")
        print(f"RSS after the run:             {rss_mb(pid):7.1f} MB")
    finally:
        subprocess.run([sys.executable, "-m", "kubelite", "down", "--data-dir", data_dir], stdout=subprocess.DEVNULL)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
