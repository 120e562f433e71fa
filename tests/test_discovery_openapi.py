"""Discovery, OpenAPI v3 and strict field decoding, checked with the real kubectl.

Given an API server that serves kubelite's discovery and OpenAPI routes, when a user runs
`kubectl api-resources`, `kubectl api-versions` or `kubectl explain`, then they see what upstream
1.32 prints. Until the full server lands, `api_server` is a minimal aiohttp app with only those routes
and a small test registry (HTTP on 127.0.0.1); swapping in the real server means changing that fixture.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
from aiohttp import web

from kubelite.api import errors, schema, structural
from kubelite.api.openapi import OpenAPIService, convert_definition
from kubelite.api.registry import Registry, Resource, ScaleSpec
from kubelite.apiserver.discovery import add_discovery_routes, storage_version_hash

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def _res(group: str, version: str, kind: str, plural: str, namespaced: bool = True, **kw) -> Resource:
    return Resource(group=group, version=version, kind=kind, plural=plural, namespaced=namespaced,
                    definition=schema.definition_for_kind(group, version, kind) or "", **kw)


def test_registry() -> Registry:
    """A few kinds as the kind modules will register them (used until default_registry() is complete)."""
    reg = Registry()
    for r in (
        _res("", "v1", "Pod", "pods", short_names=("po",), categories=("all",),
             subresources=("attach", "binding", "ephemeralcontainers", "eviction", "exec", "log", "portforward",
                           "proxy", "status")),
        _res("", "v1", "Namespace", "namespaces", False, short_names=("ns",), subresources=("finalize", "status"),
             verbs=("create", "delete", "get", "list", "patch", "update", "watch")),
        _res("", "v1", "Service", "services", short_names=("svc",), categories=("all",),
             subresources=("proxy", "status")),
        _res("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
        _res("", "v1", "Node", "nodes", False, short_names=("no",), subresources=("proxy", "status")),
        _res("apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=("all",),
             subresources=("scale", "status"), scale=ScaleSpec()),
        _res("apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=("all",),
             subresources=("scale", "status")),
        _res("batch", "v1", "Job", "jobs", categories=("all",), subresources=("status",)),
        _res("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ):
        reg.register(r)
    return reg


test_registry.__test__ = False  # a helper, not a test


def registry_under_test() -> Registry:
    """default_registry() once the kind modules are in, the test registry until then."""
    try:
        from kubelite.api.registry import default_registry

        reg = default_registry()
        if reg.by_kind("apps", "v1", "Deployment") and reg.by_kind("", "v1", "Pod"):
            return reg
    except Exception:  # kind modules still being written
        pass
    return test_registry()


def minimal_app(registry: Registry) -> web.Application:
    app = web.Application()
    add_discovery_routes(app, registry)
    OpenAPIService(registry).add_routes(app)
    return app


@dataclass
class Server:
    url: str
    kubeconfig: str

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        cache = os.path.join(os.path.dirname(self.kubeconfig), "cache")
        r = subprocess.run([KUBECTL, "--cache-dir", cache, *args], capture_output=True, text=True, env=env,
                           timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory) -> Iterator[Server]:
    """The minimal discovery+OpenAPI app on plain HTTP in a background thread (swap for the real cluster later)."""
    port = _free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(minimal_app(registry_under_test()))
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    d = tmp_path_factory.mktemp("kube")
    kubeconfig = d / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
        f"    server: http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n"
        "current-context: c\nusers:\n- name: u\n  user: {}\n")
    yield Server(f"http://127.0.0.1:{port}", str(kubeconfig))
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


# ---------------------------------------------------------------------------------------------
# Discovery


def test_api_versions_lists_every_group_version(api_server: Server):
    out = api_server.kubectl("api-versions").stdout.split()
    assert out == sorted(out)
    assert {"v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1"} <= set(out)


def test_api_resources_prints_upstream_columns(api_server: Server):
    out = api_server.kubectl("api-resources").stdout.splitlines()
    assert out[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    rows: dict[str, list[str]] = {}
    for line in out[1:]:  # the first of a name: core's pods and nodes, not metrics.k8s.io's
        rows.setdefault(line.split()[0], line.split())
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert rows["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert rows["clusterroles"] == ["clusterroles", "rbac.authorization.k8s.io/v1", "false", "ClusterRole"]
    # subresources are not resources of their own
    assert not any("/" in name for name in rows)
    # core first, then groups alphabetically, as upstream's kubectl sorts
    names = [line.split()[0] for line in out[1:]]
    assert names.index("pods") < names.index("deployments") < names.index("jobs")


def test_api_resources_filters_by_verb_and_category(api_server: Server):
    out = api_server.kubectl("api-resources", "--namespaced=false", "-o", "name").stdout.split()
    assert "namespaces" in out and "pods" not in out
    wide = api_server.kubectl("api-resources", "--api-group=apps", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-2:] == ["VERBS", "CATEGORIES"]
    deploy = next(line for line in wide if line.startswith("deployments"))
    assert " create,delete,deletecollection,get,list,patch,update,watch " in deploy
    assert deploy.rstrip().endswith("all")


def test_kubectl_uses_aggregated_discovery(api_server: Server):
    r = api_server.kubectl("get", "--raw", "/apis/apps/v1")
    doc = orjson.loads(r.stdout)
    assert doc["kind"] == "APIResourceList" and doc["apiVersion"] == "v1" and doc["groupVersion"] == "apps/v1"
    by_name = {e["name"]: e for e in doc["resources"]}
    assert by_name["deployments/scale"] == {"name": "deployments/scale", "singularName": "", "namespaced": True,
                                            "group": "autoscaling", "version": "v1", "kind": "Scale",
                                            "verbs": ["get", "patch", "update"]}
    assert by_name["deployments"]["storageVersionHash"] == "8aSe+NMegvE="
    core = orjson.loads(api_server.kubectl("get", "--raw", "/api/v1").stdout)
    assert "apiVersion" not in core
    names = {e["name"]: e for e in core["resources"]}
    assert names["pods/log"]["kind"] == "Pod" and names["pods/log"]["verbs"] == ["get"]
    assert names["pods/eviction"]["group"] == "policy" and names["pods/eviction"]["kind"] == "Eviction"
    assert names["pods/exec"]["kind"] == "PodExecOptions"
    assert names["pods"]["storageVersionHash"] == storage_version_hash("", "v1", "Pod") == "xPOwRZ+Yhw8="
    version = orjson.loads(api_server.kubectl("get", "--raw", "/version").stdout)
    assert (version["major"], version["minor"]) == ("1", "32")
    out = api_server.kubectl("version", "-o", "json").stdout
    assert orjson.loads(out)["serverVersion"]["gitVersion"].startswith("v1.32.")


def test_aggregated_discovery_document_shape(api_server: Server):
    import urllib.request

    req = urllib.request.Request(api_server.url + "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                  "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"})
    with urllib.request.urlopen(req) as resp:
        assert resp.headers["Content-Type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        doc = orjson.loads(resp.read())
    assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    apps = next(g for g in doc["items"] if g["metadata"].get("name") == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert deploy["scope"] == "Namespaced" and deploy["singularResource"] == "deployment"
    assert {s["subresource"]: s["responseKind"]["kind"] for s in deploy["subresources"]} == {
        "scale": "Scale", "status": "Deployment"}
    with urllib.request.urlopen(api_server.url + "/apis") as resp:
        assert resp.headers["Content-Type"] == "application/json"
        assert orjson.loads(resp.read())["kind"] == "APIGroupList"


# ---------------------------------------------------------------------------------------------
# OpenAPI v3 and kubectl explain


def test_explain_rolling_update_prints_upstream_types(api_server: Server):
    out = api_server.kubectl("explain", "deployment.spec.strategy.rollingUpdate").stdout
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\n")
    assert "FIELD: rollingUpdate <RollingUpdateDeployment>" in out
    assert "Spec to control the desired behavior of rolling update." in out
    assert "  maxSurge\t<IntOrString>\n" in out
    assert "  maxUnavailable\t<IntOrString>\n" in out


def test_explain_pod_recursive(api_server: Server):
    out = api_server.kubectl("explain", "pod", "--recursive").stdout
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n\n")
    assert "  metadata\t<ObjectMeta>\n" in out
    assert "    containers\t<[]Container> -required-\n" in out
    assert "      image\t<string>\n" in out
    assert "        containerPort\t<integer> -required-\n" in out
    assert "        limits\t<map[string]Quantity>\n" in out
    assert "    nodeSelector\t<map[string]string>\n" in out
    assert "    creationTimestamp\t<string>\n" in out


def test_explain_service_ports(api_server: Server):
    out = api_server.kubectl("explain", "svc.spec.ports").stdout
    assert "FIELD: ports <[]ServicePort>" in out
    assert "  port\t<integer> -required-\n    The port that will be exposed by this service." in out
    assert "  targetPort\t<IntOrString>\n" in out
    assert "  protocol\t<string>\n" in out


def test_explain_unknown_field_is_an_error(api_server: Server):
    r = api_server.kubectl("explain", "deployment.spec.nosuch", check=False)
    assert r.returncode != 0
    assert 'field "nosuch" does not exist' in r.stderr


def test_kubectl_validates_on_the_server_and_never_reads_openapi_v2(api_server: Server, tmp_path):
    manifest = tmp_path / "d.yaml"
    manifest.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  selector:\n"
                        "    matchLabels: {app: x}\n  template:\n    metadata: {labels: {app: x}}\n    spec:\n"
                        "      containers: [{name: x, image: busybox}]\n")
    r = api_server.kubectl("create", "-f", str(manifest), "-v=6", check=False)
    requests = [line for line in r.stderr.splitlines() if "round_trippers" in line]
    assert any("POST" in line and "fieldValidation=Strict" in line for line in requests), r.stderr
    assert not any("/openapi/v2" in line for line in requests)


def test_every_patch_operation_lists_field_validation():
    """kubectl validates on the server (and never asks /openapi/v2) only if every PATCH of a kind says so."""
    svc = OpenAPIService(test_registry())
    for path in svc.paths():
        doc = orjson.loads(svc.document(path))
        for p, item in doc["paths"].items():
            for method, op in item.items():
                if method == "parameters":
                    continue
                assert isinstance(op["x-kubernetes-group-version-kind"], dict), p
                if method == "patch" and op["x-kubernetes-action"] == "patch":
                    assert any(x["name"] == "fieldValidation" and x["in"] == "query" for x in op["parameters"]), p
        refs = {m.decode() for m in _all_refs(doc)}
        assert refs <= {"#/components/schemas/" + k for k in doc["components"]["schemas"]}


def _all_refs(node) -> list[bytes]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                out.append(v.encode())
            else:
                out.extend(_all_refs(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(_all_refs(v))
    return out


def test_openapi_index_hash_and_caching(api_server: Server):
    index = orjson.loads(api_server.kubectl("get", "--raw", "/openapi/v3").stdout)
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=") and len(url.split("=")[1]) == 128
    import urllib.request

    with urllib.request.urlopen(api_server.url + url) as resp:
        assert "immutable" in resp.headers["Cache-Control"]
        doc = orjson.loads(resp.read())
    assert doc["openapi"] == "3.0.0"
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    r = api_server.kubectl("get", "--raw", "/openapi/v2", check=False)
    assert r.returncode == 0 and orjson.loads(r.stdout)["swagger"] == "2.0"


def test_schema_conversion_matches_upstream_flavour():
    dep = convert_definition("io.k8s.api.apps.v1.Deployment")
    assert dep["type"] == "object"
    assert dep["properties"]["kind"] == {"description": dep["properties"]["kind"]["description"], "type": "string"}
    assert dep["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    assert dep["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    ios = convert_definition("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
    assert ios["format"] == "int-or-string" and ios["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    spec = convert_definition("io.k8s.api.core.v1.PodSpec")
    assert spec["required"] == ["containers"]
    assert spec["properties"]["containers"]["x-kubernetes-patch-merge-key"] == "name"
    assert spec["properties"]["containers"]["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}


# ---------------------------------------------------------------------------------------------
# Strict decoding (fieldValidation)

DEPLOY = "io.k8s.api.apps.v1.Deployment"

INVALID_JSON = b"""{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "dupename", "name": "x", "labels": {"app": "nginx"}, "unknownMeta": "metaVal"},
  "spec": {
    "unknown1": "val1", "unknownDupe": "valDupe", "unknownDupe": "valDupe2", "paused": true, "paused": false,
    "selector": {"matchLabels": {"app": "nginx"}},
    "template": {"metadata": {"labels": {"app": "nginx"}},
      "spec": {"containers": [{"name": "nginx", "image": "nginx:latest", "unknownNested": "val1",
                               "imagePullPolicy": "Always", "imagePullPolicy": "Never"}]}}}}"""

INVALID_YAML = b"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: dupename
  name: x
  unknownMeta: metaVal
  labels:
    app: nginx
spec:
  unknown1: val1
  unknownDupe: valDupe
  unknownDupe: valDupe2
  paused: true
  paused: false
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:latest
        unknownNested: val1
        imagePullPolicy: Always
        imagePullPolicy: Never"""


