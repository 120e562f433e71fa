"""Cluster DNS benchmark: queries/s and latency under load, beside dnslib's own server on a static zone.

Run: python bench/dns.py [--seconds 3] [--concurrency 32] [--rate 5000] [--churn 20]
Starts a real `kubelite server`, creates services (ClusterIP and headless with endpoints), then a
second process loads the DNS server over UDP:
  closed loop   `concurrency` queries in flight, as fast as answers come (max q/s, p50/p99);
  open loop     a fixed `rate` of queries/s (p99 at the target load);
  unique names  every query a different pod name, so none is answered from the packed-answer memo;
  churn         the closed and the open loop while another service changes `--churn` times a second
                (as EndpointSlices do in a busy cluster): what an answer memo invalidated on change
                costs, and the API server's work on those writes, which shares the process.
The same loads run against dnslib's DNSServer (threaded, ZoneResolver) serving the same names from
a static zone. Targets: >= 5,000 q/s, p99 < 5 ms. Nothing here asserts: figures go into the notes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from dnslib import QTYPE, RCODE, DNSRecord

HERE = os.path.dirname(os.path.abspath(__file__))
N_SERVICES = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux): the server's own cost per query, which a loaded machine
    does not distort the way it distorts q/s and latency."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# ------------------------------------------------------------------------------------------------
# the load generator (runs in its own process)


def query_set(kind: str) -> list[tuple[str, str]]:
    if kind == "unique":
        return []
    names = [(f"svc{i}.bench.svc.cluster.local", "A") for i in range(N_SERVICES)]
    names += [("hl.bench.svc.cluster.local", "A"), ("_http._tcp.svc1.bench.svc.cluster.local", "SRV"),
              ("missing.bench.svc.cluster.local", "A")]
    return names


class _Load(asyncio.DatagramProtocol):
    def __init__(self, packets: list[bytes], unique: bool):
        self.packets = packets
        self.unique = unique
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self.errors = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.on_answer = None
        self._n = 0

    def connection_made(self, transport):
        self.transport = transport

    def send_one(self) -> None:
        self._n += 1
        qid = self._n & 0xFFFF
        if self.unique:
            ip = f"10-{(self._n >> 16) & 255}-{(self._n >> 8) & 255}-{self._n & 255}"
            pkt = bytearray(DNSRecord.question(f"{ip}.bench.pod.cluster.local", "A").pack())
        else:
            pkt = bytearray(self.packets[self._n % len(self.packets)])
        pkt[0:2] = qid.to_bytes(2, "big")
        self.sent[qid] = time.perf_counter()
        self.transport.sendto(bytes(pkt))

    def datagram_received(self, data, addr):
        t = self.sent.pop(int.from_bytes(data[:2], "big"), None)
        if t is None:
            return
        self.latencies.append(time.perf_counter() - t)
        if data[3] & 0x0F not in (RCODE.NOERROR, RCODE.NXDOMAIN):
            self.errors += 1
        if self.on_answer:
            self.on_answer()


async def run_load(host: str, port: int, mode: str, seconds: float, concurrency: int, rate: int,
                   names: str) -> dict:
    loop = asyncio.get_running_loop()
    packets = [DNSRecord.question(n, t).pack() for n, t in query_set(names)]
    transport, proto = await loop.create_datagram_endpoint(lambda: _Load(packets, names == "unique"),
                                                           remote_addr=(host, port))
    # a large receive buffer: answers that arrive while this process waits for a CPU must not be
    # dropped here and counted against the server
    sock = transport.get_extra_info("socket")
    for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        try:
            if opt is not None:
                sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
                break
        except OSError:
            continue
    # warm up (fills the answer memo, like a steady state of repeated lookups)
    for _ in range(3):
        for _ in range(len(packets) or 1):
            proto.send_one()
        await asyncio.sleep(0.05)
    proto.latencies.clear()
    proto.sent.clear()
    proto.errors = 0
    start = time.perf_counter()
    stop_at = start + seconds
    if mode == "closed":
        def again():
            if time.perf_counter() < stop_at:
                proto.send_one()
        proto.on_answer = again
        for _ in range(concurrency):
            proto.send_one()
        while time.perf_counter() < stop_at:
            await asyncio.sleep(0.05)
            # a lost datagram would shrink the window: top it up
            missing = concurrency - len(proto.sent)
            for _ in range(max(0, missing)):
                proto.send_one()
    else:
        interval = 1.0 / rate
        nxt = start
        while nxt < stop_at:
            now = time.perf_counter()
            while nxt <= now:
                proto.send_one()
                nxt += interval
            await asyncio.sleep(max(0.0, min(nxt - time.perf_counter(), 0.001)))
    await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - start
    transport.close()
    lat = proto.latencies
    return {"qps": len(lat) / elapsed, "answered": len(lat), "lost": len(proto.sent), "errors": proto.errors,
            "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000}


def load(host: str, port: int, mode: str, seconds: float, concurrency: int, rate: int, names: str) -> dict:
    """Run the load from a second process and return its figures."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--loader", host, str(port), mode,
                          str(seconds), str(concurrency), str(rate), names], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout)


