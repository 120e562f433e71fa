"""Service proxy figures: sync time for a large ruleset, and end-to-end service reachability.

1. sync: 1,000 services x 10 endpoints from synthetic objects (no pods), rule generation plus one
   `iptables-restore --noflush`, inside a private network namespace (`ip netns add`) so the host's
   tables are untouched: the first sync (creating ~11,000 chains) and a steady-state resync after one
   endpoint changed, as kube-proxy's iptables mode does it; then the same three syncs in nftables
   mode (`--proxy-mode nftables`: one `nft -f` transaction). Target: < 2 s. Each row also gives the
   CPU seconds spent (ours plus iptables-restore's or nft's), which a loaded machine does not inflate.
   The anchor, with iptables-nft: the same input restored as upstream kube-proxy's iptables mode
   sends it (without the whole-table listing `kubelite/proxy/iptables.py` adds), checked to give
   identical tables.
2. e2e (a real node: `kubelite server --kubelet`): time from a Service's creation to the first
   successful HTTP request through its ClusterIP, and through its DNS name (resolved at the cluster
   DNS service IP); time from a pod turning not-ready (readiness file removed) to the proxy no longer
   sending it traffic, split into the probe's part (EndpointSlice says not ready) and the proxy's.
   Target: reachable in < 1 s.

Usage: sudo python bench/services.py [--services 1000] [--endpoints 10] [--rounds 5] [--sync-only]
                                    [--mode iptables|nftables|both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

BUSYBOX = "localhost/busybox:1"


# ------------------------------------------------------------------------------------ sync bench
def cpu() -> float:
    """CPU seconds of this process and its reaped children (iptables-restore, nft): a figure that
    stays meaningful on a shared, loaded machine, where wall time mostly measures the others."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def synthetic(n_services: int, n_endpoints: int) -> tuple[list[dict], list[dict]]:
    services, slices = [], []
    for i in range(n_services):
        name = f"svc-{i}"
        services.append({"metadata": {"name": name, "namespace": "bench"},
                         "spec": {"type": "NodePort" if i % 10 == 0 else "ClusterIP",
                                  "clusterIP": f"10.43.{i // 250}.{i % 250 + 1}",
                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                             "nodePort": 30000 + i if i % 10 == 0 else None}]}})
        slices.append({"metadata": {"name": f"{name}-x", "namespace": "bench",
                                    "labels": {"kubernetes.io/service-name": name}},
                       "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                       "endpoints": [{"addresses": [f"10.42.{(i * n_endpoints + j) // 250 % 250}."
                                                    f"{(i * n_endpoints + j) % 250 + 1}"],
                                      "nodeName": "bench", "conditions": {"ready": True}}
                                     for j in range(n_endpoints)]})
    return services, slices


SYNC_LABELS = ("first (full) sync, creates every chain", "partial sync, one endpoint changed",
               "full resync, one endpoint changed")


async def _three_syncs(n_services: int, n_endpoints: int, build: Any, load: Any) -> list[tuple]:
    """The proxier's three syncs: a first full one, a partial one and a full resync, one endpoint
    flipped between them. `build(smap, unchanged)` makes the rule set, `load(rs)` hands it to the kernel.
    Each figure: (label, service map s, rules s, load s, total s, rule set, cpu s)."""
    from kubelite.proxy import rules
    from kubelite.proxy.servicemap import build_service_map

    services, slices = synthetic(n_services, n_endpoints)
    figures = []
    written: dict[str, str] = {}
    for label in SYNC_LABELS:
        c0, t0 = cpu(), time.perf_counter()
        smap = build_service_map(services, slices)
        t1 = time.perf_counter()
        # as the proxier: chains of service ports whose inputs did not change are left alone
        now = {rules.service_port_key(sp): repr(sp) for sp in smap}
        unchanged = {k for k, v in now.items() if written.get(k) == v} if label.startswith("partial") else set()
        written = now
        rs = build(smap, unchanged)
        t2 = time.perf_counter()
        await load(rs)
        t3 = time.perf_counter()
        figures.append((label, t1 - t0, t2 - t1, t3 - t2, t3 - t0, rs, cpu() - c0))
        slices[0]["endpoints"][0]["conditions"] = {"ready": not slices[0]["endpoints"][0]["conditions"]["ready"]}
    return figures


