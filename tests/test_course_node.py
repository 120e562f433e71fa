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
import time
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


@pytest.mark.conformance("Service Account Tokens Must AutoMount")
def test_service_account_token_inside_the_container(sh: Shell):
    """What the ServiceAccount admission mounts, the container reads: token, cluster CA, namespace."""
    sh.out(f"kubectl run sa-reader --image {BUSYBOX} -- sleep 3600")
    sh.wait_pods("run=sa-reader", 1, timeout=60)
    sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert sh.out(f"kubectl exec sa-reader -- cat {sa_dir}/namespace") == sh.namespace
    assert sh.out(f"kubectl exec sa-reader -- cat {sa_dir}/ca.crt").startswith("-----BEGIN CERTIFICATE-----\n")
    token = sh.out(f"kubectl exec sa-reader -- cat {sa_dir}/token")
    assert token.count(".") == 2, token
    assert sh.out(f"kubectl exec sa-reader -- ls {sa_dir}").split() == ["ca.crt", "namespace", "token"]
    # the mount is read-only
    r = sh.run(f"kubectl exec sa-reader -- sh -c 'echo x > {sa_dir}/extra'", check=False)
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r


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
    ip = sh.out("kubectl get pod rng-with-liveness -o jsonpath='{.status.podIP}'")
    # Go's net/http wording, as upstream's prober reports it
    refused = f'Liveness probe failed: Get "http://{ip}:80/": dial tcp {ip}:80: connect: connection refused'
    assert any(e["REASON"] == "Unhealthy" and e["MESSAGE"] == refused for e in events), events
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


# -- a second sweep: the hands-on chapters on the real node ------------------------------------------


def test_logs_of_many_pods_max_log_requests_and_prefix(sh: Shell):
    """`kubectl logs -l app=pingpong --tail 1 -f` with more pods than kubectl's default concurrency (5)."""
    sh.out(f"kubectl create deployment pingpong --image {BUSYBOX} --replicas 6 -- ping 127.0.0.1")
    pods = {p["metadata"]["name"] for p in sh.wait_pods("app=pingpong", 6, timeout=90)}
    err = sh.fails("kubectl logs -l app=pingpong --tail 1 -f", timeout=30)
    assert "error: you are attempting to follow 6 log streams, but maximum allowed concurrency is 5, " \
           "use --max-log-requests to increase the limit" in err, err

    def every_pod_logged() -> str | None:
        r = sh.run("timeout 4 kubectl logs -l app=pingpong --tail 1 -f --max-log-requests 6 --prefix", check=False)
        seen = set(re.findall(r"^\[pod/([\w-]+)/busybox\] 64 bytes from 127\.0\.0\.1: seq=\d+", r.stdout, re.M))
        return r.stdout if seen == pods else None
    out = wait_for(every_pod_logged, 30, "a prefixed line from each of the 6 pods")
    assert all(ln.startswith("[pod/pingpong-") for ln in out.splitlines() if ln), out


def test_exec_cp_and_port_forward(sh: Shell):
    sh.out(HTTPENV)
    [pod] = sh.wait_pods("app=httpenv", 1, timeout=60)
    name = pod["metadata"]["name"]
    # a script on stdin; the remote exit code becomes kubectl's, with upstream's message
    r = sh.run(f"kubectl exec -i {name} -- sh", input="echo hi from $(hostname)\nexit 3\n", check=False)
    assert (r.returncode, r.stdout) == (3, f"hi from {name}\n"), r
    assert r.stderr == "command terminated with exit code 3\n", r.stderr
    sh.write("greeting.txt", "hello from the workstation\n")
    sh.out(f"kubectl cp greeting.txt {name}:/www/greeting.txt")
    assert sh.out(f"kubectl exec {name} -- cat /www/greeting.txt") == "hello from the workstation\n"
    sh.out(f"kubectl cp {name}:/www/index.html index.html")
    assert sh.read("index.html") == f"{name}\n"
    sh.out("kubectl expose deployment httpenv --port 8888")
    for target in (f"pod/{name}", "deploy/httpenv", "svc/httpenv"):
        port = free_local_port()
        r = sh.run(f"kubectl port-forward {target} {port}:8888 > pf.log 2>&1 & PF=$!; "
                   f"for i in $(seq 50); do grep -q Forwarding pf.log && break; sleep 0.1; done; "
                   f"wget -qO- http://127.0.0.1:{port}/greeting.txt; kill $PF; cat pf.log", check=False, timeout=30)
        assert r.stdout.startswith("hello from the workstation\n"), (target, r)
        assert f"Forwarding from 127.0.0.1:{port} -> 8888\n" in r.stdout, r.stdout
        assert f"Handling connection for {port}\n" in r.stdout, r.stdout