def test_strict_json_reports_upstream_message_in_document_order():
    with pytest.raises(errors.StatusError) as e:
        structural.decode_and_check(DEPLOY, INVALID_JSON, "application/json", "Strict")
    assert e.value.code == 400 and e.value.reason == "BadRequest"
    assert e.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'duplicate field "metadata.name", unknown field "metadata.unknownMeta", unknown field "spec.unknown1", '
        'unknown field "spec.unknownDupe", duplicate field "spec.paused", '
        'unknown field "spec.template.spec.containers[0].unknownNested", '
        'duplicate field "spec.template.spec.containers[0].imagePullPolicy"')


def test_strict_yaml_reports_lines_then_sorted_unknown_fields():
    with pytest.raises(errors.StatusError) as e:
        structural.decode_and_check(DEPLOY, INVALID_YAML, "application/yaml", "Strict")
    assert e.value.message.endswith(
        'strict decoding error: yaml: unmarshal errors:\n'
        '  line 5: key "name" already set in map\n'
        '  line 12: key "unknownDupe" already set in map\n'
        '  line 14: key "paused" already set in map\n'
        '  line 28: key "imagePullPolicy" already set in map, unknown field "metadata.unknownMeta", '
        'unknown field "spec.template.spec.containers[0].unknownNested", unknown field "spec.unknown1", '
        'unknown field "spec.unknownDupe"')