def _print_syncs(figures: list[tuple], load_column: str) -> None:
    print(f"{'':40}{'service map':>12}{'rules':>9}{load_column:>9}{'total':>9}{'/2s':>7}{'cpu s':>7}")
    for label, a, b, c, total, _, c_cpu in figures:
        print(f"{label:40}{a:12.3f}{b:9.3f}{c:9.3f}{total:9.3f}{total / 2.0:7.2f}{c_cpu:7.2f}")


async def sync_bench(n_services: int, n_endpoints: int, backend: str = "") -> dict[str, float]:
    from kubelite.proxy import rules
    from kubelite.proxy.iptables import IPTables

    netns = f"klbench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        ipt = IPTables(netns, backend)
        ctx = rules.NodeContext("bench", "10.42.0.0/16", "10.43.0.0/16")
        existing: tuple[set[str], set[str]] = (set(), set())

        async def load(rs: Any) -> None:
            nonlocal existing
            await ipt.restore(rs.text)
            existing = (rs.nat_chains, rs.filter_chains)

        figures = await _three_syncs(
            n_services, n_endpoints, lambda smap, unchanged: rules.build(smap, ctx, *existing, unchanged=unchanged),
            load)
        first = figures[0][5]
        print(f"\nsync ({ipt.restore_cmd}): {n_services} services x {n_endpoints} endpoints, "
              f"{len(first.nat_chains)} nat chains, {first.rule_count} rules, "
              f"{len(first.text) / 1e6:.1f} MB of restore input")
        _print_syncs(figures, "restore")
        saved = _save(netns, ipt.save_cmd)
        print(f"rules in the namespace's nat table after the syncs: {saved.count(chr(10) + '-A ')}")
        if await ipt.is_nft():
            await _upstream_anchor(ipt.restore_cmd, ipt.save_cmd, figures[-1][5].text, saved)
        t0 = time.perf_counter()
        await ipt.remove_all(ctx.names, rules.jumps(ctx.names))
        print(f"removing every chain (proxy stop): {time.perf_counter() - t0:.3f} s")
        return {f[0]: (f[4], f[6]) for f in figures}
    finally:
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True)


def _save(netns: str, save_cmd: str) -> str:
    """The namespace's nat and filter tables, without the comment lines iptables-save dates."""
    out = subprocess.run(["ip", "netns", "exec", netns, save_cmd], capture_output=True, text=True).stdout
    return "".join(line for line in out.splitlines(True) if not line.startswith("#"))


async def _upstream_anchor(restore_cmd: str, save_cmd: str, text: str, expected: str) -> None:
    """The anchor: the last sync's input restored as upstream kube-proxy sends it (the same
    `iptables-restore --noflush`, without our whole-table listing) into a fresh namespace; the
    tables must come out the same as ours."""
    from kubelite.proxy.iptables import run

    netns = f"klbench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        c0, t0 = cpu(), time.perf_counter()
        rc, _, err = await run(["ip", "netns", "exec", netns, restore_cmd, "-w", "5", "--noflush"], text)
        wall, used = time.perf_counter() - t0, cpu() - c0
        same = rc == 0 and _save(netns, save_cmd) == expected
        print(f"as upstream kube-proxy restores it (no listing), same input into an empty table: {wall:.3f} s, "
              f"cpu {used:.2f} s; resulting tables identical to ours: {'yes' if same else 'NO ' + err.strip()}")
    finally:
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True)


