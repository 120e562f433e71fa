"""Course exercises that need real containers: given a kubelite with a real node (`--kubelet`,
containerd), when a learner follows the logs, exec, service-traffic, DNS and healthcheck exercises,
then logs stream, services load-balance, names resolve and failing probes restart containers.

The course's images (alpine, bretfisher/httpenv, dockercoins/*) come from registries not reachable
here: the local busybox image stands in for them, with the same commands (ping, an HTTP server that
tells its hostname). Skipped where the host cannot run a real node.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import Cluster
from tests.course_support import Shell, new_shell, table, wait_for
from tests.images import BUSYBOX, real_node

pytestmark = [pytest.mark.root, pytest.mark.containerd]

HTTPENV = f"kubectl create deployment httpenv --image={BUSYBOX} -- sh -c " \
          "'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8888 -h /www'"


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with real_node(tmp_path_factory) as c:
        r = c.kubectl("get", "nodes", "-o", "json")
        real = [n for n in json.loads(r.stdout)["items"]
                if (n["metadata"].get("labels") or {}).get("kubelite.io/simulated") != "true"]
        if not real:
            pytest.skip("no real (non-simulated) node in a cluster started with --kubelet")
        yield c


@pytest.fixture
def sh(node_cluster: Cluster, tmp_path) -> Iterator[Shell]:
    s = new_shell(node_cluster, tmp_path, "n")
    yield s
    node_cluster.kubectl("delete", "namespace", s.namespace, "--wait=false", check=False)


def test_pingpong_logs(sh: Shell):
    sh.out(f"kubectl create deployment pingpong --image {BUSYBOX} -- ping 127.0.0.1")
    sh.wait_pods("app=pingpong", 1, timeout=60)
    out = wait_for(lambda: sh.out("kubectl logs deploy/pingpong"), 20, "ping output")
    assert out.startswith("PING 127.0.0.1 (127.0.0.1): 56 data bytes\n"), out
    assert re.search(r"^64 bytes from 127\.0\.0\.1: seq=0 ttl=64 time=", out, re.M), out
    last = sh.out("kubectl logs deploy/pingpong --tail 1")
    assert len(last.splitlines()) == 1 and last.startswith("64 bytes from 127.0.0.1")
    sh.out("kubectl scale deploy/pingpong --replicas 3")
    sh.wait_pods("app=pingpong", 3, timeout=60)
    r = sh.run("timeout 3 kubectl logs deploy/pingpong --tail 1 --follow", check=False)
    assert re.match(r"Found 3 pods, using pod/pingpong-\w+-\w+\n", r.stderr), r.stderr
    assert r.stdout.startswith("64 bytes from 127.0.0.1"), r.stdout
    r = sh.run("timeout 3 kubectl logs -l app=pingpong --tail 1 -f", check=False)
    assert len([ln for ln in r.stdout.splitlines() if ln.startswith("64 bytes")]) >= 3, r


def test_kubelet_events_and_exec(sh: Shell):
    sh.out(f"kubectl run pingpong --image {BUSYBOX} ping 127.0.0.1")
    sh.wait_pods("run=pingpong", 1, timeout=60)
    reasons = {r["REASON"] for r in table(sh.out("kubectl get events"))[1]}
    assert {"Scheduled", "Pulled", "Created", "Started"} <= reasons, reasons
    assert sh.out("kubectl exec pingpong -- hostname") == "pingpong\n"


def test_httpenv_through_service_ip_and_dns(sh: Shell):
    sh.out(HTTPENV)
    sh.out("kubectl scale deployment httpenv --replicas=3")
    sh.out("kubectl expose deployment httpenv --port 8888")
    pods = sh.wait_pods("app=httpenv", 3, timeout=60)
    names = {p["metadata"]["name"] for p in pods}
    ip = sh.out("kubectl get svc httpenv -o go-template --template '{{ .spec.clusterIP }}'")
    seen = set()
    for target in (ip, "httpenv", f"httpenv.{sh.namespace}.svc.cluster.local"):
        cmd = (f"kubectl run client-{uuid.uuid4().hex[:5]} --image={BUSYBOX} --restart=Never --rm -i --quiet -- "
               # (the pause lets kubectl attach before the loop ends; a pod that completes first is
               # reported Running by a late status and its attach returns nothing)
               f"sh -c 'sleep 2; for i in 1 2 3 4 5 6 7 8 9; do wget -qO- http://{target}:8888/index.html; done'")
        out = sh.out(cmd, timeout=90)
        got = set(out.split())
        assert got and got <= names, (target, out)
        seen |= got
    assert len(seen) >= 2, f"no load balancing across {names}: {seen}"


@pytest.mark.slow
def test_liveness_probe_restarts(sh: Shell):
    sh.write("pod.yaml", f"""apiVersion: v1
kind: Pod
metadata:
  name: rng-with-liveness
spec:
  containers:
  - name: rng
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    livenessProbe:
      httpGet:
        path: /
        port: 80
      initialDelaySeconds: 1
      periodSeconds: 1
""")
    sh.out("kubectl apply -f pod.yaml")

    def restarted():
        rows = table(sh.out("kubectl get pods"))[1]
        return rows if rows and rows[0]["RESTARTS"].split()[0] not in ("0",) else None
    wait_for(restarted, 60, "a restart after 3 failed probes")
    events = table(sh.out("kubectl get events"))[1]
    assert any(e["REASON"] == "Unhealthy" and e["MESSAGE"].startswith("Liveness probe failed:") for e in events)
    assert any(e["REASON"] == "Killing" and "failed liveness probe, will be restarted" in e["MESSAGE"]
               for e in events), events


@pytest.mark.slow
def test_run_interactive_attaches(sh: Shell):
    """`kubectl attach -ti shpod` / `kubectl run -i`: upstream attaches to the container's stdio."""
    r = sh.run(f"kubectl run once --image={BUSYBOX} --restart=Never --rm -i -- sh -c 'read x; echo got $x'",
               input="hello\n", check=False, timeout=90)
    assert "couldn't attach" not in r.stderr, r.stderr
    # kubectl itself reports the --rm deletion on stdout, after the container's output
    assert r.stdout == 'got hello\npod "once" deleted\n', r
