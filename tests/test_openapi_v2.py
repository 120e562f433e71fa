"""OpenAPI v2 (/openapi/v2), checked with the real kubectl and by decoding what the server sends.

Given a kubelite cluster, when a user applies or creates a `kind: List` manifest (what `kubectl get
-o yaml` prints), then kubectl 1.32 validates each item client-side against the protobuf OpenAPI v2
document: valid lists go through, and a bad item fails the command with upstream's ValidationError
text before anything is written. Single objects keep validating on the server and never fetch v2.
"""

from __future__ import annotations

import gzip
import json
import os
import ssl
import urllib.error
import urllib.request

import yaml

PROTO = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
PROTO_DOT = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _configmap(name: str, ns: str, **extra) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": {"k": name}, **extra}


def _list_file(tmp_path, name: str, *items: dict) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": list(items)}))
    return str(path)


def _configmaps(cluster, ns: str) -> set[str]:
    items = json.loads(cluster.kubectl("get", "configmaps", "-n", ns, "-o", "json").stdout)["items"]
    return {i["metadata"]["name"] for i in items} - {"kube-root-ca.crt"}


def _requests(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "round_trippers" in line]


# ---------------------------------------------------------------------------------------------
# kubectl


def test_kubectl_apply_of_a_list_validates_against_openapi_v2(cluster, ns, tmp_path):
    f = _list_file(tmp_path, "list.yaml", _configmap("a", ns), _configmap("b", ns))
    r = cluster.kubectl("apply", "-f", f, "-v=6", f"--cache-dir={tmp_path / 'cache'}")
    assert any("/openapi/v2" in line and " 200 OK" in line for line in _requests(r.stderr)), r.stderr
    assert "configmap/a created" in r.stdout and "configmap/b created" in r.stdout
    assert _configmaps(cluster, ns) == {"a", "b"}
    # again: unchanged, and with --validate=strict spelled out
    r = cluster.kubectl("apply", "--validate=strict", "-f", f)
    assert r.stdout.splitlines() == ["configmap/a unchanged", "configmap/b unchanged"]


def test_unknown_field_in_a_list_item_fails_client_side_and_writes_nothing(cluster, ns, tmp_path):
    f = _list_file(tmp_path, "bad.yaml", _configmap("ok", ns), _configmap("bad", ns, datax={"c": "3"}))
    for verb in ("apply", "create"):
        r = cluster.kubectl(verb, "-f", f, check=False)
        assert r.returncode == 1
        assert r.stderr.strip() == (
            f'error: error validating "{f}": error validating data: ValidationError(ConfigMap): unknown field '
            '"datax" in io.k8s.api.core.v1.ConfigMap; if you choose to ignore these errors, turn validation off '
            "with --validate=false")
    assert _configmaps(cluster, ns) == set()
    # --validate=false skips the client-side check (the server then drops the field)
    cluster.kubectl("apply", "--validate=false", "-f", f)
    assert _configmaps(cluster, ns) == {"ok", "bad"}