async def sync_bench_nft(n_services: int, n_endpoints: int) -> dict[str, float]:
    """The same three syncs in nftables mode (one `nft -f` transaction each), as the proxier does them."""
    from kubelite.proxy import nftables, rules

    netns = f"klbench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        nft = nftables.NFTables("kube-proxy", netns)
        ctx = rules.NodeContext("bench", "10.42.0.0/16", "10.43.0.0/16")
        objects: tuple[set[str], set[str]] = (set(), set())
        stale: set[str] = set()

        def build(smap: Any, unchanged: set[str]) -> Any:
            nonlocal stale
            rs, stale = nftables.build(smap, ctx, nft.table, unchanged, *objects)
            return rs

        async def load(rs: Any) -> None:
            nonlocal objects
            await nft.apply(rs.text)
            objects = (rs.chains | stale, rs.sets)

        figures = await _three_syncs(n_services, n_endpoints, build, load)
        first = figures[0][5]
        print(f"\nsync (nft -f, --proxy-mode=nftables): {n_services} services x {n_endpoints} endpoints, "
              f"{len(first.chains)} service chains, {first.rule_count} rules + {first.element_count} map elements, "
              f"{len(first.text) / 1e6:.1f} MB of nft input")
        _print_syncs(figures, "nft -f")
        t0 = time.perf_counter()
        await nft.remove_all()
        print(f"removing the table (proxy stop): {time.perf_counter() - t0:.3f} s")
        return {f[0]: (f[4], f[6]) for f in figures}
    finally:
        subprocess.run(["ip", "netns", "delete", netns], capture_output=True)


# ------------------------------------------------------------------------------------ e2e bench
async def http_get(ip: str, port: int, timeout: float = 0.5) -> str | None:
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout)
        w.write(b"GET / HTTP/1.0\r\n\r\n")
        data = await asyncio.wait_for(r.read(), timeout)
        w.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return body.decode().strip() if head.startswith(b"HTTP/1.") and b" 200 " in head else None
    except (TimeoutError, OSError):
        return None


async def dns_a(server: str, name: str, timeout: float = 0.3) -> str | None:
    from dnslib import QTYPE, DNSRecord

    loop = asyncio.get_running_loop()
    q = DNSRecord.question(name, "A").pack()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (server, 53))
        await loop.sock_sendall(sock, q)
        data = await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout)
        for rr in DNSRecord.parse(data).rr:
            if rr.rtype == QTYPE.A:
                return str(rr.rdata)
    except (TimeoutError, OSError):
        return None
    finally:
        sock.close()
    return None


async def until(fn, interval: float = 0.01, timeout: float = 30.0):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        v = await fn()
        if v:
            return v
        await asyncio.sleep(interval)
    return None