def test_warn_keeps_last_duplicate_drops_unknown_and_warns():
    obj, warnings = structural.decode_and_check(DEPLOY, INVALID_JSON, "application/json", "Warn")
    assert warnings[:2] == ['duplicate field "metadata.name"', 'unknown field "metadata.unknownMeta"']
    assert len(warnings) == 7
    assert obj["metadata"]["name"] == "x" and "unknownMeta" not in obj["metadata"]
    assert obj["spec"]["paused"] is False and "unknown1" not in obj["spec"]
    assert "unknownNested" not in obj["spec"]["template"]["spec"]["containers"][0]
    assert structural.warning_header('unknown field "spec.foo"') == '299 - "unknown field \\"spec.foo\\""'


def test_ignore_is_silent_but_still_drops_unknown_fields():
    obj, warnings = structural.decode_and_check(DEPLOY, INVALID_JSON, "application/json", "Ignore")
    assert warnings == []
    assert "unknown1" not in obj["spec"] and obj["spec"]["template"]["spec"]["containers"][0]["image"]


def test_unknown_fields_paths_and_free_form_fields():
    obj = {"metadata": {"name": "a", "annotations": {"x": "y"}, "managedFields": [{"fieldsV1": {"f:a": {}}}]},
           "spec": {"templat": {}, "replicas": 1,
                    "template": {"spec": {"containers": [{"name": "a"}, {"name": "b", "imagee": "x"}]}},
                    "strategy": {"rollingUpdate": {"maxSurge": "25%"}}}}
    assert structural.unknown_fields(DEPLOY, obj) == [
        'unknown field "spec.templat"', 'unknown field "spec.template.spec.containers[1].imagee"']


