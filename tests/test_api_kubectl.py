"""The API server as the real kubectl sees it: CRUD, output formats, errors, patches, apply."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports:
        - containerPort: 80
"""


def test_system_namespaces_exist(cluster):
    out = cluster.kubectl("get", "ns").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE"]
    names = {line.split()[0]: line.split()[1] for line in lines[1:]}
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert names[ns] == "Active"


@pytest.mark.conformance("Find Kubernetes Service in default Namespace")
def test_kubernetes_service_in_default(cluster):
    out = cluster.kubectl("get", "svc", "-A", "-o", "json").stdout
    items = json.loads(out)["items"]
    svc = next(s for s in items if s["metadata"]["name"] == "kubernetes")
    assert svc["metadata"]["namespace"] == "default"
    assert svc["spec"]["clusterIP"] == "10.43.0.1"
    assert svc["spec"]["ports"][0]["port"] == 443


@pytest.mark.conformance("Confirm a server version")
@pytest.mark.conformance("Kubectl, check version v1")
def test_version(cluster):
    out = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    server = out["serverVersion"]
    assert server["major"].isdigit() and server["minor"].isdigit()
    assert server["gitVersion"].startswith("v1.32.")


def test_create_get_describe_delete_deployment(cluster, ns):
    r = cluster.kubectl("-n", ns, "create", "deployment", "web", "--image=nginx", "--replicas=3")
    assert r.stdout.strip() == "deployment.apps/web created"
    out = cluster.kubectl("-n", ns, "get", "deploy").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert out[1].split()[:2] == ["web", "0/3"]
    wide = cluster.kubectl("-n", ns, "get", "deployments", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[5:] == ["nginx", "nginx", "app=web"]
    obj = json.loads(cluster.kubectl("-n", ns, "get", "deploy/web", "-o", "json").stdout)
    assert obj["spec"]["strategy"] == {"type": "RollingUpdate",
                                       "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert obj["spec"]["progressDeadlineSeconds"] == 600
    assert obj["metadata"]["generation"] == 1
    assert obj["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert cluster.kubectl("-n", ns, "get", "deploy", "-o", "name").stdout.strip() == "deployment.apps/web"
    assert cluster.kubectl("-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "3"
    cc = cluster.kubectl("-n", ns, "get", "deploy", "-o", "custom-columns=N:.metadata.name,R:.spec.replicas").stdout
    assert cc.split() == ["N", "R", "web", "3"]
    gt = cluster.kubectl("-n", ns, "get", "deploy", "web", "-o", "go-template", "--template",
                         "{{.metadata.name}}-{{.spec.replicas}}").stdout
    assert gt == "web-3"
    describe = cluster.kubectl("-n", ns, "describe", "deploy", "web").stdout
    assert re.search(r"Replicas:\s+3 desired", describe)
    assert "StrategyType:           RollingUpdate" in describe
    r = cluster.kubectl("-n", ns, "delete", "deploy", "web")
    assert r.stdout.strip() == 'deployment.apps "web" deleted'
    r = cluster.kubectl("-n", ns, "get", "deploy", "web", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == 'Error from server (NotFound): deployments.apps "web" not found'


def test_already_exists_errors(cluster, ns):
    cluster.kubectl("-n", ns, "create", "configmap", "c1", "--from-literal=a=b")
    r = cluster.kubectl("-n", ns, "create", "configmap", "c1", "--from-literal=a=b", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == 'error: failed to create configmap: configmaps "c1" already exists'
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c1\ndata:\n  a: b\n"
    r = cluster.kubectl("-n", ns, "create", "-f", "-", input=manifest, check=False)
    assert r.stderr.strip() == 'Error from server (AlreadyExists): error when creating "STDIN": configmaps "c1" already exists'


def test_invalid_object_is_rejected_with_field_errors(cluster, ns):
    bad = DEPLOY.replace("matchLabels: {app: web}", "matchLabels: {app: other}")
    r = cluster.kubectl("-n", ns, "create", "-f", "-", input=bad, check=False)
    assert r.returncode == 1
    assert 'The Deployment "web" is invalid' in r.stderr
    assert "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`" in r.stderr
    assert cluster.kubectl("-n", ns, "get", "deploy", "-o", "name").stdout.strip() == ""
    r = cluster.kubectl("-n", ns, "create", "deployment", "Bad_Name", "--image=nginx", check=False)
    assert r.returncode == 1
    assert "metadata.name: Invalid value: \"Bad_Name\"" in r.stderr


def test_malformed_manifest_is_bad_request(cluster, ns):
    r = cluster.kubectl("-n", ns, "create", "--validate=false", "-f", "-",
                        input="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: [1, 2\n", check=False)
    assert r.returncode == 1
    assert "error" in r.stderr.lower()
    assert cluster.kubectl("-n", ns, "get", "cm", "x", check=False).returncode == 1


@pytest.mark.conformance("Server side field validation, typed object")
def test_unknown_field_strict_validation(cluster, ns):
    bad = DEPLOY.replace("  replicas: 2", "  replicas: 2\n  replicaz: 3")
    r = cluster.kubectl("-n", ns, "create", "-f", "-", input=bad, check=False)
    assert r.returncode == 1
    assert 'strict decoding error: unknown field "spec.replicaz"' in r.stderr
    r = cluster.kubectl("-n", ns, "create", "--validate=warn", "-f", "-", input=bad, check=False)
    assert r.returncode == 0, r.stderr
    assert 'unknown field "spec.replicaz"' in r.stderr
    obj = json.loads(cluster.kubectl("-n", ns, "get", "deploy", "web", "-o", "json").stdout)
    assert "replicaz" not in obj["spec"]


def test_apply_twice_then_configure(cluster, ns):
    r = cluster.kubectl("-n", ns, "apply", "-f", "-", input=DEPLOY)
    assert r.stdout.strip() == "deployment.apps/web created"
    r = cluster.kubectl("-n", ns, "apply", "-f", "-", input=DEPLOY)
    assert r.stdout.strip() == "deployment.apps/web unchanged"
    r = cluster.kubectl("-n", ns, "apply", "-f", "-", input=DEPLOY.replace("replicas: 2", "replicas: 4"))
    assert r.stdout.strip() == "deployment.apps/web configured"
    obj = json.loads(cluster.kubectl("-n", ns, "get", "deploy", "web", "-o", "json").stdout)
    assert obj["spec"]["replicas"] == 4
    assert obj["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    # removing a container port from the manifest removes it from the object (3-way merge)
    no_ports = DEPLOY.replace("        ports:\n        - containerPort: 80\n", "")
    cluster.kubectl("-n", ns, "apply", "-f", "-", input=no_ports)
    obj = json.loads(cluster.kubectl("-n", ns, "get", "deploy", "web", "-o", "json").stdout)
    assert "ports" not in obj["spec"]["template"]["spec"]["containers"][0]


def test_server_side_apply_and_conflicts(cluster, ns):
    r = cluster.kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=DEPLOY)
    assert r.stdout.strip() == "deployment.apps/web serverside-applied"
    obj = json.loads(cluster.kubectl("-n", ns, "get", "deploy", "web", "-o", "json", "--show-managed-fields").stdout)
    managers = {m["manager"]: m["operation"] for m in obj["metadata"]["managedFields"]}
    assert managers.get("kubectl") == "Apply"
    cluster.kubectl("-n", ns, "scale", "deploy", "web", "--replicas=5")
    r = cluster.kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=DEPLOY, check=False)
    assert r.returncode == 1
    assert "Apply failed with 1 conflict" in r.stderr and ".spec.replicas" in r.stderr
    r = cluster.kubectl("-n", ns, "apply", "--server-side", "--force-conflicts", "-f", "-", input=DEPLOY)
    assert r.returncode == 0
    assert cluster.kubectl("-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "2"


def test_patch_kinds_label_annotate_scale_set_image(cluster, ns):
    cluster.kubectl("-n", ns, "apply", "-f", "-", input=DEPLOY)
    cluster.kubectl("-n", ns, "patch", "deploy", "web", "-p",
                    '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}')
    names = cluster.kubectl("-n", ns, "get", "deploy", "web", "-o",
                            "jsonpath={.spec.template.spec.containers[*].name}").stdout.split()
    assert sorted(names) == ["nginx", "sidecar"]  # strategic merge by name keeps nginx
    cluster.kubectl("-n", ns, "patch", "deploy", "web", "--type=merge", "-p", '{"spec":{"minReadySeconds":10}}')
    cluster.kubectl("-n", ns, "patch", "deploy", "web", "--type=json", "-p",
                    '[{"op":"replace","path":"/spec/replicas","value":7}]')
    obj = json.loads(cluster.kubectl("-n", ns, "get", "deploy", "web", "-o", "json").stdout)
    assert obj["spec"]["minReadySeconds"] == 10 and obj["spec"]["replicas"] == 7
    assert cluster.kubectl("-n", ns, "label", "deploy", "web", "tier=front").stdout.strip() == "deployment.apps/web labeled"
    r = cluster.kubectl("-n", ns, "label", "deploy", "web", "tier=back", check=False)
    assert r.returncode == 1 and "already has a value (front)" in r.stderr
    cluster.kubectl("-n", ns, "label", "deploy", "web", "tier=back", "--overwrite")
    cluster.kubectl("-n", ns, "annotate", "deploy", "web", "note=hello")
    assert cluster.kubectl("-n", ns, "get", "deploy", "-l", "tier=back", "-o", "name").stdout.strip() == "deployment.apps/web"
    assert cluster.kubectl("-n", ns, "get", "deploy", "-l", "tier notin (back)", "-o", "name").stdout.strip() == ""
    assert cluster.kubectl("-n", ns, "scale", "deploy", "web", "--replicas=3").stdout.strip() == "deployment.apps/web scaled"
    assert cluster.kubectl("-n", ns, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "3"
    r = cluster.kubectl("-n", ns, "set", "image", "deploy/web", "nginx=nginx:1.26")
    assert r.stdout.strip() == "deployment.apps/web image updated"
    images = cluster.kubectl("-n", ns, "get", "deploy", "web", "-o",
                             "jsonpath={.spec.template.spec.containers[?(@.name=='nginx')].image}").stdout
    assert images == "nginx:1.26"
    anns = json.loads(cluster.kubectl("-n", ns, "get", "deploy", "web", "-o", "jsonpath={.metadata.annotations}").stdout)
    assert anns["note"] == "hello"


@pytest.mark.conformance("Kubectl, server-side dry-run Pod")
def test_dry_run_server_changes_nothing(cluster, ns):
    cluster.kubectl("-n", ns, "run", "p1", "--image=nginx", "--restart=Never")
    r = cluster.kubectl("-n", ns, "patch", "pod", "p1", "--dry-run=server", "-p",
                        '{"spec":{"containers":[{"name":"p1","image":"busybox"}]}}')
    assert r.stdout.strip() == "pod/p1 patched"
    assert cluster.kubectl("-n", ns, "get", "pod", "p1", "-o", "jsonpath={.spec.containers[0].image}").stdout == "nginx"
    r = cluster.kubectl("-n", ns, "create", "configmap", "dry", "--from-literal=a=b", "--dry-run=server")
    assert r.stdout.strip() == "configmap/dry created (server dry run)"
    assert cluster.kubectl("-n", ns, "get", "cm", "dry", check=False).returncode == 1


def test_kubectl_diff(cluster, ns):
    cluster.kubectl("-n", ns, "apply", "-f", "-", input=DEPLOY)
    r = cluster.kubectl("-n", ns, "diff", "-f", "-", input=DEPLOY, check=False)
    assert r.returncode == 0 and r.stdout == ""
    r = cluster.kubectl("-n", ns, "diff", "-f", "-", input=DEPLOY.replace("replicas: 2", "replicas: 9"), check=False)
    assert r.returncode == 1
    assert "-  replicas: 2" in r.stdout and "+  replicas: 9" in r.stdout


@pytest.mark.conformance("Kubectl, replace")
def test_replace_and_conflict(cluster, ns):
    cluster.kubectl("-n", ns, "create", "configmap", "cfg", "--from-literal=k=v1")
    obj = json.loads(cluster.kubectl("-n", ns, "get", "cm", "cfg", "-o", "json").stdout)
    stale = json.loads(json.dumps(obj))
    obj["data"]["k"] = "v2"
    cluster.kubectl("-n", ns, "replace", "-f", "-", input=json.dumps(obj))
    stale["data"]["k"] = "v3"
    r = cluster.kubectl("-n", ns, "replace", "-f", "-", input=json.dumps(stale), check=False)
    assert r.returncode == 1
    assert ('Operation cannot be fulfilled on configmaps "cfg": the object has been modified; please apply your '
            "changes to the latest version and try again") in r.stderr
    assert cluster.kubectl("-n", ns, "get", "cm", "cfg", "-o", "jsonpath={.data.k}").stdout == "v2"


def test_edit_with_editor(cluster, ns, tmp_path):
    cluster.kubectl("-n", ns, "create", "configmap", "ed", "--from-literal=k=old")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/k: old/k: new/' \"$1\"\n")
    editor.chmod(0o755)
    env = dict(os.environ, KUBE_EDITOR=str(editor))
    r = subprocess.run(["kubectl", "--kubeconfig", cluster.kubeconfig, "-n", ns, "edit", "cm", "ed"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "configmap/ed edited"
    assert cluster.kubectl("-n", ns, "get", "cm", "ed", "-o", "jsonpath={.data.k}").stdout == "new"


def test_generate_name_and_output_yaml(cluster, ns):
    r = cluster.kubectl("-n", ns, "create", "-o", "yaml", "-f", "-",
                        input="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\n")
    obj = yaml.safe_load(r.stdout)
    assert re.fullmatch(r"gen-[a-z0-9]{5}", obj["metadata"]["name"])
    assert obj["metadata"]["uid"] and obj["metadata"]["resourceVersion"] and obj["metadata"]["creationTimestamp"]


@pytest.mark.conformance("API Chunking, server should return chunks of results for list calls")
def test_list_paging(cluster, ns):
    for i in range(7):
        cluster.kubectl("-n", ns, "create", "configmap", f"page-{i}")
    api = cluster.api_client()
    from kubernetes import client

    v1 = client.CoreV1Api(api)
    first = v1.list_namespaced_config_map(ns, limit=3)
    names = [c.metadata.name for c in first.items]
    assert len(names) == 3
    assert first.metadata._continue
    # kube-root-ca.crt may or may not be there: count what a full list says
    total = len(v1.list_namespaced_config_map(ns).items)
    assert first.metadata.remaining_item_count == total - 3
    rv = first.metadata.resource_version
    cont = first.metadata._continue
    while cont:
        page = v1.list_namespaced_config_map(ns, limit=3, _continue=cont)
        assert len(page.items) <= 3
        assert page.metadata.resource_version == rv
        names += [c.metadata.name for c in page.items]
        cont = page.metadata._continue
    assert len(names) == total and len(set(names)) == total
    assert cluster.kubectl("-n", ns, "get", "cm", "--chunk-size=2", "-o", "name").stdout.count("configmap/") == total


def test_field_selectors(cluster, ns):
    cluster.kubectl("-n", ns, "create", "configmap", "fs-a")
    cluster.kubectl("-n", ns, "create", "configmap", "fs-b")
    out = cluster.kubectl("-n", ns, "get", "cm", "--field-selector", "metadata.name=fs-b", "-o", "name").stdout
    assert out.strip() == "configmap/fs-b"
    out = cluster.kubectl("get", "-A", "cm", "--field-selector", f"metadata.namespace={ns},metadata.name!=fs-b",
                          "-o", "name").stdout
    assert "configmap/fs-a" in out and "fs-b" not in out
    r = cluster.kubectl("-n", ns, "get", "cm", "--field-selector", "spec.foo=bar", check=False)
    assert r.returncode == 1
    assert '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"' in r.stderr
    r = cluster.kubectl("-n", ns, "get", "pods", "--field-selector", "spec.foo=bar", check=False)
    assert r.returncode == 1 and "field label not supported: spec.foo" in r.stderr


def test_unauthenticated_request_is_401(cluster):
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=os.path.join(cluster.data_dir, "tls", "ca.crt"))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(cluster.url + "/api/v1/namespaces", context=ctx)
    assert e.value.code == 401
    body = json.loads(e.value.read())
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized"


def test_api_resources_short_names(cluster):
    out = cluster.kubectl("api-resources").stdout
    rows: dict[str, list[str]] = {}
    for line in out.splitlines()[1:]:  # the first of a name: core's pods and nodes, not metrics.k8s.io's
        rows.setdefault(line.split()[0], line.split())
    assert rows["deployments"][1] == "deploy"
    assert rows["pods"][1] == "po"
    assert rows["services"][1] == "svc"
    assert rows["cronjobs"][1] == "cj"
    for short in ("no", "ns", "cm", "rs", "ds", "sts", "ing", "ep", "ev", "sa", "pvc", "pv", "quota", "limits", "pdb", "pc"):
        assert short in out.split(), short
    assert cluster.kubectl("get", "no").returncode == 0


def test_explain(cluster):
    out = cluster.kubectl("explain", "deployment.spec.strategy.rollingUpdate").stdout
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out
    assert "maxSurge\t<IntOrString>" in out and "maxUnavailable\t<IntOrString>" in out
    out = cluster.kubectl("explain", "pod", "--recursive").stdout
    assert "containers\t<[]Container> -required-" in out


def test_services_get_cluster_ips_and_node_ports(cluster, ns):
    cluster.kubectl("-n", ns, "create", "service", "clusterip", "a", "--tcp=80:8080")
    cluster.kubectl("-n", ns, "create", "service", "nodeport", "b", "--tcp=80:8080")
    a = json.loads(cluster.kubectl("-n", ns, "get", "svc", "a", "-o", "json").stdout)
    b = json.loads(cluster.kubectl("-n", ns, "get", "svc", "b", "-o", "json").stdout)
    assert a["spec"]["clusterIP"].startswith("10.43.") and a["spec"]["clusterIP"] != b["spec"]["clusterIP"]
    np = b["spec"]["ports"][0]["nodePort"]
    assert 30000 <= np <= 32767
    lines = cluster.kubectl("-n", ns, "get", "svc").stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    row_b = next(line.split() for line in lines if line.startswith("b "))
    assert row_b[1] == "NodePort" and row_b[3] == "<none>" and row_b[4] == f"80:{np}/TCP"
    dup = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"},
           "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": np}]}}
    r = cluster.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(dup), check=False)
    assert r.returncode == 1
    assert f"spec.ports[0].nodePort: Invalid value: {np}: provided port is already allocated" in r.stderr
    same_ip = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "d"},
               "spec": {"clusterIP": a["spec"]["clusterIP"], "ports": [{"port": 80}]}}
    r = cluster.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(same_ip), check=False)
    assert r.returncode == 1 and "provided IP is already allocated" in r.stderr
    # a deleted service's node port can be reused
    cluster.kubectl("-n", ns, "delete", "svc", "b")
    cluster.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(dup))