# ------------------------------------------------------------------------------------------------
# the servers


def start_kubelite(data_dir: str) -> tuple[subprocess.Popen, tuple[str, int], str]:
    port = free_port()
    log = open(os.path.join(data_dir, "server.log"), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "kubelite", "server", "--data-dir", data_dir, "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    addr_file = os.path.join(data_dir, "dns.addr")
    kubeconfig = os.path.join(data_dir, "kubeconfig")
    deadline = time.time() + 60
    while time.time() < deadline:
        if os.path.exists(addr_file):
            host, p = open(addr_file).read().strip().rsplit(":", 1)
            r = subprocess.run([sys.executable, "-m", "kubelite", "kubeconfig", "--data-dir", data_dir],
                               capture_output=True, text=True)
            if r.returncode == 0 and r.stdout.strip():
                with open(kubeconfig, "w") as f:
                    f.write(r.stdout)
                ok = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "--raw", "/readyz"],
                                    capture_output=True, text=True)
                if ok.stdout.strip() == "ok":
                    return proc, (host, int(p)), kubeconfig
        time.sleep(0.2)
    raise RuntimeError("kubelite did not start")


def populate(kubeconfig: str) -> None:
    items = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}]
    items += [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc{i}", "namespace": "bench"},
               "spec": {"selector": {"app": f"a{i}"}, "ports": [{"name": "http", "port": 80}]}}
              for i in range(N_SERVICES)]
    items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hl", "namespace": "bench"},
                  "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}})
    items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "churn", "namespace": "bench"},
                  "spec": {"selector": {"app": "churn"}, "ports": [{"name": "http", "port": 80}]}})
    items.append({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "hl", "namespace": "bench"},
                  "subsets": [{"addresses": [{"ip": f"10.42.0.{i}"} for i in range(1, 6)],
                               "ports": [{"name": "http", "port": 80}]}]})
    for batch in (items[:1], items[1:]):
        r = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "apply", "--validate=false", "-f", "-"],
                           capture_output=True,
                           input=json.dumps({"apiVersion": "v1", "kind": "List", "items": batch}), text=True)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)


def churn(kubeconfig: str, per_second: float, stop: threading.Event,
          ready: threading.Event | None = None) -> int:
    """Patch the `churn` service's annotation `per_second` times a second until `stop`; the count.
    `ready` is set once the client is built and its first patch is done (importing the client and
    its first connection take a second or more, which must not eat into the measured run)."""
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    api.patch_namespaced_service("churn", "bench", {"metadata": {"annotations": {"n": "warm"}}})
    if ready is not None:
        ready.set()
    n = 0
    nxt = time.perf_counter()
    while not stop.is_set():
        api.patch_namespaced_service("churn", "bench", {"metadata": {"annotations": {"n": str(n)}}})
        n += 1
        nxt += 1.0 / per_second
        stop.wait(max(0.0, nxt - time.perf_counter()))
    return n


def wait_resolves(addr: tuple[str, int], name: str, count: int = 1) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            r = DNSRecord.parse(DNSRecord.question(name, "A").send(addr[0], addr[1], timeout=1))
            if len([x for x in r.rr if x.rtype == QTYPE.A]) >= count:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} does not resolve")


def static_zone(addr: tuple[str, int]) -> str:
    """The same names as a zone file, answers copied from the kubelite server."""
    lines = []
    for name, qtype in query_set("repeated"):
        r = DNSRecord.parse(DNSRecord.question(name, qtype).send(addr[0], addr[1], timeout=2))
        lines += [rr.toZone() for rr in r.rr + r.ar]
    lines.append("bench.pod.cluster.local. 5 IN A 10.0.0.1")
    return "\n".join(dict.fromkeys(lines))


