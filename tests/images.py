"""Local test images and a real-node cluster for the kubelet tests (no registry is reachable).

`build_images(dir)` writes busybox (`localhost/busybox:1`) and pause tarballs from the host's
busybox-static. `NodeCluster` starts kubelite with `--kubelet` (a private containerd, its own
bridge and pod CIDR so clusters never collide) and, on teardown, removes every sandbox (CNI DEL
releases the IPs and iptables rules), stops containerd and deletes the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

BUSYBOX = "localhost/busybox:1"


def build_images(directory: str) -> dict[str, str]:
    from kubelite.runtime import images

    os.makedirs(directory, exist_ok=True)
    layer = images.busybox_layer()
    bb = images.build_busybox_image(os.path.join(directory, "busybox.tar"), BUSYBOX, ["/bin/sh"], layer=layer)
    pause = images.build_busybox_image(os.path.join(directory, "pause.tar"), images.PAUSE_IMAGE,
                                       ["/bin/sleep", "2147483647"], layer=layer)
    return {BUSYBOX: bb, images.PAUSE_IMAGE: pause}


def skip_unless_node_possible() -> None:
    """pytest.skip with the reason when this host cannot run a real node."""
    if sys.platform != "linux":
        pytest.skip("the kubelet needs Linux")
    if os.geteuid() != 0:
        pytest.skip("the kubelet needs root")
    from kubelite.runtime.requirements import missing_requirements

    problems = missing_requirements("/usr/lib/cni")
    if problems:
        pytest.skip("; ".join(problems))
    try:
        from kubelite.runtime.images import find_busybox

        find_busybox()
    except Exception as e:
        pytest.skip(str(e))


def node_args(tag: str) -> list[str]:
    """Flags for a cluster with a real node of its own: bridge, pod CIDR, service CIDR, node name and
    service proxy chains (clusters running side by side on one host must not share any of them)."""
    octet = random.randint(100, 250)
    return ["--kubelet", "--kubelet-port", "0", "--cni-bridge", f"klt{tag}", "--cluster-cidr",
            f"10.{octet}.0.0/16", "--node-name", f"node-{tag}", "--service-cidr", f"10.43.{octet}.0/24",
            "--proxy-chain-prefix", f"K{octet}"]


def wait_node_ready(cluster, name: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = cluster.kubectl("get", "node", name, "-o", "json", check=False)
        if r.returncode == 0:
            conds = {c["type"]: c["status"] for c in json.loads(r.stdout)["status"].get("conditions") or []}
            if conds.get("Ready") == "True":
                return
        time.sleep(0.3)
    raise AssertionError(f"node {name} not Ready after {timeout}s:\n{cluster.log_tail()}")


def import_images(cluster, files: list[str]) -> None:
    for f in files:
        r = subprocess.run([sys.executable, "-m", "kubelite", "images", "import", "--data-dir", cluster.data_dir, f],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


@contextlib.contextmanager
def real_node(tmp_path_factory: pytest.TempPathFactory,
              extra_images: Callable[[str], list[str]] | None = None,
              extra_args: list[str] | None = None) -> Iterator[Any]:
    """A started cluster with a real node of its own (`node_name`, `node_args` plus `extra_args`), the
    busybox image and `extra_images(image_dir)` imported; stopped and cleaned up on exit. Skips when
    the host cannot."""
    from tests.conftest import _make_cluster

    skip_unless_node_possible()
    tag = uuid.uuid4().hex[:6]
    args = node_args(tag) + list(extra_args or [])
    c = _make_cluster(tmp_path_factory, args)
    c.node_name, c.node_args = f"node-{tag}", args  # type: ignore[attr-defined]
    image_dir = str(tmp_path_factory.mktemp("images"))
    tars = [build_images(image_dir)[BUSYBOX], *(extra_images(image_dir) if extra_images else [])]
    c.start(timeout=60)
    try:
        wait_node_ready(c, c.node_name)  # type: ignore[attr-defined]
        import_images(c, tars)
        yield c
    finally:
        teardown_node(c, f"klt{tag}")


@contextlib.contextmanager
def node_namespace(node: Any, prefix: str) -> Iterator[str]:
    """A fresh namespace on a real-node cluster; its pods are deleted quickly afterwards."""
    name = prefix + uuid.uuid4().hex[:8]
    node.kubectl("create", "namespace", name)
    yield name
    node.kubectl("delete", "pods", "--all", "-n", name, "--grace-period=1", "--wait=false", check=False)


def teardown_node(cluster, bridge: str) -> None:
    """Stop the cluster, then remove every pod sandbox with a short-lived containerd, and the bridge."""
    cluster.kubectl("delete", "pods", "--all", "-A", "--force", "--grace-period=0", "--wait=false",
                    check=False, timeout=30)
    cluster.stop()
    config = os.path.join(cluster.data_dir, "containerd", "config.toml")
    from kubelite.runtime.cri.containerd import ContainerdPaths

    sock = ContainerdPaths(os.path.join(cluster.data_dir, "containerd")).socket
    if os.path.exists(config) and shutil.which("containerd"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sock)
        proc = subprocess.Popen(["containerd", "--config", config], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            from kubelite.kubelet.cleanup import remove_all_pods
            from kubelite.runtime.cri import RuntimeClient

            async def wait_and_clean() -> None:
                deadline = time.time() + 30
                while True:
                    rt = RuntimeClient("unix://" + sock, timeout=2)
                    try:
                        await rt.version(timeout=2)
                        break
                    except Exception:
                        if time.time() > deadline:
                            raise
                        await asyncio.sleep(0.1)
                    finally:
                        await rt.close()
                for _ in range(3):  # until nothing is left
                    if await remove_all_pods("unix://" + sock) == 0:
                        return

            try:
                asyncio.run(wait_and_clean())
            except Exception as e:  # leave a trace: leaked sandboxes keep IPs and iptables rules
                print(f"kubelet test teardown: removing sandboxes failed: {e!r}", file=sys.stderr)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    from kubelite.kubelet import cni

    cni.delete_bridge(bridge)  # and the node's masquerade rules
    # containerd's own mounts (overlay snapshots, shm) go away with the sandboxes; unmount leftovers
    root = os.path.realpath(cluster.data_dir)
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f if root in line.split()[1]]
    for m in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