def free_local_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nodeport_from_the_node_and_removing_a_pod_from_a_service(sh: Shell):
    """`kubectl expose --type=NodePort`, curl from the node; then the labels exercise: a pod whose label
    no longer matches leaves the endpoints (and its ReplicaSet replaces it) but keeps running."""
    sh.out(HTTPENV)
    sh.out("kubectl scale deployment httpenv --replicas=2")
    assert sh.out("kubectl expose deployment httpenv --port 8888 --type=NodePort") == "service/httpenv exposed\n"
    pods = {p["metadata"]["name"]: p["status"]["podIP"] for p in sh.wait_pods("app=httpenv", 2, timeout=60)}
    svc = sh.json("kubectl get svc httpenv -o json")
    node_port, cluster_ip = svc["spec"]["ports"][0]["nodePort"], svc["spec"]["clusterIP"]
    [row] = [r for r in table(sh.out("kubectl get svc httpenv"))[1]]
    assert (row["TYPE"], row["PORT(S)"]) == ("NodePort", f"8888:{node_port}/TCP"), row
    node = sh.json("kubectl get nodes -o json")["items"]
    node_ip = next(a["address"] for n in node for a in n["status"]["addresses"] if a["type"] == "InternalIP")
    for url in (f"http://{cluster_ip}:8888/", f"http://{node_ip}:{node_port}/"):
        got = {sh.out(f"curl -s -m 3 {url}").strip() for _ in range(8)}
        assert got and got <= set(pods), (url, got)
    wait_for(lambda: sorted(sh.out("kubectl get endpoints httpenv -o jsonpath='{.subsets[*].addresses[*].ip}'")
                            .split()) == sorted(pods.values()), 30, "both pods in the endpoints")
    victim = sorted(pods)[0]
    assert sh.out(f"kubectl label pod {victim} app=debug --overwrite") == f"pod/{victim} labeled\n"
    after = sh.wait_pods("app=httpenv", 2, timeout=60)
    assert victim not in {p["metadata"]["name"] for p in after}
    ips = {p["status"]["podIP"] for p in after}
    wait_for(lambda: set(sh.out("kubectl get endpoints httpenv -o jsonpath='{.subsets[*].addresses[*].ip}'")
                         .split()) == ips, 30, "the endpoints without the relabelled pod")
    rows = {r["NAME"]: r for r in table(sh.out("kubectl get pods -L app"))[1]}
    assert (rows[victim]["STATUS"], rows[victim]["APP"]) == ("Running", "debug"), rows
    # the relabelled pod still answers on its own address, outside the service
    assert sh.out(f"curl -s -m 3 http://{pods[victim]}:8888/").strip() == victim