DNSLIB_SERVER = """
import sys, time
from dnslib.server import DNSLogger, DNSServer
from dnslib.zoneresolver import ZoneResolver
zone = open(sys.argv[1]).read()
quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data", False)
server = DNSServer(ZoneResolver(zone), address="127.0.0.1", port=int(sys.argv[2]), logger=quiet)
server.start_thread()
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--churn", type=float, default=20.0)
    args = ap.parse_args()
    data_dir = tempfile.mkdtemp(prefix="kubelite-dnsbench-")
    proc = dnslib_proc = None
    try:
        proc, addr, kubeconfig = start_kubelite(data_dir)
        populate(kubeconfig)
        wait_resolves(addr, f"svc{N_SERVICES - 1}.bench.svc.cluster.local")
        wait_resolves(addr, "hl.bench.svc.cluster.local", 5)
        zone_file = os.path.join(data_dir, "zone.txt")
        with open(zone_file, "w") as f:
            f.write(static_zone(addr))
        dport = free_port()
        dnslib_proc = subprocess.Popen([sys.executable, "-c", DNSLIB_SERVER, zone_file, str(dport)],
                                       stdout=subprocess.PIPE, text=True)
        dnslib_proc.stdout.readline()
        daddr = ("127.0.0.1", dport)
        wait_resolves(daddr, "svc1.bench.svc.cluster.local")

        runs = [("closed loop, repeated names", "closed", "repeated"),
                (f"open loop {args.rate}/s, repeated", "open", "repeated"),
                ("closed loop, unique names", "closed", "unique"),
                (f"closed loop, churn {args.churn:g}/s", "closed", "repeated"),
                (f"open loop {args.rate}/s, churn {args.churn:g}/s", "open", "repeated")]
        print(f"cluster DNS benchmark ({args.seconds:.0f}s per run, {args.concurrency} in flight in closed loop, "
              f"{N_SERVICES + 1} services)")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; 'cpu us/q': the kubelite "
              f"process's CPU time per answered query")
        print(f"{'':44s} {'kubelite q/s':>12s} {'p50 ms':>7s} {'p99 ms':>7s} {'cpu us/q':>8s}   {'dnslib q/s':>10s} "
              f"{'p50 ms':>7s} {'p99 ms':>7s}   ratio")
        for label, mode, names in runs:
            stop = threading.Event()
            changes: list[int] = []
            changer = None
            if "churn" in label:
                ready = threading.Event()
                changer = threading.Thread(target=lambda c=changes, s=stop, r=ready: c.append(
                    churn(kubeconfig, args.churn, s, r)))
                changer.start()
                ready.wait(60)
            c0 = cpu_seconds(proc.pid)
            k = load(*addr, mode, args.seconds, args.concurrency, args.rate, names)
            per_query = (cpu_seconds(proc.pid) - c0) / max(k["answered"], 1) * 1e6
            stop.set()
            if changer is not None:
                changer.join()
                # (the server's CPU includes serving those writes: compare churn rows with each other)
                label += f" ({changes[0] if changes else 0} changes)"
            d = load(*daddr, mode, args.seconds, args.concurrency, args.rate,
                     "repeated" if names == "unique" else names)
            print(f"{label:44s} {k['qps']:12,.0f} {k['p50_ms']:7.2f} {k['p99_ms']:7.2f} {per_query:8.0f}   "
                  f"{d['qps']:10,.0f} "
                  f"{d['p50_ms']:7.2f} {d['p99_ms']:7.2f}   "
                  + (f"{k['qps'] / d['qps']:5.2f}x" if d["qps"] else "    -")
                  + (f"  (lost {k['lost']}/{d['lost']})" if k["lost"] or d["lost"] else ""))
        print("targets: >= 5,000 q/s, p99 < 5 ms (dnslib serves its static zone in the unique-names row)")
    finally:
        for p in (dnslib_proc, proc):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--loader":
        h, p, mode, secs, conc, rate, names = sys.argv[2:9]
        random.seed(1)
        print(json.dumps(asyncio.run(run_load(h, int(p), mode, float(secs), int(conc), int(rate), names))))
    else:
        main()
