"""Watch as client-go and kubectl use it: from a version, with selectors, resumption and 410 Gone."""

from __future__ import annotations

import subprocess
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def _cm(name: str, labels: dict | None = None, data: dict | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": data or {}}


def _collect(v1, ns: str, n: int, **kw) -> list[tuple[str, str, str]]:
    w = watch.Watch()
    out = []
    for ev in w.stream(v1.list_namespaced_config_map, ns, timeout_seconds=10, **kw):
        out.append((ev["type"], ev["object"].metadata.name, ev["object"].metadata.resource_version))
        if len(out) >= n:
            w.stop()
    return out


@pytest.mark.conformance("watch-configmaps-from-resource-version")
def test_watch_from_resource_version(cluster, ns):
    v1 = client.CoreV1Api(cluster.api_client())
    v1.create_namespaced_config_map(ns, _cm("w1"))
    first = v1.patch_namespaced_config_map("w1", ns, {"data": {"mutation": "1"}})
    v1.patch_namespaced_config_map("w1", ns, {"data": {"mutation": "2"}})
    v1.delete_namespaced_config_map("w1", ns)
    events = _collect(v1, ns, 2, resource_version=first.metadata.resource_version)
    assert [e[0] for e in events] == ["MODIFIED", "DELETED"]
    assert int(events[0][2]) > int(first.metadata.resource_version)


@pytest.mark.conformance("watch-configmaps-with-multiple-watchers")
@pytest.mark.conformance("watch-configmaps-label-changed")
def test_watch_label_selector_transitions(cluster, ns):
    v1 = client.CoreV1Api(cluster.api_client())
    rv = v1.list_namespaced_config_map(ns).metadata.resource_version
    v1.create_namespaced_config_map(ns, _cm("sel", {"watch": "yes"}))
    v1.create_namespaced_config_map(ns, _cm("other", {"watch": "no"}))
    v1.patch_namespaced_config_map("sel", ns, {"metadata": {"labels": {"watch": "no"}}})  # leaves selector
    v1.patch_namespaced_config_map("sel", ns, {"data": {"x": "1"}})  # unseen
    v1.patch_namespaced_config_map("sel", ns, {"metadata": {"labels": {"watch": "yes"}}})  # back in
    v1.delete_namespaced_config_map("sel", ns)
    events = _collect(v1, ns, 4, resource_version=rv, label_selector="watch=yes")
    assert [(t, n) for t, n, _ in events] == [("ADDED", "sel"), ("DELETED", "sel"), ("ADDED", "sel"), ("DELETED", "sel")]


def test_watch_too_old_resource_version_is_gone(tmp_path_factory):
    from conftest import _make_cluster

    c = _make_cluster(tmp_path_factory, ["--default-watch-cache-size", "20"])
    c.start()
    try:
        _too_old_is_gone(c)
    finally:
        c.stop()


def _too_old_is_gone(cluster):
    v1 = client.CoreV1Api(cluster.api_client())
    ns = "default"
    for i in range(30):
        v1.create_namespaced_config_map(ns, _cm(f"old-{i}"))
    w = watch.Watch()
    with pytest.raises(ApiException) as e:
        for _ in w.stream(v1.list_namespaced_config_map, ns, resource_version="1", timeout_seconds=5):
            pass
    assert e.value.status == 410


def test_kubectl_get_watch_prints_changes(cluster, ns):
    cluster.kubectl("-n", ns, "create", "configmap", "kw1")
    proc = subprocess.Popen(["kubectl", "--kubeconfig", cluster.kubeconfig, "-n", ns, "get", "cm", "-w",
                             "--request-timeout=8s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    cluster.kubectl("-n", ns, "create", "configmap", "kw2", "--from-literal=a=b")
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "DATA", "AGE"]
    assert any(line.split()[:2] == ["kw1", "0"] for line in lines)
    assert any(line.split()[:2] == ["kw2", "1"] for line in lines)
