"""Shared helpers of the controller tests (no tests here): polling, and playing the node's part
by marking pods Ready through the status subresource, since these clusters run no kubelet."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def wait_until(fn: Callable[[], Any], timeout: float = 30, interval: float = 0.2, what: str = "") -> Any:
    """Poll fn until it returns something truthy; fail with the last value seen."""
    deadline = time.time() + timeout
    last: Any = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or fn}: last value {last!r}")


def get_json(cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def items(cluster, kind: str, ns: str, *args: str) -> list[dict]:
    return get_json(cluster, kind, "-n", ns, *args)["items"]


def apply(cluster, ns: str, manifest: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=manifest)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_ready(core, ns: str, selector: str = "", ready: bool = True) -> int:
    """Mark Pending pods Running and Ready (or Running and not Ready); returns how many were changed."""
    n = 0
    for pod in core.list_namespaced_pod(ns, label_selector=selector).items:
        if pod.metadata.deletion_timestamp or (pod.status.phase == "Running" and ready is False):
            continue
        conds = {c.type: c.status for c in pod.status.conditions or []}
        if pod.status.phase == "Running" and conds.get("Ready") == ("True" if ready else "False"):
            continue
        status = "True" if ready else "False"
        body = {"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": status, "lastTransitionTime": now()},
            {"type": "ContainersReady", "status": status, "lastTransitionTime": now()},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}]}}
        try:
            core.patch_namespaced_pod_status(pod.metadata.name, ns, body)
            n += 1
        except Exception as e:  # the pod may be gone meanwhile
            if getattr(e, "status", None) != 404:
                raise
    return n


def pods_by_image(core, ns: str, selector: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for pod in core.list_namespaced_pod(ns, label_selector=selector).items:
        if pod.metadata.deletion_timestamp:
            continue
        image = pod.spec.containers[0].image
        out[image] = out.get(image, 0) + 1
    return out


def deployment_manifest(name: str, replicas: int, image: str = "nginx:1.25", strategy: str = "",
                        extra_spec: str = "") -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
{strategy}{extra_spec}  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: {image}
"""