def test_immutable_configmap(cluster, ns):
    cluster.kubectl("-n", ns, "apply", "-f", "-",
                    input="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\ndata:\n  a: b\n")
    r = cluster.kubectl("-n", ns, "patch", "cm", "frozen", "-p", '{"data":{"a":"c"}}', check=False)
    assert r.returncode == 1
    assert "field is immutable when `immutable` is set" in r.stderr


def test_pod_graceful_deletion_keeps_object_until_node_confirms(cluster, ns):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "g"},
           "spec": {"nodeName": "no-such-node", "containers": [{"name": "c", "image": "busybox"}]}}
    cluster.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(pod))
    cluster.kubectl("-n", ns, "delete", "pod", "g", "--wait=false")
    obj = json.loads(cluster.kubectl("-n", ns, "get", "pod", "g", "-o", "json").stdout)
    assert obj["metadata"]["deletionTimestamp"] and obj["metadata"]["deletionGracePeriodSeconds"] == 30
    assert "Terminating" in cluster.kubectl("-n", ns, "get", "pod", "g").stdout
    cluster.kubectl("-n", ns, "delete", "pod", "g", "--force", "--grace-period=0")
    assert cluster.kubectl("-n", ns, "get", "pod", "g", check=False).returncode == 1


def test_finalizers_hold_deletion(cluster, ns):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    cluster.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(cm))
    cluster.kubectl("-n", ns, "delete", "cm", "held", "--wait=false")
    obj = json.loads(cluster.kubectl("-n", ns, "get", "cm", "held", "-o", "json").stdout)
    assert obj["metadata"]["deletionTimestamp"]
    cluster.kubectl("-n", ns, "patch", "cm", "held", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]')
    assert cluster.kubectl("-n", ns, "get", "cm", "held", check=False).returncode == 1