def test_init_container_emptydir_configmap_and_secret(sh: Shell):
    """Init containers, an emptyDir shared by two containers, ConfigMaps and Secrets as env and files;
    `kubectl get pods -w` goes Init:0/1 → (PodInitializing) → Running, never ContainerCreating."""
    sh.out("kubectl create configmap app --from-literal=color=blue --from-literal=size=10")
    sh.write("app.env", "a=1\n# a comment\nb=two\n")
    sh.out("kubectl create configmap envfile --from-env-file=app.env")
    sh.out("kubectl create secret generic creds --from-literal=password=0pensesame!")
    sh.write("pod.yaml", f"""apiVersion: v1
kind: Pod
metadata:
  name: cfg
spec:
  initContainers:
  - name: init
    image: {BUSYBOX}
    command: ["sh", "-c", "sleep 2; echo from-init > /work/init.txt"]
    volumeMounts:
    - {{name: work, mountPath: /work}}
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "while true; do date > /work/date.txt; sleep 1; done"]
    envFrom:
    - configMapRef: {{name: envfile}}
    env:
    - name: COLOR
      valueFrom: {{configMapKeyRef: {{name: app, key: color}}}}
    - name: PASSWORD
      valueFrom: {{secretKeyRef: {{name: creds, key: password}}}}
    volumeMounts:
    - {{name: work, mountPath: /work}}
    - {{name: cfg, mountPath: /etc/app}}
    - {{name: sec, mountPath: /etc/sec}}
  - name: side
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    volumeMounts:
    - {{name: work, mountPath: /data}}
  volumes:
  - {{name: work, emptyDir: {{}}}}
  - {{name: cfg, configMap: {{name: app}}}}
  - {{name: sec, secret: {{secretName: creds}}}}
""")
    r = sh.run("kubectl apply -f pod.yaml && timeout 30 kubectl get pods cfg -w | "
               "{ while read -r line; do echo \"$line\"; case \"$line\" in *2/2*Running*) exit 0;; esac; done; }",
               check=False, timeout=60)
    # (-w widens columns as it goes: split the lines rather than cut them at the header's offsets)
    statuses = [ln.split()[2] for ln in r.stdout.splitlines() if ln.startswith("cfg ")]
    assert set(statuses) <= {"Pending", "Init:0/1", "PodInitializing", "Running"}, r.stdout
    # Pending shows only when kubectl's first GET beats the kubelet's first status write (a fast node wins)
    firsts = [statuses.index(s) for s in ("Pending", "Init:0/1", "PodInitializing", "Running")
              if s != "Pending" or s in statuses]
    assert firsts == sorted(firsts) and statuses[-1] == "Running", r.stdout
    env = sh.out("kubectl exec cfg -c main -- sh -c 'echo $COLOR $PASSWORD $a $b'")
    assert env == "blue 0pensesame! 1 two\n", env
    assert sh.out("kubectl exec cfg -c main -- ls /etc/app /etc/sec") == "/etc/app:\ncolor\nsize\n\n/etc/sec:\npassword\n"
    assert sh.out("kubectl exec cfg -c main -- cat /etc/app/color /etc/sec/password") == "blue0pensesame!"
    # the side container sees what the init container and the main container wrote
    assert sh.out("kubectl exec cfg -c side -- cat /data/init.txt") == "from-init\n"
    wait_for(lambda: sh.run("kubectl exec cfg -c side -- cat /data/date.txt", check=False).stdout.strip(), 10,
             "date.txt written by the main container")
    d = sh.out("kubectl describe pod cfg")
    init_block = d.split("Init Containers:\n", 1)[1].split("Containers:\n", 1)[0]
    assert re.search(r"State:\s+Terminated\n\s+Reason:\s+Completed\n\s+Exit Code:\s+0\n", init_block), init_block
    assert re.search(r"COLOR:\s+<set to the key 'color' of config map 'app'>\s+Optional: false", d), d
    assert re.search(r"PASSWORD:\s+<set to the key 'password' in secret 'creds'>\s+Optional: false", d), d
    assert re.search(r"Environment Variables from:\n\s+envfile\s+ConfigMap\s+Optional: false", d), d
    r = sh.run("kubectl logs cfg", check=False)
    assert r.stderr.startswith('Defaulted container "main" out of: main, side, init (init)\n'), r.stderr