def test_type_errors_worded_as_go_json():
    obj = {"spec": {"replicas": "3", "template": {"spec": {"containers": [{"name": "a", "ports": [
        {"containerPort": "80"}]}]}}}}
    errs = structural.type_errors(DEPLOY, obj)
    assert errs[0] == "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    assert errs[1] == ("json: cannot unmarshal string into Go struct field "
                       "ContainerPort.spec.template.spec.containers.ports.containerPort of type int32")
    with pytest.raises(errors.StatusError) as e:
        structural.decode_and_check(DEPLOY, orjson.dumps(obj), "application/json", "Strict")
    assert e.value.message == ('Deployment in version "v1" cannot be handled as a Deployment: json: cannot '
                               'unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32')
    assert structural.type_errors(DEPLOY, {"spec": {"replicas": None, "strategy": {"rollingUpdate": {
        "maxSurge": 1}}}}) == []
    assert structural.type_errors(DEPLOY, {"metadata": {"labels": {"a": 1}}}) == [
        "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"]


def test_malformed_bodies_are_bad_requests():
    with pytest.raises(errors.StatusError) as e:
        structural.decode_strict(b'{"a": ', "application/json")
    assert e.value.code == 400 and "unexpected end of JSON input" in e.value.message
    with pytest.raises(errors.StatusError) as e:
        structural.decode_strict(b"a: b: c", "application/yaml")
    assert e.value.code == 400 and "yaml: line 1:" in e.value.message


def test_patch_strict_is_invalid_on_the_patched_object():
    patch, dups = structural.decode_strict(
        b'{"spec": {"unknownDupe": 1, "unknownDupe": 2, "paused": true, "paused": false, "unknown1": 1}}',
        "application/merge-patch+json")
    assert dups == ['duplicate field "spec.unknownDupe"', 'duplicate field "spec.paused"']
    merged = {"metadata": {"name": "d"}, "spec": dict(patch["spec"], replicas=1)}
    with pytest.raises(errors.StatusError) as e:
        structural.check_patched(DEPLOY, merged, "Strict", dups)
    assert e.value.code == 422
    assert e.value.message.endswith(
        'strict decoding error: duplicate field "spec.unknownDupe", duplicate field "spec.paused", '
        'unknown field "spec.unknown1", unknown field "spec.unknownDupe"')
    obj, warnings = structural.check_patched(DEPLOY, merged, "Warn", dups)
    assert obj["spec"] == {"paused": False, "replicas": 1} and len(warnings) == 4
