"""A `kubelite server --kubelet` for the node benches: started with flags of its own, Ready, the local
busybox image imported; stopped and cleaned up afterwards (the tests' teardown_node)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class NodeServer:
    data_dir: str
    port: int
    args: list[str]  # the node flags (tests.images.node_args)
    node_name: str
    proc: subprocess.Popen

    @property
    def kubeconfig(self) -> str:
        return os.path.join(self.data_dir, "kubeconfig")

    def flag(self, name: str) -> str:
        return self.args[self.args.index(name) + 1]

    def kubectl(self, *a: str, **_kw) -> subprocess.CompletedProcess:
        return subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, *a], capture_output=True, text=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def ready(self) -> bool:
        r = subprocess.run([sys.executable, "-m", "kubelite", "kubeconfig", "--data-dir", self.data_dir],
                           capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout:
            return False
        with open(self.kubeconfig, "w") as f:
            f.write(r.stdout)
        n = self.kubectl("get", "node", self.node_name, "-o", "json")
        return n.returncode == 0 and any(x["type"] == "Ready" and x["status"] == "True"
                                         for x in (json.loads(n.stdout).get("status") or {}).get("conditions") or [])


@contextlib.contextmanager
def node_server(extra_args: list[str] | None = None) -> Iterator[NodeServer]:
    from tests.images import BUSYBOX, build_images, node_args, teardown_node

    data_dir = tempfile.mkdtemp(prefix="kubelite-bench-")
    tag = uuid.uuid4().hex[:6]
    args = node_args(tag) + list(extra_args or [])
    log = open(os.path.join(data_dir, "server.log"), "ab")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kubelite", "server", "--data-dir", data_dir, "--port", str(port),
                             *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    node = NodeServer(data_dir, port, args, f"node-{tag}", proc)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not node.ready():
            time.sleep(0.3)
        files = build_images(os.path.join(data_dir, "images"))
        r = subprocess.run([sys.executable, "-m", "kubelite", "images", "import", "--data-dir", data_dir,
                            files[BUSYBOX]], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"importing the busybox image: {r.stderr.strip()} (server log: {data_dir}/server.log)")
        yield node
    finally:
        teardown_node(node, node.flag("--cni-bridge"))
        log.close()
        with open("/proc/self/mounts") as f:
            mounted = any(data_dir in line for line in f)
        if not mounted:
            shutil.rmtree(data_dir, ignore_errors=True)