async def e2e(data_dir: str, dns_ip: str, rounds: int) -> None:
    from kubelite.client import Client

    client = Client.from_kubeconfig(os.path.join(data_dir, "kubeconfig"))
    ns = "bench"
    try:
        await client.namespaces.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        serve = "touch /tmp/ready; mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8888 -h /www"
        await client.deployments.create({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "web", "image": BUSYBOX, "command": ["sh", "-c", serve],
                                         "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]},
                                                            "periodSeconds": 1, "failureThreshold": 1}}]}}}},
            namespace=ns)

        async def two_ready():
            pods = (await client.pods.list(ns, label_selector="app=web"))["items"]
            ok = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in (p.get("status") or {}).get("conditions") or [])]
            return ok if len(ok) == 2 else None
        pods = await until(two_ready, 0.2, 120)
        assert pods, "pods never ready"

        by_ip, by_name = [], []
        for i in range(rounds):
            name = f"svc-{i}"
            t0 = time.perf_counter()
            svc = await client.services.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                                                "spec": {"selector": {"app": "web"},
                                                         "ports": [{"port": 80, "targetPort": 8888}]}}, namespace=ns)
            ip = svc["spec"]["clusterIP"]

            async def via_ip(ip=ip, t0=t0):
                ok = await until(lambda: http_get(ip, 80))
                return time.perf_counter() - t0 if ok else float("nan")

            async def via_name(name=name, t0=t0):
                async def resolved_and_served():
                    addr = await dns_a(dns_ip, f"{name}.{ns}.svc.cluster.local")
                    return addr and await http_get(addr, 80)
                ok = await until(resolved_and_served)
                return time.perf_counter() - t0 if ok else float("nan")
            a, b = await asyncio.gather(via_ip(), via_name())
            by_ip.append(a)
            by_name.append(b)

        print(f"\ne2e: {rounds} services, each created then polled every 10 ms from the host")
        print(f"{'':44}{'median':>9}{'max':>9}")
        print(f"{'Service created -> first request via ClusterIP':44}{statistics.median(by_ip):9.3f}{max(by_ip):9.3f}")
        print(f"{'Service created -> first request via DNS name':44}{statistics.median(by_name):9.3f}"
              f"{max(by_name):9.3f}")
        print(f"ratio to the 1 s target (median, ClusterIP / DNS): {statistics.median(by_ip):.2f} / "
              f"{statistics.median(by_name):.2f}")

        # not-ready -> out of rotation
        ip = (await client.services.get("svc-0", namespace=ns))["spec"]["clusterIP"]
        victim = pods[0]["metadata"]["name"]
        victim_ip = pods[0]["status"]["podIP"]
        t0 = time.perf_counter()
        subprocess.run(["kubectl", "--kubeconfig", os.path.join(data_dir, "kubeconfig"), "exec", "-n", ns, victim,
                        "--", "rm", "/tmp/ready"], check=True, capture_output=True)
        t_rm = time.perf_counter() - t0
        slice_at: list[float] = []

        async def watch_slice():
            while not slice_at:
                items = (await client.endpointslices.list(ns, label_selector="kubernetes.io/service-name=svc-0"))
                for s in items["items"]:
                    for ep in s.get("endpoints") or []:
                        if victim_ip in ep["addresses"] and (ep.get("conditions") or {}).get("ready") is False:
                            slice_at.append(time.perf_counter() - t0)
                await asyncio.sleep(0.02)
        wt = asyncio.get_running_loop().create_task(watch_slice())
        last_victim = 0.0
        streak = 0
        deadline = time.perf_counter() + 30
        while streak < 40 and time.perf_counter() < deadline:
            body = await http_get(ip, 80)
            if body == victim:
                last_victim = time.perf_counter() - t0
                streak = 0
            elif body:
                streak += 1
            await asyncio.sleep(0.005)
        await asyncio.wait_for(wt, 10)
        print(f"\nnot-ready (kubectl exec rm took {t_rm:.3f} s) -> EndpointSlice not ready: {slice_at[0]:.3f} s "
              f"(readiness probe every 1 s)")
        print(f"not-ready -> last request served by the pod: {last_victim:.3f} s; "
              f"proxy's share (slice -> last request): {max(0.0, last_victim - slice_at[0]):.3f} s")
        await client.namespaces.delete(ns)
    finally:
        await client.close()


def run_e2e(rounds: int, mode: str) -> None:
    from realnode import node_server  # bench/realnode.py

    print(f"\n--proxy-mode={mode}")
    with node_server(["--proxy-mode", mode]) as node:
        prefix = node.flag("--proxy-chain-prefix")
        asyncio.run(e2e(node.data_dir, node.flag("--service-cidr").rsplit(".", 1)[0] + ".10", rounds))
    left = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout.count(f"{prefix}-")
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    left += tables.count(f"{prefix.lower()}-proxy")
    print(f"iptables lines and nftables tables left by the proxy after stop: {left}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sync-only", action="store_true")
    ap.add_argument("--mode", choices=("iptables", "nftables", "both"), default="both",
                    help="proxy mode(s) to measure")
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("iptables-restore"):
        print("needs root and iptables")
        return 2
    modes = ("iptables", "nftables") if args.mode == "both" else (args.mode,)
    results: dict[str, dict[str, tuple[float, float]]] = {}
    if "iptables" in modes:
        results["iptables"] = asyncio.run(sync_bench(args.services, args.endpoints))
        if shutil.which("iptables-legacy-restore"):
            legacy = asyncio.run(sync_bench(args.services, args.endpoints, "legacy"))
            for label, (t, _) in results["iptables"].items():
                print(f"ratio host iptables / iptables-legacy, {label}: {t / legacy[label][0]:.1f}x")
    if "nftables" in modes and shutil.which("nft"):
        results["nftables"] = asyncio.run(sync_bench_nft(args.services, args.endpoints))
    print(f"\nsummary, {args.services} services x {args.endpoints} endpoints (target < 2 s; ratio = time / 2 s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
    for mode, figs in results.items():
        for label, (t, c) in figs.items():
            print(f"  {mode:9} {label:40} {t:7.3f} s  {t / 2.0:5.2f}   cpu {c:6.2f} s  {c / 2.0:5.2f}")
    if not args.sync_only:
        for mode in modes:
            run_e2e(args.rounds, mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
