"""Course, running workloads: given a kubelite with three simulated nodes, when a learner types the
exercises of the course from "Running our first containers" to "Ingress" (kubectl run/create/scale/
expose/label/edit/apply/diff/set image/rollout/patch, DaemonSets, ConfigMaps, Ingress) unmodified,
then kubelite answers with upstream 1.32's output, errors and behaviour.

Each test is one lecture in a namespace of its own (the kubeconfig's current context points at it,
so the commands are typed exactly as in the course). Exercises that need real containers (logs,
exec, traffic, DNS) are in test_course_node.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.conftest import Cluster
from tests.course_support import Shell, new_shell, sections, start_simulated, table, wait_for

POD_COLUMNS = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
DEPLOY_COLUMNS = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
RS_COLUMNS = ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
DS_COLUMNS = ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"]
SVC_COLUMNS = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
POD_HASH = r"[bcdfghjklmnpqrstvwxz2456789]{1,10}"
SUFFIX = r"[bcdfghjklmnpqrstvwxz2456789]{5}"


@pytest.fixture(scope="module")
def cluster2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_simulated(tmp_path_factory, 3)
    yield c
    c.stop()


@pytest.fixture
def sh(cluster2: Cluster, tmp_path) -> Iterator[Shell]:
    s = new_shell(cluster2, tmp_path)
    yield s
    cluster2.kubectl("delete", "namespace", s.namespace, "--wait=false", check=False)


def get_all(sh: Shell) -> dict[str, list[dict[str, str]]]:
    """`kubectl get all` as {header-line: rows}, asserting every block is a table."""
    out = sh.out("kubectl get all")
    blocks = {}
    for block in sections(out):
        names, rows = table(block)
        blocks[" ".join(names)] = rows
    return blocks


# -- Running our first containers ----------------------------------------------------------------------


def test_kubectl_run_creates_a_pod(sh: Shell):
    # 1.32: `kubectl run` creates a bare pod (the course predates that change), labelled run=pingpong
    assert sh.out("kubectl run pingpong --image alpine ping 127.0.0.1") == "pod/pingpong created\n"
    sh.wait_pods("run=pingpong", 1)
    blocks = get_all(sh)
    assert list(blocks) == [" ".join(POD_COLUMNS)], blocks
    [row] = blocks[" ".join(POD_COLUMNS)]
    assert (row["NAME"], row["READY"], row["STATUS"], row["RESTARTS"]) == ("pod/pingpong", "1/1", "Running", "0")
    pod = sh.json("kubectl get pod pingpong -o json")
    assert pod["spec"]["containers"][0]["args"] == ["ping", "127.0.0.1"]
    assert pod["spec"]["restartPolicy"] == "Always"
    # the deployment the course expects does not exist: upstream's errors
    err = sh.fails("kubectl scale deploy/pingpong --replicas 3")
    assert 'deployments.apps "pingpong" not found' in err, err
    err = sh.fails("kubectl logs deploy/pingpong")
    assert err == f'error: error from server (NotFound): deployments.apps "pingpong" not found in namespace ' \
                  f'"{sh.namespace}"\n', err
    assert sh.out("kubectl delete pod pingpong --wait=false") == 'pod "pingpong" deleted\n'


def test_pingpong_deployment_scale_and_self_healing(sh: Shell):
    assert sh.out("kubectl create deployment pingpong --image alpine -- ping 127.0.0.1") == \
        "deployment.apps/pingpong created\n"
    sh.wait_deploy("pingpong")
    blocks = get_all(sh)
    assert list(blocks) == [" ".join(POD_COLUMNS), " ".join(DEPLOY_COLUMNS), " ".join(RS_COLUMNS)], blocks
    [pod] = blocks[" ".join(POD_COLUMNS)]
    [dep] = blocks[" ".join(DEPLOY_COLUMNS)]
    [rs] = blocks[" ".join(RS_COLUMNS)]
    assert re.fullmatch(rf"replicaset\.apps/pingpong-{POD_HASH}", rs["NAME"]), rs
    assert re.fullmatch(rf"pod/pingpong-{POD_HASH}-{SUFFIX}", pod["NAME"]), pod
    assert pod["NAME"].startswith("pod/" + rs["NAME"].split("/")[1] + "-")
    assert (dep["NAME"], dep["READY"], dep["UP-TO-DATE"], dep["AVAILABLE"]) == ("deployment.apps/pingpong", "1/1",
                                                                                "1", "1")
    assert (rs["DESIRED"], rs["CURRENT"], rs["READY"]) == ("1", "1", "1")
    assert (pod["READY"], pod["STATUS"]) == ("1/1", "Running")

    assert sh.out("kubectl scale deploy/pingpong --replicas 3") == "deployment.apps/pingpong scaled\n"
    assert sh.out("kubectl scale deployment pingpong --replicas 3") == "deployment.apps/pingpong scaled\n"
    pods = sh.wait_pods("app=pingpong", 3)

    # "Destroy the pod": the replica set replaces it
    victim = pods[0]["metadata"]["name"]
    assert sh.out(f"kubectl delete pod {victim}") == f'pod "{victim}" deleted\n'
    pods = sh.wait_pods("app=pingpong", 3)
    assert victim not in {p["metadata"]["name"] for p in pods}

    # "what if we tried to scale replicaset.apps/pingpong-xxxxxxx? ... the deployment would scale back"
    rsname = sh.out("kubectl get rs -o name").strip()
    sh.out(f"kubectl scale {rsname} --replicas 5")
    wait_for(lambda: sh.json(f"kubectl get {rsname} -o json")["spec"]["replicas"] == 3, 15,
             "the deployment to scale its replica set back to 3")

    # "Let's see what happens if we try to stream the logs for more than 5 pods"
    sh.out("kubectl scale deployment pingpong --replicas=8")
    sh.wait_pods("app=pingpong", 8)
    err = sh.fails("kubectl logs -l app=pingpong --tail 1 -f", timeout=20)
    assert err == "error: you are attempting to follow 8 log streams, but maximum allowed concurrency is 5, " \
                  "use --max-log-requests to increase the limit\n", err


def test_cronjob_and_jobs(sh: Shell):
    out = sh.out('kubectl create cronjob sleep --schedule="*/3 * * * *" --restart=OnFailure --image=alpine -- sleep 10')
    assert out == "cronjob.batch/sleep created\n"
    names, rows = table(sh.out("kubectl get cronjobs"))
    assert names == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    assert [(r["NAME"], r["SCHEDULE"], r["TIMEZONE"], r["SUSPEND"], r["ACTIVE"], r["LAST SCHEDULE"])
            for r in rows] == [("sleep", "*/3 * * * *", "<none>", "False", "0", "<none>")]
    # not waiting three minutes for the schedule: run it now, as the cron job would
    assert sh.out("kubectl create job sleep-now --from=cronjob/sleep") == "job.batch/sleep-now created\n"

    def complete():
        rows = table(sh.out("kubectl get jobs"))[1]
        return rows if rows and rows[0]["STATUS"] == "Complete" else None
    rows = wait_for(complete, 30, "the job to complete")
    names = table(sh.out("kubectl get jobs"))[0]
    assert names == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert (rows[0]["NAME"], rows[0]["COMPLETIONS"]) == ("sleep-now", "1/1")
    pods = table(sh.out("kubectl get pods"))[1]
    assert [(p["READY"], p["STATUS"]) for p in pods] == [("0/1", "Completed")], pods

    sh.out("kubectl create deployment pingpong --image alpine -- ping 127.0.0.1")
    out = sh.out("kubectl delete deployment/pingpong cronjob/sleep")
    assert out == 'deployment.apps "pingpong" deleted\ncronjob.batch "sleep" deleted\n'


def test_watch_pods_while_creating(sh: Shell):
    """`kubectl get pods -w` in one window, `kubectl create deployment` in another."""
    import subprocess
    import time

    w = subprocess.Popen(["bash", "-c", "exec kubectl get pods -w"], cwd=sh.workdir, env=sh.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        sh.out("kubectl create deployment httpenv --image=bretfisher/httpenv")
        sh.wait_pods("app=httpenv", 1)
        time.sleep(0.5)
    finally:
        w.terminate()
        out, err = w.communicate(timeout=10)
    lines = out.splitlines()
    assert lines[0].split() == POD_COLUMNS, out
    statuses = [ln.split()[2] for ln in lines[1:]]
    assert statuses[-1] == "Running", out
    assert set(statuses) <= {"Pending", "ContainerCreating", "Running"}, out
    assert "Pending" in statuses, out


# -- Exposing containers ---------------------------------------------------------------------------------


def test_httpenv_expose_and_endpoints(sh: Shell):
    sh.out("kubectl create deployment httpenv --image=bretfisher/httpenv")
    assert sh.out("kubectl scale deployment httpenv --replicas=10") == "deployment.apps/httpenv scaled\n"
    assert sh.out("kubectl expose deployment httpenv --port 8888") == "service/httpenv exposed\n"
    names, rows = table(sh.out("kubectl get service"))
    assert names == SVC_COLUMNS
    [svc] = rows
    assert (svc["NAME"], svc["TYPE"], svc["EXTERNAL-IP"], svc["PORT(S)"]) == ("httpenv", "ClusterIP", "<none>",
                                                                            "8888/TCP")
    ip = sh.out("kubectl get svc httpenv -o go-template --template '{{ .spec.clusterIP }}'")
    assert ip == svc["CLUSTER-IP"] and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", ip)
    assert sh.out("kubectl get svc httpenv -o go-template={{.spec.clusterIP}}") == ip
    pods = sh.wait_pods("app=httpenv", 10)
    pod_ips = sorted(p["status"]["podIP"] for p in pods)
    assert len(set(pod_ips)) == 10

    def endpoints():
        ep = sh.json("kubectl get endpoints httpenv -o json")
        ips = sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])
        return ep if ips == pod_ips else None
    ep = wait_for(endpoints, 20, "10 endpoint addresses")
    assert [p["port"] for s in ep["subsets"] for p in s["ports"]] == [8888]
    desc = sh.out("kubectl describe service httpenv")
    line = next(ln for ln in desc.splitlines() if ln.startswith("Endpoints:"))
    assert re.fullmatch(r"Endpoints:\s+(\d+\.\d+\.\d+\.\d+:8888,){2}\d+\.\d+\.\d+\.\d+:8888 \+ 7 more\.\.\.", line), line
    assert re.search(r"^Selector:\s+app=httpenv$", desc, re.M) and re.search(r"^TargetPort:\s+8888/TCP$", desc, re.M)
    names, rows = table(sh.out("kubectl get endpoints"))
    assert names == ["NAME", "ENDPOINTS", "AGE"]
    assert re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:8888,){2}\d+\.\d+\.\d+\.\d+:8888 \+ 7 more\.\.\.", rows[0]["ENDPOINTS"])
    wide = table(sh.out("kubectl get pods -l app=httpenv -o wide"))[1]
    assert sorted(r["IP"] for r in wide) == pod_ips
    # headless: "Either with --cluster-ip=None, or by providing a custom YAML"
    sh.out("kubectl expose deployment httpenv --name httpenv-headless --port 8888 --cluster-ip=None")
    [row] = [r for r in table(sh.out("kubectl get svc"))[1] if r["NAME"] == "httpenv-headless"]
    assert row["CLUSTER-IP"] == "None"
    out = sh.out("kubectl delete deployment/httpenv service/httpenv")
    assert out == 'deployment.apps "httpenv" deleted\nservice "httpenv" deleted\n'


DOCKERCOINS = [("redis", "redis"), ("hasher", "dockercoins/hasher:v0.1"), ("rng", "dockercoins/rng:v0.1"),
               ("worker", "dockercoins/worker:v0.1"), ("webui", "dockercoins/webui:v0.1")]


def deploy_dockercoins(sh: Shell) -> None:
    for name, image in DOCKERCOINS:
        assert sh.out(f"kubectl create deployment {name} --image={image}") == f"deployment.apps/{name} created\n"
    for cmd in ("kubectl expose deployment redis --port 6379", "kubectl expose deployment rng --port 80",
                "kubectl expose deployment hasher --port 80", "kubectl expose deploy/webui --type=NodePort --port=80"):
        assert sh.out(cmd).endswith(" exposed\n")
    for name, _ in DOCKERCOINS:
        sh.wait_pods(f"app={name}", 1)


def dockercoins_yaml() -> str:
    """The course's dockercoins.yaml: its five Deployments and four Services, as one List."""
    items = []
    for name, image in DOCKERCOINS:
        items.append({"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": name, "labels": {"app": name}},
                      "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                               "template": {"metadata": {"labels": {"app": name}},
                                            "spec": {"containers": [{"name": name.split("/")[-1], "image": image}]}}}})
    for name, port, typ in (("hasher", 80, "ClusterIP"), ("redis", 6379, "ClusterIP"), ("rng", 80, "ClusterIP"),
                            ("webui", 80, "NodePort")):
        items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"app": name}},
                      "spec": {"type": typ, "selector": {"app": name},
                               "ports": [{"port": port, "protocol": "TCP", "targetPort": port}]}})
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=1)


