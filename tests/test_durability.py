"""Nothing acknowledged is lost: restarts keep objects and versions, kill -9 loses no acknowledged write."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_restart_keeps_objects_and_versions_increase(fresh_cluster):
    c = fresh_cluster
    c.kubectl("create", "configmap", "keep", "--from-literal=a=1")
    rv1 = int(c.kubectl("get", "cm", "keep", "-o", "jsonpath={.metadata.resourceVersion}").stdout)
    c.kubectl("delete", "configmap", "keep")
    c.kubectl("create", "configmap", "keep2")
    c.stop()
    c.start()
    assert c.kubectl("get", "cm", "keep", check=False).returncode == 1
    assert c.kubectl("get", "cm", "keep2", "-o", "name").stdout.strip() == "configmap/keep2"
    c.kubectl("create", "configmap", "after")
    rv2 = int(c.kubectl("get", "cm", "after", "-o", "jsonpath={.metadata.resourceVersion}").stdout)
    assert rv2 > rv1 + 2
    # the kubernetes service keeps its IP and default namespaces are not duplicated
    assert c.kubectl("get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}").stdout == "10.43.0.1"


WRITER = r"""
import sys, json
from kubernetes import client, config
api = config.new_client_from_config(config_file=sys.argv[1])
v1 = client.CoreV1Api(api)
i = 0
while True:
    name = f"ack-{i}"
    v1.create_namespaced_config_map("default", {"metadata": {"name": name}, "data": {"i": str(i), "pad": "x" * 512}})
    print(name, flush=True)
    i += 1
"""


def test_kill9_loses_no_acknowledged_write(fresh_cluster, tmp_path):
    c = fresh_cluster
    writers = [subprocess.Popen([sys.executable, "-c", WRITER.replace("ack-", f"ack{k}-"), c.kubeconfig],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for k in range(4)]
    # kill only once every writer is acknowledging writes steadily
    first = [w.stdout.readline().split() for w in writers]
    assert all(first), "a writer got no acknowledgement at all"
    time.sleep(1.0)
    c.kill9()
    acked = [name for f in first for name in f]
    for w in writers:
        out, _ = w.communicate(timeout=30)
        acked += out.split()
    assert len(acked) > 20
    c.start()
    items = json.loads(c.kubectl("get", "cm", "-n", "default", "-o", "json").stdout)["items"]
    stored = {cm["metadata"]["name"]: cm for cm in items}
    missing = [a for a in acked if a not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    for cm in stored.values():
        if cm["metadata"]["name"].startswith("ack"):
            assert cm["data"]["pad"] == "x" * 512