def test_readiness_probe_takes_a_pod_out_of_the_service(sh: Shell):
    sh.out(HTTPENV)
    sh.out("kubectl expose deployment httpenv --port 8888")
    [web] = sh.wait_pods("app=httpenv", 1, timeout=60)
    sh.write("rdy.yaml", f"""apiVersion: v1
kind: Pod
metadata:
  name: rdy
  labels: {{app: httpenv}}
spec:
  containers:
  - name: web
    image: {BUSYBOX}
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8888 -h /www"]
    readinessProbe:
      exec: {{command: ["test", "-e", "/tmp/ready"]}}
      periodSeconds: 1
""")
    sh.out("kubectl apply -f rdy.yaml")

    def ep_ips() -> set[str]:
        return set(sh.out("kubectl get endpoints httpenv -o jsonpath='{.subsets[*].addresses[*].ip}'").split())

    def row() -> dict[str, str]:
        return table(sh.out("kubectl get pod rdy"))[1][0]
    wait_for(lambda: row()["STATUS"] == "Running", 60, "rdy running")
    assert row()["READY"] == "0/1"
    assert ep_ips() == {web["status"]["podIP"]}

    def unhealthy() -> list[dict]:
        return [e for e in sh.json("kubectl get events -o json")["items"]
                if e["reason"] == "Unhealthy" and e["involvedObject"]["name"] == "rdy"]
    [ev] = wait_for(unhealthy, 20, "an Unhealthy event")
    # a failing exec probe with no output: upstream's message is the output, here empty
    assert (ev["type"], ev["message"], ev["source"].get("component")) == \
        ("Warning", "Readiness probe failed: ", "kubelet"), ev
    sh.out("kubectl exec rdy -- touch /tmp/ready")
    ip = sh.out("kubectl get pod rdy -o jsonpath='{.status.podIP}'")
    wait_for(lambda: row()["READY"] == "1/1", 20, "rdy ready")
    wait_for(lambda: ep_ips() == {web["status"]["podIP"], ip}, 20, "rdy in the endpoints")
    sh.out("kubectl exec rdy -- rm /tmp/ready")
    wait_for(lambda: row()["READY"] == "0/1", 20, "rdy not ready again")
    wait_for(lambda: ep_ips() == {web["status"]["podIP"]}, 20, "rdy out of the endpoints")
    assert row()["RESTARTS"] == "0"  # readiness never restarts


def test_delete_with_grace_period_terminating_and_logs_follow(sh: Shell):
    """A container that ignores SIGTERM (busybox as PID 1) stays Terminating for the grace period;
    `kubectl logs -f` on it exits when it is finally killed."""
    sh.run("timeout 60 kubectl get pods -w </dev/null > watch.log 2>&1 & echo $! > watch.pid")
    time.sleep(2)  # (on an empty namespace the watch prints nothing to wait for)
    sh.out(f"kubectl run pingpong --image {BUSYBOX} -- ping 127.0.0.1")
    sh.wait_pods("run=pingpong", 1, timeout=60)
    r = sh.run("(timeout 40 kubectl logs pingpong --tail 1 -f > follow.log 2>&1; echo \"exit $?\" >> follow.log) "
               "</dev/null >/dev/null 2>&1 & sleep 1; "
               "kubectl delete pod pingpong --grace-period=4 --wait=false", timeout=30)
    assert r.stdout == 'pod "pingpong" deleted\n', r
    [row] = table(sh.out("kubectl get pods"))[1]
    assert (row["NAME"], row["STATUS"]) == ("pingpong", "Terminating"), row
    wait_for(lambda: "not found" in sh.run("kubectl get pod pingpong", check=False).stderr, 30, "the pod gone")

    def follow_ended() -> str | None:
        text = sh.read("follow.log")
        return text if "exit " in text else None
    log = wait_for(follow_ended, 15, "kubectl logs -f exiting")
    assert log.splitlines()[-1] == "exit 0", log  # the stream ended, kubectl did not time out (124)
    assert log.startswith("64 bytes from 127.0.0.1"), log
    sh.run("kill $(cat watch.pid)", check=False)
    watch = [ln.split() for ln in sh.read("watch.log").splitlines()[1:]]
    statuses = [w[2] for w in watch if w and w[0] == "pingpong"]
    # as upstream's kubelet publishes them: Pending (created, then bound), ContainerCreating, Running, ...
    assert statuses[:2] == ["Pending", "Pending"] and "ContainerCreating" in statuses, watch
    firsts = [statuses.index(s) for s in ("Pending", "ContainerCreating", "Running", "Terminating")]
    assert firsts == sorted(firsts), watch