def test_dockercoins_deploy_expose_scale(sh: Shell):
    deploy_dockercoins(sh)
    rows = {r["NAME"]: r for r in table(sh.out("kubectl get svc"))[1]}
    assert sorted(rows) == ["hasher", "redis", "rng", "webui"]
    assert rows["redis"]["PORT(S)"] == "6379/TCP" and rows["rng"]["PORT(S)"] == "80/TCP"
    assert rows["webui"]["TYPE"] == "NodePort"
    m = re.fullmatch(r"80:(\d+)/TCP", rows["webui"]["PORT(S)"])
    assert m and 30000 <= int(m.group(1)) <= 32767, rows["webui"]
    for n in (2, 3, 10):
        assert sh.out(f"kubectl scale deployment worker --replicas={n}") == "deployment.apps/worker scaled\n"
        sh.wait_pods("app=worker", n)
    rows = {r["NAME"]: r for r in table(sh.out("kubectl get deployments"))[1]}
    assert rows["worker"]["READY"] == "10/10" and rows["rng"]["READY"] == "1/1"
    hasher = sh.out("kubectl get svc hasher -o go-template={{.spec.clusterIP}}")
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", hasher), hasher

    # "Deploy or redeploy DockerCoins: ... Note the warnings if you already had the resources created"
    sh.write("dockercoins.yaml", dockercoins_yaml())
    r = sh.run("kubectl apply -f dockercoins.yaml")
    assert "deployment.apps/worker configured" in r.stdout and "service/webui configured" in r.stdout, r.stdout
    assert "Warning: resource deployments/worker is missing the kubectl.kubernetes.io/last-applied-configuration " \
           "annotation which is required by kubectl apply." in r.stderr, r.stderr
    sh.wait_pods("app=worker", 1)  # the manifest says replicas: 1
    r = sh.run("kubectl apply -f dockercoins.yaml")
    assert "Warning" not in r.stderr and "deployment.apps/worker unchanged" in r.stdout, r