def test_list_items_are_checked_deeply_with_upstream_messages(cluster, ns, tmp_path):
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": ns},
              "spec": {"replicas": "two", "selector": {"matchLabels": {"app": "d"}},
                       "template": {"metadata": {"labels": {"app": "d"}},
                                    "spec": {"containers": [{"image": "busybox",
                                                             "resources": {"limits": {"cpu": 1}}}]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": ns},
           "spec": {"ports": [{"port": 80, "targetPort": "http"}], "bogus": 1}}
    r = cluster.kubectl("create", "-f", _list_file(tmp_path, "l.yaml", deploy, svc), check=False)
    assert r.returncode == 1
    assert ('ValidationError(Deployment.spec.replicas): invalid type for io.k8s.api.apps.v1.DeploymentSpec.replicas: '
            'got "string", expected "integer"') in r.stderr
    assert ('ValidationError(Deployment.spec.template.spec.containers[0]): missing required field "name" in '
            "io.k8s.api.core.v1.Container") in r.stderr
    assert 'ValidationError(Service.spec): unknown field "bogus" in io.k8s.api.core.v1.ServiceSpec' in r.stderr
    # fixed: IntOrString (targetPort) and Quantity (cpu: 1) accept both forms
    deploy["spec"]["replicas"] = 2
    deploy["spec"]["template"]["spec"]["containers"][0]["name"] = "c"
    del svc["spec"]["bogus"]
    r = cluster.kubectl("create", "-f", _list_file(tmp_path, "l.yaml", deploy, svc))
    assert r.stdout.splitlines() == ["deployment.apps/d created", "service/s created"]


def test_what_kubectl_get_prints_applies_back(cluster, ns, tmp_path):
    cluster.kubectl("create", "deployment", "web", "--image=busybox", "--replicas=2", "-n", ns)
    cluster.kubectl("create", "configmap", "c", "--from-literal=a=b", "-n", ns)
    path = tmp_path / "got.yaml"
    for _ in range(5):  # the controller may write the Deployment's status between get and apply (a 409, as upstream)
        path.write_text(cluster.kubectl("get", "deployments,configmaps", "-n", ns, "-o", "yaml").stdout)
        r = cluster.kubectl("apply", "-f", str(path), check=False)
        if "Conflict" not in r.stderr:
            break
    assert r.returncode == 0, r.stderr
    assert "deployment.apps/web configured" in r.stdout and "configmap/c configured" in r.stdout


def test_single_object_applies_never_read_openapi_v2(cluster, ns, tmp_path):
    cm = tmp_path / "cm.yaml"
    for verb, value in (("apply", "1"), ("apply", "2"), ("create", "3")):  # POST, PATCH, POST
        cm.write_text(yaml.safe_dump(_configmap("single", ns, data={"k": value})))
        r = cluster.kubectl(verb, "-f", str(cm), "-v=6", check=False)
        requests = _requests(r.stderr)
        assert not any("/openapi/v2" in line for line in requests), r.stderr
        assert any("fieldValidation=Strict" in line for line in requests), r.stderr


# ---------------------------------------------------------------------------------------------
# The documents themselves


def _get(cluster, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    tls = os.path.join(cluster.data_dir, "tls")
    ctx = ssl.create_default_context(cafile=f"{tls}/ca.crt")
    ctx.load_cert_chain(f"{tls}/admin.crt", f"{tls}/admin.key")
    req = urllib.request.Request(cluster.url + "/openapi/v2", headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _refs(node) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            out |= {v} if k == "$ref" and isinstance(v, str) else _refs(v)  # JSONSchemaProps has a "$ref" property
    elif isinstance(node, list):
        for v in node:
            out |= _refs(v)
    return out


def _types(node) -> list:
    out = []
    if isinstance(node, dict):
        if "type" in node and not isinstance(node["type"], dict):
            out.append(node["type"])
        for k, v in node.items():
            if k != "enum" and not (k == "properties" and "type" in v and isinstance(v["type"], dict)):
                out += _types(v)
    elif isinstance(node, list):
        for v in node:
            out += _types(v)
    return out


def test_json_document_is_swagger_2_with_upstream_extensions(cluster):
    doc = json.loads(cluster.kubectl("get", "--raw", "/openapi/v2").stdout)
    assert doc["swagger"] == "2.0" and doc["info"]["title"] == "Kubernetes"
    defs = doc["definitions"]
    assert {r.removeprefix("#/definitions/") for r in _refs(doc)} <= set(defs)
    assert all(isinstance(t, str) for t in _types(defs))  # v2 has no type lists
    cm = defs["io.k8s.api.core.v1.ConfigMap"]
    assert cm["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "ConfigMap", "version": "v1"}]
    assert cm["properties"]["kind"] == {"description": cm["properties"]["kind"]["description"], "type": "string"}
    assert cm["properties"]["metadata"]["$ref"] == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    ios = defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert (ios["type"], ios["format"]) == ("string", "int-or-string")
    assert defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string"
    containers = defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Container"}
    assert (containers["x-kubernetes-patch-merge-key"], containers["x-kubernetes-patch-strategy"]) == ("name", "merge")
    assert doc["securityDefinitions"]["BearerToken"]["type"] == "apiKey"

    item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment", "version": "v1"}
    assert patch["parameters"][0] == {"in": "body", "name": "body", "required": True,
                                      "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}
    assert {"application/strategic-merge-patch+json", "application/apply-patch+yaml"} <= set(patch["consumes"])
    fv = [p for p in patch["parameters"] if p["name"] == "fieldValidation"]
    assert fv and fv[0]["in"] == "query" and fv[0]["type"] == "string"
    assert patch["responses"]["200"]["schema"] == {"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"}
    name = next(p for p in item["parameters"] if p["name"] == "name")
    assert (name["in"], name["required"], name["type"]) == ("path", True, "string") and "schema" not in name
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            assert isinstance(op["x-kubernetes-group-version-kind"], dict), (path, method)
            assert all(("schema" in p) == (p["in"] == "body") for p in op.get("parameters", ())), (path, method)
            if op["x-kubernetes-action"] == "patch":
                assert any(p["name"] == "fieldValidation" for p in op["parameters"]), path
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["get"]
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}


def test_http_negotiation_etag_and_gzip(cluster):
    code, headers, proto = _get(cluster, {"Accept": PROTO})
    # upstream answers the deprecated "@" spelling with the dotted one (Go's mime parser rejects the "@")
    assert code == 200 and headers["Content-Type"] == PROTO_DOT
    etag = headers["ETag"]
    assert etag.startswith('"') and len(etag) == 130
    code, headers, again = _get(cluster, {"Accept": PROTO_DOT})
    assert code == 200 and headers["Content-Type"] == PROTO_DOT and again == proto
    code, headers, js = _get(cluster, {"Accept": "application/json"})
    assert code == 200 and headers["Content-Type"] == "application/json" and headers["ETag"] == etag
    assert json.loads(js)["swagger"] == "2.0"
    assert _get(cluster, {"Accept": f"application/json;q=0.5, {PROTO_DOT}"})[1]["Content-Type"] == PROTO_DOT
    assert _get(cluster, {"Accept": "*/*"})[1]["Content-Type"] == "application/json"
    assert _get(cluster, {"Accept": "text/html"})[0] == 406
    code, headers, body = _get(cluster, {"Accept": PROTO, "If-None-Match": etag})
    assert code == 304 and body == b""
    code, headers, body = _get(cluster, {"Accept": PROTO, "Accept-Encoding": "gzip"})
    assert headers.get("Content-Encoding") == "gzip" and gzip.decompress(body) == proto
    assert len(body) < len(proto) // 4


# ---------------------------------------------------------------------------------------------
# The protobuf, decoded field by field (gnostic openapi_v2 field numbers)


def _uvarint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return n, i


def _fields(buf: bytes) -> list[tuple[int, object]]:
    out: list[tuple[int, object]] = []
    i = 0
    while i < len(buf):
        key, i = _uvarint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _uvarint(buf, i)
        elif wire == 2:
            n, i = _uvarint(buf, i)
            value = buf[i:i + n]
            i += n
            assert i <= len(buf), "truncated length-delimited field"
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((field, value))
    return out


def _all(buf: bytes, field: int) -> list:
    return [v for f, v in _fields(buf) if f == field]


def _one(buf: bytes, field: int):
    values = _all(buf, field)
    assert len(values) == 1, (field, values)
    return values[0]


def _named(buf: bytes, field: int) -> dict[str, bytes]:
    """A repeated Named* message (name=1, value=2) as a dict."""
    return {_one(m, 1).decode(): _one(m, 2) for m in _all(buf, field)}


def _extensions(buf: bytes, field: int) -> dict:
    """Repeated NamedAny: the value's Any.yaml (field 2), parsed."""
    return {name: yaml.safe_load(_one(any_, 2).decode()) for name, any_ in _named(buf, field).items()}


def test_protobuf_document_decodes_to_the_same_document(cluster):
    code, _, proto = _get(cluster, {"Accept": PROTO})
    doc = json.loads(_get(cluster, {"Accept": "application/json"})[2])
    assert _one(proto, 1) == b"2.0"  # Document.swagger
    info = _one(proto, 2)
    assert (_one(info, 1), _one(info, 2).decode()) == (b"Kubernetes", doc["info"]["version"])

    defs = _named(_one(proto, 9), 1)  # Document.definitions -> Definitions.additional_properties
    assert list(defs) == list(doc["definitions"])
    cm = defs["io.k8s.api.core.v1.ConfigMap"]
    assert _all(_one(cm, 22), 1) == [b"object"]  # Schema.type -> TypeItem.value
    assert _one(cm, 4).decode() == doc["definitions"]["io.k8s.api.core.v1.ConfigMap"]["description"]
    props = _named(_one(cm, 25), 1)  # Schema.properties -> Properties.additional_properties
    assert set(props) == {"apiVersion", "binaryData", "data", "immutable", "kind", "metadata"}
    assert _one(props["metadata"], 1) == b"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    data_values = _one(_one(props["data"], 21), 1)  # additional_properties -> AdditionalPropertiesItem.schema
    assert _all(_one(data_values, 22), 1) == [b"string"]
    assert _extensions(cm, 31) == {"x-kubernetes-group-version-kind": [{"group": "", "kind": "ConfigMap",
                                                                         "version": "v1"}]}
    ios = defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert (_one(ios, 2), _all(_one(ios, 22), 1)) == (b"int-or-string", [b"string"])
    containers = _named(_one(defs["io.k8s.api.core.v1.PodSpec"], 25), 1)["containers"]
    assert _one(_one(_one(containers, 23), 1), 1) == b"#/definitions/io.k8s.api.core.v1.Container"  # items
    assert _extensions(containers, 31) == {"x-kubernetes-list-map-keys": ["name"], "x-kubernetes-list-type": "map",
                                           "x-kubernetes-patch-merge-key": "name",
                                           "x-kubernetes-patch-strategy": "merge"}
    assert _one(defs["io.k8s.api.core.v1.PodSpec"], 19) == b"containers"  # Schema.required

    paths = _named(_one(proto, 8), 2)  # Document.paths -> Paths.path (NamedPathItem)
    assert list(paths) == list(doc["paths"])
    item = paths["/api/v1/namespaces/{namespace}/configmaps/{name}"]
    # PathItem.parameters -> ParametersItem.parameter -> Parameter.non_body_parameter -> path sub-schema
    path_params = [_one(_one(_one(_one(p, 1), 2), 4), 4) for p in _all(item, 9)[:2]]
    assert path_params == [b"name", b"namespace"]
    patch = _one(item, 8)  # PathItem.patch
    assert _one(patch, 5) == b"patchCoreV1NamespacedConfigMap"  # operation_id
    assert _extensions(patch, 13) == {"x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": {
        "group": "", "kind": "ConfigMap", "version": "v1"}}
    params = [_one(p, 1) for p in _all(patch, 8)]  # ParametersItem.parameter
    body = _one(params[0], 1)  # Parameter.body_parameter
    assert (_one(body, 2), _one(body, 3), _one(body, 4)) == (b"body", b"body", 1)
    assert _one(_one(body, 5), 1) == b"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    queries = [_one(_one(p, 2), 3) for p in params[1:]]  # non_body_parameter -> query_parameter_sub_schema
    assert [_one(q, 4) for q in queries] == [b"dryRun", b"fieldManager", b"fieldValidation", b"force"]
    assert all(_one(q, 2) == b"query" and _one(q, 20) == 1 for q in queries)  # in, unique_items
    responses = _named(_one(patch, 9), 1)  # Responses.response_code -> NamedResponseValue
    ok = _one(responses["200"], 1)  # ResponseValue.response
    assert (_one(ok, 1), _one(_one(_one(ok, 2), 1), 1)) == (b"OK", b"#/definitions/io.k8s.api.core.v1.ConfigMap")
    assert _all(patch, 10) == [b"https"]  # schemes