def test_rolling_update_to_a_missing_image(sh: Shell):
    sh.out(HTTPENV)
    sh.out("kubectl scale deployment httpenv --replicas=2")
    sh.wait_deploy("httpenv", 60)
    assert sh.out("kubectl set image deploy httpenv busybox=localhost/busybox:v0.3") == \
        "deployment.apps/httpenv image updated\n"

    def bad_pod() -> dict | None:
        rows = table(sh.out("kubectl get pods"))[1]
        bad = [r for r in rows if r["STATUS"] in ("ErrImagePull", "ImagePullBackOff")]
        return bad[0] if bad else None
    bad = wait_for(bad_pod, 60, "a pod failing to pull")
    assert bad["READY"] == "0/1" and bad["RESTARTS"] == "0", bad
    wait_for(lambda: any(r["STATUS"] == "ImagePullBackOff" for r in table(sh.out("kubectl get pods"))[1]), 60,
             "ImagePullBackOff")
    running = [r for r in table(sh.out("kubectl get pods"))[1] if r["STATUS"] == "Running"]
    assert len(running) == 2, running  # maxUnavailable 25% of 2 rounds down: the old pods stay
    r = sh.run("kubectl rollout status deploy httpenv --timeout=2s", check=False)
    assert r.returncode == 1 and 'Waiting for deployment "httpenv" rollout to finish: 1 out of 2 new replicas ' \
        "have been updated...\n" in r.stdout, r
    d = sh.out(f"kubectl describe pod {bad['NAME']}")
    assert re.search(r"State:\s+Waiting\n\s+Reason:\s+(ErrImagePull|ImagePullBackOff)\n", d), d
    ev = d.split("Events:", 1)[1]
    for pattern in (r"Normal\s+Pulling\s+.*kubelet\s+Pulling image \"localhost/busybox:v0\.3\"",
                    r"Warning\s+Failed\s+.*kubelet\s+Failed to pull image \"localhost/busybox:v0\.3\": ",
                    r"Warning\s+Failed\s+.*kubelet\s+Error: ErrImagePull",
                    r"Normal\s+BackOff\s+.*kubelet\s+Back-off pulling image \"localhost/busybox:v0\.3\"",
                    r"Warning\s+Failed\s+.*kubelet\s+Error: ImagePullBackOff"):
        assert re.search(pattern, ev), (pattern, ev)
    # exec/attach into a container that never started: the kubelet's refusal, echoed as upstream does
    r = sh.run(f"kubectl exec {bad['NAME']} -- true", check=False)
    assert r.returncode == 1 and r.stderr.endswith(
        'error: unable to upgrade connection: container not found ("busybox")\n'), r.stderr
    r = sh.run(f"kubectl attach {bad['NAME']}", check=False, timeout=30)
    assert r.returncode == 1 and r.stderr.endswith(
        f"error: unable to upgrade connection: container busybox not found in pod {bad['NAME']}_{sh.namespace}\n"), r
    assert sh.out("kubectl rollout undo deploy httpenv") == "deployment.apps/httpenv rolled back\n"
    sh.wait_deploy("httpenv", 60)
    sh.wait_pods("app=httpenv", 2, timeout=60)


def test_service_names_across_namespaces(sh: Shell, node_cluster: Cluster, tmp_path):
    """`<svc>.<ns>`, `<svc>.<ns>.svc` and the FQDN resolve from another namespace; the bare name does not."""
    sh.out(HTTPENV)
    sh.out("kubectl expose deployment httpenv --port 8888")
    [pod] = sh.wait_pods("app=httpenv", 1, timeout=60)
    ns = sh.namespace
    other = new_shell(node_cluster, tmp_path, "o")
    try:
        script = "; ".join(f"wget -qO- http://{host}:8888/" for host in
                           (f"httpenv.{ns}", f"httpenv.{ns}.svc", f"httpenv.{ns}.svc.cluster.local"))
        out = other.out(f"kubectl run client --image={BUSYBOX} --restart=Never --rm -i --quiet -- "
                        f"sh -c 'sleep 1; {script}; wget -T 2 -qO- http://httpenv:8888/ || echo no-such-name; "
                        f"grep ^search /etc/resolv.conf'", timeout=90)
        name = pod["metadata"]["name"]
        lines = out.splitlines()
        assert lines[:4] == [name, name, name, "no-such-name"], out
        assert lines[-1].startswith(f"search {other.namespace}.svc.cluster.local svc.cluster.local cluster.local"), out
    finally:
        node_cluster.kubectl("delete", "namespace", other.namespace, "--wait=false", check=False)