def test_daemonset_from_deployment_and_selectors(sh: Shell):
    deploy_dockercoins(sh)
    sh.run("kubectl get deploy/rng -o yaml > rng.yml")
    sh.write("rng.yml", sh.read("rng.yml").replace("\nkind: Deployment\n", "\nkind: DaemonSet\n"))
    err = sh.fails("kubectl apply -f rng.yml")
    assert err.startswith('Error from server (BadRequest): error when creating "rng.yml": DaemonSet in version "v1" '
                          'cannot be handled as a DaemonSet: strict decoding error: '), err
    for field in ("spec.progressDeadlineSeconds", "spec.replicas", "spec.strategy", "status.availableReplicas"):
        assert f'unknown field "{field}"' in err, err
    assert sh.out("kubectl apply -f rng.yml --validate=false") == "daemonset.apps/rng created\n"

    def ds_ready():
        rows = get_all(sh).get(" ".join(DS_COLUMNS))
        return rows if rows and rows[0]["READY"] == "3" else None
    [ds] = wait_for(ds_ready, 30, "the daemon set on 3 nodes")
    assert (ds["NAME"], ds["DESIRED"], ds["CURRENT"], ds["UP-TO-DATE"], ds["AVAILABLE"], ds["NODE SELECTOR"]) == \
        ("daemonset.apps/rng", "3", "3", "3", "3", "<none>")
    deps = {r["NAME"]: r for r in get_all(sh)[" ".join(DEPLOY_COLUMNS)]}
    assert deps["deployment.apps/rng"]["READY"] == "1/1"  # "We still have the old rng deployment"
    pods = sh.wait_pods("app=rng", 4)
    ds_pods = [p for p in pods if p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"]
    assert len(ds_pods) == 3 and len({p["spec"]["nodeName"] for p in ds_pods}) == 3
    assert all(re.fullmatch(rf"rng-{SUFFIX}", p["metadata"]["name"]) for p in ds_pods)
    assert all("controller-revision-hash" in p["metadata"]["labels"] for p in ds_pods)

    # "Check the selector in the rng service definition"
    assert re.search(r"^Selector:\s+app=rng$", sh.out("kubectl describe service rng"), re.M)
    a = table(sh.out("kubectl get pods -l app=rng"))[1]
    b = table(sh.out("kubectl get pods --selector app=rng"))[1]
    assert len(a) == len(b) == 4
    assert re.search(r"^Selector:\s+app=rng,pod-template-hash=\w+$", sh.out("kubectl describe rs -l app=rng"), re.M)

    out = sh.out("kubectl label pods -l app=rng enabled=yes")
    assert sorted(out.splitlines()) == sorted(f"pod/{p['metadata']['name']} labeled" for p in pods)
    # enabled: yes is a YAML boolean: the service is not valid
    sel = "  selector:\n    app: rng\n"
    r = sh.edit("kubectl edit service rng", sel, sel + "    enabled: yes\n", check=False)
    assert r.returncode != 0 and 'error: services "rng" is invalid' in r.stderr, r
    assert sh.json("kubectl get svc rng -o json")["spec"]["selector"] == {"app": "rng"}
    r = sh.edit("kubectl edit service rng", sel, sel + '    enabled: "yes"\n')
    assert r.stdout == "service/rng edited\n"
    assert sh.json("kubectl get svc rng -o json")["spec"]["selector"] == {"app": "rng", "enabled": "yes"}

    def ep_count(n):
        def f():
            ep = sh.json("kubectl get endpoints rng -o json")
            return len([a for s in ep.get("subsets") or [] for a in s.get("addresses") or []]) == n
        return f
    wait_for(ep_count(4), 15, "4 rng endpoints")
    pod = sh.out("kubectl get pod -l app=rng,pod-template-hash -o name").strip()
    assert re.fullmatch(rf"pod/rng-{POD_HASH}-{SUFFIX}", pod), pod
    assert sh.out("kubectl label pod -l app=rng,pod-template-hash enabled-") == f"{pod} unlabeled\n"
    wait_for(ep_count(3), 15, "the deployment's pod out of the rng endpoints")
    sh.out("kubectl label pod -l app=rng,pod-template-hash enabled=")
    err = sh.fails("kubectl label pod -l app=rng,pod-template-hash enabled=no")
    assert err == "error: 'enabled' already has a value (), and --overwrite is false\n", err
    assert sh.out("kubectl label pod -l app=rng,pod-template-hash enabled=yes --overwrite") == f"{pod} labeled\n"
    wait_for(ep_count(4), 15, "the pod back in the rng endpoints")

    # clean-up as in the course: the manifest, then the daemon set
    sh.write("dockercoins.yaml", dockercoins_yaml())
    out = sh.out("kubectl delete -f dockercoins.yaml")
    assert 'deployment.apps "rng" deleted' in out and 'service "webui" deleted' in out
    assert sh.out("kubectl delete daemonset/rng") == 'daemonset.apps "rng" deleted\n'


# -- YAML ------------------------------------------------------------------------------------------------


def test_generate_yaml_dry_run_and_diff(sh: Shell):
    r = sh.run("kubectl create deployment web --image nginx -o yaml --dry-run")
    assert r.stdout.startswith("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  creationTimestamp: null\n")
    r = sh.run("kubectl create namespace awesome-app -o yaml --dry-run=client")
    assert r.stdout == "apiVersion: v1\nkind: Namespace\nmetadata:\n  creationTimestamp: null\n  name: awesome-app\n" \
                       "spec: {}\nstatus: {}\n"
    sh.run("kubectl create deployment web --image=nginx -o yaml --dry-run=client > web.yaml")
    sh.write("web.yaml", sh.read("web.yaml").replace("kind: Deployment", "kind: DaemonSet"))
    client = sh.out("kubectl apply -f web.yaml --dry-run=client --validate=false -o yaml")
    assert "  replicas: 1\n" in client  # "The resulting YAML doesn't represent a valid DaemonSet."
    server = sh.out("kubectl apply -f web.yaml --dry-run=server --validate=false -o yaml")
    assert server.startswith("apiVersion: apps/v1\nkind: DaemonSet\n")
    assert "replicas:" not in server.split("\nspec:\n", 1)[1] and "\n  updateStrategy:\n" in server
    assert "\n  revisionHistoryLimit: 10\n" in server and "\n    type: RollingUpdate\n" in server
    assert "uid:" in server and "creationTimestamp: \"" in server
    err = sh.fails("kubectl get daemonset web")
    assert err == 'Error from server (NotFound): daemonsets.apps "web" not found\n', err

    sh.write("just-a-pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hello\nspec:\n  containers:\n"
                                "  - image: nginx\n    name: hello\n")
    assert sh.out("kubectl apply -f just-a-pod.yaml") == "pod/hello created\n"
    sh.write("just-a-pod.yaml", sh.read("just-a-pod.yaml").replace("image: nginx", "image: nginx:1.17"))
    r = sh.run("kubectl diff -f just-a-pod.yaml", check=False)
    assert r.returncode == 1, r
    assert "\n-  - image: nginx\n+  - image: nginx:1.17\n" in r.stdout, r.stdout
    assert re.search(r"^\+\+\+ /tmp/MERGED-\d+/v1\.Pod\.[\w-]+\.hello", r.stdout, re.M), r.stdout
    assert sh.json("kubectl get pod hello -o json")["spec"]["containers"][0]["image"] == "nginx"
    assert sh.out("kubectl delete -f just-a-pod.yaml") == 'pod "hello" deleted\n'


# -- Rolling updates --------------------------------------------------------------------------------------


def image_of(sh: Shell, name: str) -> str:
    return sh.json(f"kubectl get deploy {name} -o json")["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.mark.slow
@pytest.mark.conformance("Deployment RollingUpdate")
def test_rolling_updates_undo_history_patch(sh: Shell):
    deploy_dockercoins(sh)
    sh.out("kubectl scale deployment worker --replicas=10")
    sh.wait_pods("app=worker", 10)
    out = sh.out('kubectl get deploy -o json | jq -c ".items[] | {name:.metadata.name} + .spec.strategy.rollingUpdate"')
    assert out.splitlines()[-1] == '{"name":"worker","maxSurge":"25%","maxUnavailable":"25%"}'

    assert sh.out("kubectl set image deploy worker worker=dockercoins/worker:v0.2") == \
        "deployment.apps/worker image updated\n"
    assert sh.wait_deploy("worker").endswith('deployment "worker" successfully rolled out\n')

    # a version that does not exist: the rollout gets stuck, the app keeps 8 of 10
    sh.out("kubectl set image deploy worker worker=dockercoins/worker:v0.3")
    r = sh.run("kubectl rollout status deploy worker --timeout=5s", check=False, timeout=30)
    assert r.returncode == 1 and r.stderr == "error: timed out waiting for the condition\n", r

    def stuck():
        rss = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs
               for rs in sh.json("kubectl get rs -l app=worker -o json")["items"]}
        new, old = rss["dockercoins/worker:v0.3"], rss["dockercoins/worker:v0.2"]
        return (new["spec"]["replicas"], old["spec"]["replicas"], old["status"].get("readyReplicas")) == (5, 8, 8)
    wait_for(stuck, 30, "5 new and 8 old replicas (maxUnavailable=25%, maxSurge=25%)")
    statuses = {r["STATUS"] for r in table(sh.out("kubectl get pods"))[1]}
    assert statuses & {"ErrImagePull", "ImagePullBackOff"}, statuses
    desc = sh.out("kubectl describe deploy worker")
    assert re.search(r"^Replicas:\s+10 desired \| 5 updated \| 13 total \| 8 available \| 5 unavailable$", desc, re.M), desc
    assert re.search(r"^StrategyType:\s+RollingUpdate$", desc, re.M)
    assert re.search(r"^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$", desc, re.M)

    assert sh.out("kubectl rollout undo deploy worker") == "deployment.apps/worker rolled back\n"
    assert sh.wait_deploy("worker").endswith('deployment "worker" successfully rolled out\n')
    assert image_of(sh, "worker") == "dockercoins/worker:v0.2"
    sh.out("kubectl rollout undo deployment worker")  # "That didn't work." back to v0.3
    wait_for(lambda: image_of(sh, "worker") == "dockercoins/worker:v0.3", 10, "v0.3 again")
    sh.out("kubectl rollout undo deployment worker")
    assert sh.wait_deploy("worker").endswith("successfully rolled out\n")
    assert image_of(sh, "worker") == "dockercoins/worker:v0.2"

    hist = sh.out("kubectl rollout history deployment worker")
    lines = hist.splitlines()
    assert lines[0] == "deployment.apps/worker " and lines[1].split() == ["REVISION", "CHANGE-CAUSE"]
    revs = [int(ln.split()[0]) for ln in lines[2:] if ln.strip()]
    assert revs == [1, 5, 6], hist  # "We might see something like 1, 4, 5."
    ann = sh.out("kubectl describe replicasets -l app=worker | grep -A3 Annotations")
    assert "deployment.kubernetes.io/revision-history: 2,4" in ann, ann
    assert "deployment.kubernetes.io/revision-history: 3" in ann, ann

    assert sh.out("kubectl rollout undo deployment worker --to-revision=1") == "deployment.apps/worker rolled back\n"
    assert sh.wait_deploy("worker").endswith("successfully rolled out\n")
    assert image_of(sh, "worker") == "dockercoins/worker:v0.1"
    err = sh.fails("kubectl rollout undo deployment worker --to-revision=3")
    assert err == "error: unable to find specified revision 3 in history\n", err

    # the patch of the course: v0.2 -> v0.1 one pod at a time, each waiting minReadySeconds
    sh.out("kubectl set image deploy worker worker=dockercoins/worker:v0.2")
    sh.wait_deploy("worker")
    patch = """
spec:
  template:
    spec:
      containers:
      - name: worker
        image: dockercoins/worker:v0.1
  strategy:
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  minReadySeconds: 10
"""
    assert sh.out(f'kubectl patch deployment worker -p "{patch}"') == "deployment.apps/worker patched\n"
    out = sh.out('kubectl get deploy -o json worker | jq -c "{name: .metadata.name} + .spec.strategy.rollingUpdate"')
    assert out == '{"name":"worker","maxSurge":1,"maxUnavailable":0}\n'

    def step():
        d = sh.json("kubectl get deploy worker -o json")["status"]
        return d if d.get("updatedReplicas") == 1 else None
    st = wait_for(step, 10, "one new replica")
    assert st.get("availableReplicas") == 10 and st.get("replicas") == 11, st  # never below 10, never above 11
    # the new pod is Ready but not available for 10 s: the old set is not scaled down before that
    import time
    time.sleep(4)
    rss = sh.json("kubectl get rs -l app=worker -o json")["items"]
    old = [rs for rs in rss if rs["spec"]["template"]["spec"]["containers"][0]["image"] == "dockercoins/worker:v0.2"]
    assert old[0]["spec"]["replicas"] == 10, "old replicas scaled down before minReadySeconds elapsed"
    wait_for(lambda: sh.json("kubectl get deploy worker -o json")["status"].get("updatedReplicas", 0) >= 2, 20,
             "the second step after minReadySeconds")


# -- Healthchecks, ConfigMaps, Secrets ------------------------------------------------------------------


PROBES = """apiVersion: v1
kind: Pod
metadata:
  name: rng-with-liveness
spec:
  containers:
  - name: rng
    image: dockercoins/rng:v0.1
    livenessProbe:
      httpGet:
        path: /
        port: 80
      initialDelaySeconds: 10
      periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: redis-with-liveness
spec:
  containers:
  - name: redis
    image: redis
    livenessProbe:
      exec:
        command: ["redis-cli", "ping"]
"""


def test_liveness_probe_pods(sh: Shell):
    sh.write("probes.yaml", PROBES)
    assert sh.out("kubectl apply -f probes.yaml") == "pod/rng-with-liveness created\npod/redis-with-liveness created\n"
    d = sh.out("kubectl describe pod rng-with-liveness")
    assert re.search(r"^\s+Liveness:\s+http-get http://:80/ delay=10s timeout=1s period=1s #success=1 #failure=3$",
                     d, re.M), d
    d = sh.out("kubectl describe pod redis-with-liveness")
    assert re.search(r"^\s+Liveness:\s+exec \[redis-cli ping\] delay=0s timeout=1s period=10s #success=1 #failure=3$",
                     d, re.M), d
    wait_for(lambda: {(r["READY"], r["STATUS"]) for r in table(sh.out("kubectl get pods"))[1]} == {("1/1", "Running")},
             20, "both pods Running")
    names, rows = table(sh.out("kubectl get events"))
    assert names == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert {"pod/rng-with-liveness", "pod/redis-with-liveness"} <= {r["OBJECT"] for r in rows}
    assert "Scheduled" in {r["REASON"] for r in rows}


HAPROXY_CFG = """global
  daemon
  maxconn 256

defaults
  mode tcp
  timeout connect 5000ms
  timeout client 50000ms
  timeout server 50000ms

frontend the-frontend
  bind *:80
  default_backend the-backend

backend the-backend
  server google.com-80 google.com:80 maxconn 32 check
  server ibm.fr-80 ibm.fr:80 maxconn 32 check
"""

HAPROXY_POD = """apiVersion: v1
kind: Pod
metadata:
  name: haproxy
spec:
  volumes:
  - name: config
    configMap:
      name: haproxy
  containers:
  - name: haproxy
    image: haproxy
    volumeMounts:
    - name: config
      mountPath: /usr/local/etc/haproxy/
"""

REGISTRY_POD = """apiVersion: v1
kind: Pod
metadata:
  name: registry
spec:
  containers:
  - name: registry
    image: registry
    env:
    - name: REGISTRY_HTTP_ADDR
      valueFrom:
        configMapKeyRef:
          name: registry
          key: http.addr
"""


def test_configmaps_and_pods_using_them(sh: Shell):
    sh.write("haproxy.cfg", HAPROXY_CFG)
    assert sh.out("kubectl create configmap haproxy --from-file=haproxy.cfg") == "configmap/haproxy created\n"
    y = sh.out("kubectl get configmap haproxy -o yaml")
    assert y.startswith("apiVersion: v1\ndata:\n  haproxy.cfg: |\n    global\n      daemon\n"), y
    assert "\nkind: ConfigMap\n" in y
    sh.write("haproxy.yaml", HAPROXY_POD)
    assert sh.out("kubectl apply -f haproxy.yaml") == "pod/haproxy created\n"

    assert sh.out("kubectl create configmap registry --from-literal=http.addr=0.0.0.0:80") == \
        "configmap/registry created\n"
    y = sh.out("kubectl get configmap registry -o yaml")
    assert y.startswith("apiVersion: v1\ndata:\n  http.addr: 0.0.0.0:80\nkind: ConfigMap\n"), y
    sh.write("registry.yaml", REGISTRY_POD)
    assert sh.out("kubectl apply -f registry.yaml") == "pod/registry created\n"
    for name in ("haproxy", "registry"):
        wait_for(lambda n=name: sh.json(f"kubectl get pod {n} -o json")["status"].get("phase") == "Running", 20,
                 f"{name} Running")
        ip = sh.out(f"kubectl get pod {name} -o json | jq -r .status.podIP").strip()
        assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", ip)
        [row] = table(sh.out(f"kubectl get pod {name} -o wide"))[1]
        assert row["IP"] == ip

    # the other ways of the lecture
    sh.write("app-prod.conf", "color=blue\n")
    sh.run("mkdir -p config.d && echo a > config.d/one.conf && echo b > config.d/two.conf")
    sh.write("app.conf", "foreground=red\nbackground=blue\n")
    sh.out("kubectl create configmap my-app-config --from-file=app.conf")
    sh.out("kubectl create configmap my-app-config-2 --from-file=app.conf=app-prod.conf")
    sh.out("kubectl create configmap my-app-config-3 --from-file=config.d/")
    sh.out("kubectl create cm my-app-config-4 --from-env-file=app.conf")
    assert sh.json("kubectl get cm my-app-config-2 -o json")["data"] == {"app.conf": "color=blue\n"}
    assert sorted(sh.json("kubectl get cm my-app-config-3 -o json")["data"]) == ["one.conf", "two.conf"]
    assert sh.json("kubectl get cm my-app-config-4 -o json")["data"] == {"foreground": "red", "background": "blue"}
    names, rows = table(sh.out("kubectl get configmaps"))
    assert names == ["NAME", "DATA", "AGE"]
    data = {r["NAME"]: r["DATA"] for r in rows}
    assert data["my-app-config-3"] == "2" and data["kube-root-ca.crt"] == "1"

    # "Secrets are base64-encoded when shown with kubectl get secrets -o yaml"
    sh.out("kubectl create secret generic creds --from-literal=password=0pensesame!")
    y = sh.out("kubectl get secrets -o yaml")
    assert "    password: MHBlbnNlc2FtZSE=\n" in y and "  type: Opaque\n" in y, y
    assert sh.out("kubectl delete pod/haproxy pod/registry") == 'pod "haproxy" deleted\npod "registry" deleted\n'


# -- Ingress -----------------------------------------------------------------------------------------------


CHEESES = ("cheddar", "stilton", "wensleydale")


def ingress_yaml(version: str = "v1") -> str:
    docs = []
    for cheese in CHEESES:
        if version == "v1beta1":
            backend = f"          serviceName: {cheese}\n          servicePort: 80\n"
            path = "      - path: /\n        backend:\n" + backend
        else:
            backend = f"          service:\n            name: {cheese}\n            port:\n              number: 80\n"
            path = "      - path: /\n        pathType: Prefix\n        backend:\n" + backend
        docs.append(f"apiVersion: networking.k8s.io/{version}\nkind: Ingress\nmetadata:\n  name: {cheese}\nspec:\n"
                    f"  rules:\n  - host: {cheese}.127.0.0.1.nip.io\n    http:\n      paths:\n{path}")
    return "---\n".join(docs)


REDIRECT = """apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: my-google
  annotations:
    nginx.ingress.kubernetes.io/permanent-redirect: https://www.google.com
spec:
  rules:
  - http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: doesnotexist
            port:
              number: 80
"""


def test_ingress_cheeses(sh: Shell):
    for cheese in CHEESES:
        sh.out(f"kubectl create deployment {cheese} --image=errm/cheese:{cheese}")
        assert sh.out(f"kubectl expose deployment {cheese} --port=80") == f"service/{cheese} exposed\n"
    sh.write("ingress.yaml", ingress_yaml())
    assert sh.out("kubectl apply -f ingress.yaml") == "".join(
        f"ingress.networking.k8s.io/{c} created\n" for c in CHEESES)
    sh.write("redirect.yaml", REDIRECT)
    assert sh.out("kubectl apply -f redirect.yaml") == "ingress.networking.k8s.io/my-google created\n"
    names, rows = table(sh.out("kubectl get ingress"))
    assert names == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    got = {r["NAME"]: (r["CLASS"], r["HOSTS"], r["ADDRESS"], r["PORTS"]) for r in rows}
    assert got["cheddar"] == ("<none>", "cheddar.127.0.0.1.nip.io", "", "80")
    assert got["my-google"] == ("<none>", "*", "", "80")
    for cheese in CHEESES:
        sh.wait_pods(f"app={cheese}", 1)
    ip = sh.pods("app=cheddar")[0]["status"]["podIP"]

    def described():
        d = sh.out("kubectl describe ingress cheddar")
        return d if f"cheddar:80 ({ip}:80)" in d else None
    d = wait_for(described, 15, "the cheddar backend with its endpoint")
    assert d.startswith("Name:             cheddar\nLabels:           <none>\n"), d
    assert re.search(r"^\s+cheddar\.127\.0\.0\.1\.nip\.io\s*$", d, re.M) and "Ingress Class:    <none>" in d, d
    d = sh.out("kubectl describe ingress my-google")
    assert "nginx.ingress.kubernetes.io/permanent-redirect: https://www.google.com" in d, d
    assert re.search(r"^\s+\*\s*$", d, re.M) and re.search(r'doesnotexist:80 \(<error: \w+ "doesnotexist" not found>\)', d), d
    y = sh.out("kubectl get ingress/stilton -o yaml")
    assert y.startswith("apiVersion: networking.k8s.io/v1\nkind: Ingress\n") and "host: stilton.127.0.0.1.nip.io" in y
    assert y.endswith("status:\n  loadBalancer: {}\n"), y

    # the ingress controller's namespace and its LoadBalancer service (no cloud here: pending)
    sh.out("kubectl create namespace ingress-nginx-" + sh.namespace)
    ns = "ingress-nginx-" + sh.namespace
    sh.out(f"kubectl -n {ns} create deployment nginx-ingress-controller --image=nginx/nginx-ingress:1.6")
    sh.out(f"kubectl -n {ns} expose deployment nginx-ingress-controller --name ingress-nginx --type=LoadBalancer "
           "--port=80")
    row = table(sh.out(f"kubectl get svc -n {ns}"))[1][0]
    assert row["TYPE"] == "LoadBalancer" and row["EXTERNAL-IP"] == "<pending>" and row["PORT(S)"].startswith("80:")
    sh.out(f"kubectl describe -n {ns} deploy/nginx-ingress-controller")
    sh.out(f"kubectl delete namespace {ns} --wait=false")

    out = sh.out("kubectl delete -f ingress.yaml")
    assert out == "".join(f'ingress.networking.k8s.io "{c}" deleted\n' for c in CHEESES)
    out = sh.out("kubectl delete svc/cheddar svc/stilton svc/wensleydale")
    assert out == 'service "cheddar" deleted\nservice "stilton" deleted\nservice "wensleydale" deleted\n'
    sh.out("kubectl delete deploy/cheddar deploy/stilton deploy/wensleydale")


def test_ingress_v1beta1_manifest_of_the_course(sh: Shell):
    """The course's Ingress is networking.k8s.io/v1beta1, removed in 1.22: upstream's kubectl says so."""
    sh.write("ingress.yaml", ingress_yaml("v1beta1"))
    err = sh.fails("kubectl apply -f ingress.yaml")
    # three documents, three mapping errors: kubectl prints an aggregate one per line, without "error: "
    assert err.startswith('resource mapping not found for name: "cheddar" namespace: "" from "ingress.yaml": '
                          'no matches for kind "Ingress" in version "networking.k8s.io/v1beta1"\n'
                          'ensure CRDs are installed first\n'), err
    assert err.count("resource mapping not found") == 3, err
