"""Restart safety: given a node running a pod, when kubelite (API server, kubelet and its
containerd) restarts, then the kubelet adopts the running sandbox and container by their CRI
labels instead of recreating them: same container ID, same IP, no restart counted."""

from __future__ import annotations

import json
import time

import pytest

from tests.images import BUSYBOX, real_node, wait_node_ready

pytestmark = [pytest.mark.root, pytest.mark.containerd]


def _pod(c, name: str) -> dict:
    return json.loads(c.kubectl("get", "pod", name, "-o", "json").stdout)


def _wait_running(c, name: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = c.kubectl("get", "pod", name, "-o", "json", check=False)
        if r.returncode == 0:
            p = json.loads(r.stdout)
            css = p.get("status", {}).get("containerStatuses") or []
            if p["status"].get("phase") == "Running" and css and "running" in css[0]["state"]:
                return p
        time.sleep(0.25)
    raise AssertionError(f"{name} not Running:\n{c.log_tail()}")


def test_kubelet_restart_keeps_containers(tmp_path_factory: pytest.TempPathFactory):
    with real_node(tmp_path_factory) as c:
        c.kubectl("run", "keeper", f"--image={BUSYBOX}", "--", "sleep", "3600")
        before = _wait_running(c, "keeper")
        cs_before = before["status"]["containerStatuses"][0]
        c.stop()
        c.start(timeout=60)
        wait_node_ready(c, c.node_name)
        time.sleep(3)  # a few PLEG relists and syncs
        after = _wait_running(c, "keeper")
        cs_after = after["status"]["containerStatuses"][0]
        assert cs_after["containerID"] == cs_before["containerID"]
        assert cs_after["restartCount"] == 0
        assert after["status"]["podIP"] == before["status"]["podIP"]
        assert c.kubectl("exec", "keeper", "--", "hostname").stdout.strip() == "keeper"
