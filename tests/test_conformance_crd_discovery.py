"""Upstream's sig-api-machinery conformance behaviours around discovery and CustomResourceDefinitions, end to
end on one kubelite: aggregated discovery (raw Accept headers and kubectl's aggregated client), CRD watch and
defaulting, the OpenAPI v2 publishing of CRDs with `kubectl explain`, server-side field validation of
custom resources through server-side apply, and the API priority and fairness kinds.

Given a cluster, when a user (kubectl, the official client, raw requests where the e2e test makes them)
creates CRDs and custom objects, then what upstream's e2e tests check holds, with upstream's wording.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import yaml
from conftest import Cluster
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

# the e2e test's expectations: one resource of every built-in group, and the legacy namespaces
EXPECTED_GVR = [
    ("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
    ("apiregistration.k8s.io", "v1", "apiservices"),
    ("apps", "v1", "deployments"),
    ("authentication.k8s.io", "v1", "tokenreviews"),
    ("authorization.k8s.io", "v1", "selfsubjectaccessreviews"),
    ("autoscaling", "v1", "horizontalpodautoscalers"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("batch", "v1", "jobs"),
    ("certificates.k8s.io", "v1", "certificatesigningrequests"),
    ("coordination.k8s.io", "v1", "leases"),
    ("discovery.k8s.io", "v1", "endpointslices"),
    ("events.k8s.io", "v1", "events"),
    ("networking.k8s.io", "v1", "ingresses"),
    ("node.k8s.io", "v1", "runtimeclasses"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("scheduling.k8s.io", "v1", "priorityclasses"),
    ("storage.k8s.io", "v1", "csinodes"),
]
EXPECTED_LEGACY_GVR = [("", "v1", "namespaces")]


@pytest.fixture(scope="module")
def api(module_cluster: Cluster) -> Iterator[client.ApiClient]:
    c = module_cluster.api_client()
    yield c
    c.close()


def raw(api: client.ApiClient, method: str, path: str, body=None, headers: dict | None = None,
        query: list | None = None, content_type: str = "application/json") -> tuple[int, dict, bytes]:
    """A request through the client's REST layer: (status, response headers, body bytes), errors included."""
    method_, url, hdrs, data, _ = api.param_serialize(
        method, path, query_params=query or [], header_params={"Content-Type": content_type, **(headers or {})},
        body=body, auth_settings=["BearerToken"])
    try:
        r = api.call_api(method_, url, header_params=hdrs, body=data)
        r.read()
        return r.status, dict(r.getheaders()), r.data or b""
    except ApiException as e:
        return e.status, dict(e.headers or {}), (e.body or "").encode() if isinstance(e.body, str) else e.body or b""


def wait_until(check, timeout: float = 30, what: str = "condition"):
    deadline = time.time() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def uid() -> str:
    return uuid.uuid4().hex[:6]


def crd_body(group: str, kind: str, versions: list[str], schema: dict | None, scope: str = "Namespaced",
             plural: str = "", singular: str = "", list_kind: str = "") -> dict:
    plural = plural or kind.lower() + "s"
    allow_all = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": scope,
                     "names": {"plural": plural, "singular": singular or kind.lower(), "kind": kind,
                               "listKind": list_kind or kind + "List"},
                     "versions": [{"name": v, "served": True, "storage": i == 0,
                                   "schema": {"openAPIV3Schema": copy.deepcopy(schema or allow_all)}}
                                  for i, v in enumerate(versions)]}}


def create_crd(api: client.ApiClient, body: dict) -> dict:
    """Create a CRD and wait until it is Established, as the e2e fixtures do."""
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(body)
    name = body["metadata"]["name"]

    def established():
        crd = ext.read_custom_resource_definition(name)
        return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))
    wait_until(established, what=f"{name} established")
    return body


def delete_crd(api: client.ApiClient, name: str) -> None:
    client.ApiextensionsV1Api(api).delete_custom_resource_definition(name)


# ------------------------------------------------------------------ aggregated discovery
def _gvr_in_aggregated(doc: dict, group: str, version: str, resource: str) -> bool:
    return any(g["metadata"].get("name", "") == group and v["version"] == version
               and any(r["resource"] == resource for r in v.get("resources") or [])
               for g in doc["items"] for v in g["versions"])


@pytest.mark.conformance("Aggregated Discovery Endpoint Accept Headers")
def test_aggregated_discovery_accept_headers(api) -> None:
    status, headers, body = raw(api, "GET", "/apis", headers={"Accept": AGGREGATED})
    assert status == 200 and headers["Content-Type"] == AGGREGATED
    doc = json.loads(body)
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupDiscoveryList", "apidiscovery.k8s.io/v2")
    missing = [gvr for gvr in EXPECTED_GVR if not _gvr_in_aggregated(doc, *gvr)]
    assert not missing, f"not in aggregated discovery: {missing}"
    status, headers, body = raw(api, "GET", "/api", headers={"Accept": AGGREGATED})
    assert status == 200 and headers["Content-Type"] == AGGREGATED
    legacy = json.loads(body)
    assert all(_gvr_in_aggregated(legacy, *gvr) for gvr in EXPECTED_LEGACY_GVR)
    # 1.32 still serves v2beta1, and a server answers the first media type it knows
    status, headers, body = raw(api, "GET", "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList," + AGGREGATED_V2BETA1})
    assert status == 200 and headers["Content-Type"] == AGGREGATED_V2BETA1
    assert json.loads(body)["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    # no aggregated type it knows: the legacy APIGroupList
    status, headers, body = raw(api, "GET", "/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json"})
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["kind"] == "APIGroupList"


@pytest.mark.conformance("Aggregated Discovery Endpoint Accept Headers CRDs")
def test_aggregated_discovery_accept_headers_crds(api) -> None:
    group = f"group{uid()}.example.com"
    body = create_crd(api, crd_body(group, "testcrd", ["v1"], None, plural="testcrds", singular="testcrd",
                                    list_kind="testcrdList"))

    def present():
        status, _, data = raw(api, "GET", "/apis", headers={"Accept": AGGREGATED})
        return status == 200 and _gvr_in_aggregated(json.loads(data), group, "v1", "testcrds")
    wait_until(present, what="the CRD in aggregated discovery")
    delete_crd(api, body["metadata"]["name"])


def _kubectl_discovery_requests(module_cluster: Cluster, *args: str) -> tuple[str, list[str]]:
    """Run kubectl with an empty discovery cache at -v=6; return its output and the paths it GET."""
    cache = os.path.join(module_cluster.data_dir, "kubectl-cache-" + uid())
    r = module_cluster.kubectl("--cache-dir", cache, "-v=6", *args)
    paths = re.findall(r"GET https://[^/]+(/[^? ]*)", r.stderr)
    return r.stdout, paths


@pytest.mark.conformance("Aggregated Discovery Interface")
def test_aggregated_discovery_interface(module_cluster: Cluster) -> None:
    out, paths = _kubectl_discovery_requests(module_cluster, "api-resources", "-o", "name")
    # client-go's aggregated discovery: two documents, never one request per group-version
    assert sorted(set(paths)) == ["/api", "/apis"], paths
    names = set(out.split())
    for group, _, resource in EXPECTED_GVR + EXPECTED_LEGACY_GVR:
        assert (f"{resource}.{group}" if group else resource) in names, resource
    versions = module_cluster.kubectl("api-versions").stdout.split()
    for group, version, _ in EXPECTED_GVR + EXPECTED_LEGACY_GVR:
        assert (f"{group}/{version}" if group else version) in versions


@pytest.mark.conformance("Aggregated Discovery Interface CRDs")
def test_aggregated_discovery_interface_crds(module_cluster: Cluster, api) -> None:
    group = f"group{uid()}.example.com"
    body = create_crd(api, crd_body(group, "testcrd", ["v1"], None, plural="testcrds", singular="testcrd",
                                    list_kind="testcrdList"))

    def listed():
        out, paths = _kubectl_discovery_requests(module_cluster, "api-resources", "--api-group", group)
        assert sorted(set(paths)) == ["/api", "/apis"], paths
        return [line.split() for line in out.splitlines()[1:]]
    rows = wait_until(listed, what="the CRD in kubectl api-resources")
    assert rows == [["testcrds", f"{group}/v1", "true", "testcrd"]]
    delete_crd(api, body["metadata"]["name"])


# ------------------------------------------------------------------ CRD watch and defaulting
class EventLog:
    """Watch events of one custom object (field selector on its name), collected in a thread."""

    def __init__(self, api: client.ApiClient, group: str, version: str, plural: str, name: str):
        self.events: list[tuple[str, dict]] = []
        self._watch = watch.Watch()
        objs = client.CustomObjectsApi(api)
        self._thread = threading.Thread(target=self._run, daemon=True, args=(
            objs.list_cluster_custom_object, group, version, plural, f"metadata.name={name}"))
        self._thread.start()

    def _run(self, fn, group, version, plural, selector) -> None:
        try:
            for ev in self._watch.stream(fn, group, version, plural, field_selector=selector, timeout_seconds=60):
                self.events.append((ev["type"], ev["object"]))
        except Exception:  # the watch ends with the CRD at the end of the test
            pass

    def types(self) -> list[str]:
        return [t for t, _ in self.events]

    def stop(self) -> None:
        self._watch.stop()


@pytest.mark.conformance("Custom Resource Definition, watch")
def test_crd_watch(api) -> None:
    group = f"mygroup{uid()}.example.com"
    body = create_crd(api, crd_body(group, "WishIHadChosenNoxu", ["v1beta1"], None, scope="Cluster",
                                    plural="noxus", singular="nonenglishnoxu", list_kind="NoxuItemList"))
    objs = client.CustomObjectsApi(api)
    watch_a = EventLog(api, group, "v1beta1", "noxus", "name1")
    watch_b = EventLog(api, group, "v1beta1", "noxus", "name2")
    time.sleep(0.5)  # let both watches start before the first write

    def instance(name: str) -> dict:
        return {"apiVersion": f"{group}/v1beta1", "kind": "WishIHadChosenNoxu", "metadata": {"name": name},
                "content": {"key": "value"}, "num": {"num1": 9223372036854775807, "num2": 1000000}}

    def expect(log: EventLog, types: list[str]) -> None:
        wait_until(lambda: log.types() == types, what=f"events {types}, got {log.types()}")

    created = objs.create_cluster_custom_object(group, "v1beta1", "noxus", instance("name1"))
    assert created["metadata"]["uid"] and created["kind"] == "WishIHadChosenNoxu"
    assert created["apiVersion"] == f"{group}/v1beta1"
    expect(watch_a, ["ADDED"])
    objs.create_cluster_custom_object(group, "v1beta1", "noxus", instance("name2"))
    expect(watch_b, ["ADDED"])
    assert watch_a.events[0][1]["metadata"]["name"] == "name1" and watch_a.types() == ["ADDED"]
    for name, log in (("name1", watch_a), ("name2", watch_b)):
        raw(api, "PATCH", f"/apis/{group}/v1beta1/noxus/{name}", [{"op": "add", "path": "/dummy", "value": "test"}],
            content_type="application/json-patch+json")
        expect(log, ["ADDED", "MODIFIED"])
    assert watch_a.events[1][1]["dummy"] == "test"
    objs.delete_cluster_custom_object(group, "v1beta1", "noxus", "name1")
    expect(watch_a, ["ADDED", "MODIFIED", "DELETED"])
    objs.delete_cluster_custom_object(group, "v1beta1", "noxus", "name2")
    expect(watch_b, ["ADDED", "MODIFIED", "DELETED"])
    assert watch_a.types() == ["ADDED", "MODIFIED", "DELETED"]
    watch_a.stop()
    watch_b.stop()
    delete_crd(api, body["metadata"]["name"])


@pytest.mark.conformance("Custom Resource Definition, defaulting")
def test_crd_defaulting_for_requests_and_from_storage(api) -> None:
    group = f"mygroup{uid()}.example.com"
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
              "properties": {"a": {"type": "string"}, "b": {"type": "string"}}}
    body = create_crd(api, crd_body(group, "WishIHadChosenNoxu", ["v1beta1"], schema, scope="Cluster",
                                    plural="noxus", singular="nonenglishnoxu", list_kind="NoxuItemList"))
    name = body["metadata"]["name"]
    ext = client.ApiextensionsV1Api(api)
    objs = client.CustomObjectsApi(api)

    def cr(n: str) -> dict:
        return {"apiVersion": f"{group}/v1beta1", "kind": "WishIHadChosenNoxu", "metadata": {"name": n}}

    objs.create_cluster_custom_object(group, "v1beta1", "noxus", cr("cr-1"))
    ext.patch_custom_resource_definition(name, [
        {"op": "add", "path": "/spec/versions/0/schema/openAPIV3Schema/properties/a/default", "value": "A"}])
    # defaulted when read from storage, once the new schema is in effect
    wait_until(lambda: objs.get_cluster_custom_object(group, "v1beta1", "noxus", "cr-1").get("a") == "A",
               what="a defaulted on read")
    created = objs.create_cluster_custom_object(group, "v1beta1", "noxus", cr("cr-2"))
    assert created["a"] == "A"  # defaulted in the request
    ext.patch_custom_resource_definition(name, [
        {"op": "remove", "path": "/spec/versions/0/schema/openAPIV3Schema/properties/a/default"},
        {"op": "add", "path": "/spec/versions/0/schema/openAPIV3Schema/properties/b/default", "value": "B"}])

    def b_defaulted_a_kept():
        got = objs.get_cluster_custom_object(group, "v1beta1", "noxus", "cr-2")
        if "b" not in got:
            return False
        assert got["b"] == "B" and got.get("a") == "A", got  # a was persisted with cr-2: it stays
        return True
    wait_until(b_defaulted_a_kept, what="b defaulted on read, a kept")
    delete_crd(api, name)


# ------------------------------------------------------------------ OpenAPI publishing of CRDs
SCHEMA_FOO = yaml.safe_load("""
description: Foo CRD for Testing
type: object
properties:
  spec:
    type: object
    description: Specification of Foo
    properties:
      bars:
        description: List of Bars and their specs.
        type: array
        items:
          type: object
          required:
          - name
          properties:
            name:
              description: Name of Bar.
              type: string
            age:
              description: Age of Bar.
              type: string
            feeling:
              description: Whether Bar is feeling great.
              type: string
              enum:
              - Great
              - Down
            bazs:
              description: List of Bazs.
              items:
                type: string
              type: array
  status:
    description: Status of Foo
    type: object
    properties:
      bars:
        description: List of Bars and their statuses.
        type: array
        items:
          type: object
          properties:
            name:
              description: Name of Bar.
              type: string
            available:
              description: Whether the Bar is installed.
              type: boolean
            quxType:
              description: Indicates to external qux type.
              pattern: in-tree|out-of-tree
              type: string
""")
SCHEMA_WALDO = yaml.safe_load("""
description: Waldo CRD for Testing
type: object
properties:
  spec:
    description: Specification of Waldo
    type: object
    properties:
      dummy:
        description: Dummy property.
        type: object
  status:
    description: Status of Waldo
    type: object
    properties:
      bars:
        description: List of Bars and their statuses.
        type: array
        items:
          type: object
""")


def definition_name(group: str, version: str, kind: str) -> str:
    """kube-openapi's ToRESTFriendlyName of group/version/kind: the reversed group, dot-joined."""
    return ".".join([*reversed(group.split(".")), version, kind])


def openapi_definitions(api) -> dict:
    status, _, body = raw(api, "GET", "/openapi/v2", headers={"Accept": "application/json"})
    assert status == 200
    return json.loads(body)["definitions"]


def wait_for_definition(api, name: str, expect: dict | None) -> None:
    """The e2e test's waitForDefinition: the definition is served, and (minus what the server adds) is the
    published schema."""
    def served():
        d = openapi_definitions(api).get(name)
        if d is None:
            return False
        if expect is not None:
            d = copy.deepcopy(d)
            for p in ("metadata", "apiVersion", "kind"):
                d.get("properties", {}).pop(p, None)
            if d.get("properties") == {}:
                del d["properties"]
            d.pop("x-kubernetes-group-version-kind", None)
            assert d == expect, d
        return True
    wait_until(served, what=f"definition {name}")


def wait_for_definition_cleanup(api, name: str) -> None:
    wait_until(lambda: name not in openapi_definitions(api), what=f"definition {name} removed")


class PublishedCRD:
    def __init__(self, api, schema: dict | None, suffix: str, versions: list[str], expect: dict | None = None):
        self.group = f"crd-publish-openapi-test-{suffix}-{uid()}.example.com"
        self.kind = f"E2e-test-crd-publish-openapi-{uid()}-crd"
        self.plural = self.kind.lower() + "s"
        self.versions = versions
        self.api = api
        create_crd(api, crd_body(self.group, self.kind, versions, schema, plural=self.plural,
                                 singular=self.kind.lower()))
        for v in versions:
            wait_for_definition(api, self.definition(v), {"type": "object"} if schema is None else expect)

    @property
    def name(self) -> str:
        return f"{self.plural}.{self.group}"

    def definition(self, version: str) -> str:
        return definition_name(self.group, version, self.kind)

    def meta(self, name: str) -> str:
        return f'"kind":"{self.kind}","apiVersion":"{self.group}/{self.versions[0]}","metadata":{{"name":"{name}"}}'

    def cleanup(self) -> None:
        delete_crd(self.api, self.name)
        crd = client.ApiextensionsV1Api(self.api).list_custom_resource_definition().items
        served = [v.name for c in crd if c.metadata.name == self.name for v in c.spec.versions]
        for v in served or self.versions:
            wait_for_definition_cleanup(self.api, self.definition(v))


def explain_matches(module_cluster: Cluster, what: str, pattern: str) -> None:
    out = module_cluster.kubectl("explain", what).stdout
    assert re.search(pattern, out, re.S), out


def create_and_apply(module_cluster: Cluster, ns: str, plural: str, cr: str) -> None:
    """kubectl create and kubectl apply accept the object (kubectl validates on the server: Strict); applying
    it again patches it (a merge patch: custom resources take no strategic merge patch)."""
    for verb in ("create", "apply"):
        module_cluster.kubectl("-n", ns, verb, "-f", "-", input=cr)
        if verb == "apply":
            out = module_cluster.kubectl("-n", ns, "apply", "-f", "-", input=cr.replace('"test-cr"}', '"test-cr","labels":'
                                                                             '{"applied":"again"}}')).stdout
            assert out.endswith(" configured\n"), out
            assert module_cluster.kubectl("-n", ns, "get", plural, "-l", "applied=again", "-o", "name").stdout.strip()
        module_cluster.kubectl("-n", ns, "delete", plural, "test-cr")


@pytest.mark.conformance("Custom Resource OpenAPI Publish, with x-kubernetes-preserve-unknown-fields in object")
def test_openapi_publish_crd_without_validation_schema(module_cluster: Cluster, api) -> None:
    crd = PublishedCRD(api, None, "empty", ["v1"])
    create_and_apply(module_cluster, "default", crd.plural, f'{{{crd.meta("test-cr")},"a":{{"b":[{{"c":"d"}}]}}}}')
    explain_matches(module_cluster, crd.plural, r"DESCRIPTION:.*<empty>")
    crd.cleanup()


@pytest.mark.conformance("Custom Resource OpenAPI Publish, with x-kubernetes-preserve-unknown-fields at root")
def test_openapi_publish_crd_preserving_unknown_fields_at_root(module_cluster: Cluster, api) -> None:
    schema = copy.deepcopy(SCHEMA_WALDO)
    schema["description"] = "preserve-unknown-properties at root for Testing"
    schema["x-kubernetes-preserve-unknown-fields"] = True
    crd = PublishedCRD(api, schema, "unknown-at-root", ["v1"])
    # what kubectl's client-side validation reads: a bare object, whatever the schema declares
    assert openapi_definitions(api)[crd.definition("v1")] == {
        "type": "object", "x-kubernetes-group-version-kind": [{"group": crd.group, "kind": crd.kind,
                                                               "version": "v1"}]}
    create_and_apply(module_cluster, "default", crd.plural, f'{{{crd.meta("test-cr")},"a":{{"b":[{{"c":"d"}}]}}}}')
    explain_matches(module_cluster, crd.plural, rf"KIND:.*{crd.kind}")
    crd.cleanup()


@pytest.mark.conformance("Custom Resource OpenAPI Publish, with x-kubernetes-preserve-unknown-fields in embedded object")
def test_openapi_publish_crd_preserving_unknown_fields_in_embedded_object(module_cluster: Cluster, api) -> None:
    schema = copy.deepcopy(SCHEMA_WALDO)
    schema["description"] = "preserve-unknown-properties in nested field for Testing"
    schema["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"] = True
    crd = PublishedCRD(api, schema, "unknown-in-nested", ["v1"])
    spec = openapi_definitions(api)[crd.definition("v1")]["properties"]["spec"]
    # v2 drops the type and fields of a node that keeps unknown fields, so that kubectl accepts any
    assert spec == {"description": "Specification of Waldo", "x-kubernetes-preserve-unknown-fields": True}
    create_and_apply(module_cluster, "default", crd.plural,
                     f'{{{crd.meta("test-cr")},"spec":{{"a":null,"b":[{{"c":"d"}}]}}}}')
    explain_matches(module_cluster, crd.plural, r"DESCRIPTION:.*preserve-unknown-properties in nested field for Testing")
    crd.cleanup()


@pytest.mark.conformance("Custom Resource OpenAPI Publish, varying groups")
def test_openapi_publish_crds_of_different_groups(api) -> None:
    foo = PublishedCRD(api, SCHEMA_FOO, "foo", ["v1"], SCHEMA_FOO)
    waldo = PublishedCRD(api, SCHEMA_WALDO, "waldo", ["v1beta1"], SCHEMA_WALDO)
    assert foo.group != waldo.group
    wait_for_definition(api, waldo.definition("v1beta1"), SCHEMA_WALDO)
    wait_for_definition(api, foo.definition("v1"), SCHEMA_FOO)
    foo.cleanup()
    waldo.cleanup()


@pytest.mark.conformance("Custom Resource OpenAPI Publish, varying versions")
def test_openapi_publish_crds_of_different_versions(api) -> None:
    multi = PublishedCRD(api, SCHEMA_FOO, "multi-ver", ["v2", "v3"], SCHEMA_FOO)
    wait_for_definition(api, multi.definition("v3"), SCHEMA_FOO)
    wait_for_definition(api, multi.definition("v2"), SCHEMA_FOO)
    multi.cleanup()
    # two CRDs of one group in different versions
    foo = PublishedCRD(api, SCHEMA_FOO, "common-group", ["v4"], SCHEMA_FOO)
    waldo_body = crd_body(foo.group, "Waldo" + uid(), ["v5"], SCHEMA_WALDO)
    create_crd(api, waldo_body)
    waldo_kind = waldo_body["spec"]["names"]["kind"]
    wait_for_definition(api, definition_name(foo.group, "v5", waldo_kind), SCHEMA_WALDO)
    wait_for_definition(api, foo.definition("v4"), SCHEMA_FOO)
    foo.cleanup()
    delete_crd(api, waldo_body["metadata"]["name"])
    wait_for_definition_cleanup(api, definition_name(foo.group, "v5", waldo_kind))


@pytest.mark.conformance("Custom Resource OpenAPI Publish, varying kinds")
def test_openapi_publish_crds_of_different_kinds(api) -> None:
    foo = PublishedCRD(api, SCHEMA_FOO, "common-group", ["v6"], SCHEMA_FOO)
    waldo_body = crd_body(foo.group, "Waldo" + uid(), ["v6"], SCHEMA_WALDO)
    create_crd(api, waldo_body)
    waldo_kind = waldo_body["spec"]["names"]["kind"]
    wait_for_definition(api, definition_name(foo.group, "v6", waldo_kind), SCHEMA_WALDO)
    wait_for_definition(api, foo.definition("v6"), SCHEMA_FOO)
    foo.cleanup()
    delete_crd(api, waldo_body["metadata"]["name"])
    wait_for_definition_cleanup(api, definition_name(foo.group, "v6", waldo_kind))


@pytest.mark.conformance("Custom Resource OpenAPI Publish, version rename")
def test_openapi_publish_version_rename(api) -> None:
    multi = PublishedCRD(api, SCHEMA_FOO, "multi-ver", ["v2", "v3"], SCHEMA_FOO)
    client.ApiextensionsV1Api(api).patch_custom_resource_definition(multi.name, [
        {"op": "test", "path": "/spec/versions/1/name", "value": "v3"},
        {"op": "replace", "path": "/spec/versions/1/name", "value": "v4"}])
    wait_for_definition(api, multi.definition("v4"), SCHEMA_FOO)
    wait_for_definition_cleanup(api, multi.definition("v3"))
    wait_for_definition(api, multi.definition("v2"), SCHEMA_FOO)
    multi.versions = ["v2", "v4"]
    multi.cleanup()


@pytest.mark.conformance("Custom Resource OpenAPI Publish, stop serving version")
def test_openapi_publish_stop_serving_version(api) -> None:
    crd = PublishedCRD(api, SCHEMA_FOO, "multi-to-single-ver", ["v5", "v6alpha1"], SCHEMA_FOO)
    ext = client.ApiextensionsV1Api(api)
    current = ext.read_custom_resource_definition(crd.name)
    current.spec.versions[1].served = False
    ext.replace_custom_resource_definition(crd.name, current)
    wait_for_definition_cleanup(api, crd.definition("v6alpha1"))
    wait_for_definition(api, crd.definition("v5"), SCHEMA_FOO)
    crd.cleanup()


# ------------------------------------------------------------------ server-side field validation of CRs
CRON = {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"}
PORTS = {"type": "array", "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
         "x-kubernetes-list-type": "map",
         "items": {"type": "object", "required": ["containerPort", "protocol"], "properties": {
             "containerPort": {"format": "int32", "type": "integer"}, "hostIP": {"type": "string"},
             "hostPort": {"format": "int32", "type": "integer"}, "name": {"type": "string"},
             "protocol": {"type": "string"}}}}
SPEC_SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "foo": {"type": "string"}, "cronSpec": CRON, "ports": PORTS}}}}


def noxu_crd(api, schema: dict | None) -> tuple[str, str]:
    """fixtures.NewRandomNameMultipleVersionCustomResourceDefinition (cluster scoped, v1beta1 stored, v1)."""
    group = f"mygroup{uid()}.example.com"
    create_crd(api, crd_body(group, "WishIHadChosenNoxu", ["v1beta1", "v1"], schema, scope="Cluster",
                             plural="noxus", singular="nonenglishnoxu", list_kind="NoxuItemList"))
    return group, f"noxus.{group}"


def apply_strict(api, group: str, body: str) -> tuple[int, dict]:
    status, _, data = raw(api, "PATCH", f"/apis/{group}/v1beta1/noxus/mytest", body,
                          query=[("fieldManager", "field_validation_mgr"), ("fieldValidation", "Strict")],
                          content_type="application/apply-patch+yaml")
    return status, json.loads(data)


def noxu_yaml(group: str, spec: str, extra: str = "", meta: str = "") -> str:
    return (f"\napiVersion: {group}/v1beta1\nkind: WishIHadChosenNoxu\nmetadata:\n  name: mytest\n{meta}"
            f"  finalizers:\n  - test-finalizer\n{extra}spec:\n{spec}")


PORTS_YAML = '  cronSpec: "* * * * */5"\n  ports:\n  - name: x\n    containerPort: 80\n    protocol: TCP'


def _remove(api, group: str) -> None:
    """Drop the test finalizer and the CRD."""
    objs = client.CustomObjectsApi(api)
    try:
        objs.patch_cluster_custom_object(group, "v1beta1", "noxus", "mytest", {"metadata": {"finalizers": None}})
    except ApiException as e:
        assert e.status == 404
    delete_crd(api, f"noxus.{group}")


@pytest.mark.conformance("Server side field validation, unknown fields CR no validation schema")
def test_field_validation_cr_without_schema_keeps_unknown_fields(api) -> None:
    group, _ = noxu_crd(api, None)
    status, obj = apply_strict(api, group, noxu_yaml(group, "  unknown: uk1\n" + PORTS_YAML))
    assert status == 200, obj
    assert obj["spec"]["unknown"] == "uk1" and obj["metadata"]["finalizers"] == ["test-finalizer"]
    _remove(api, group)


@pytest.mark.conformance("Server side field validation, valid CR with validation schema")
def test_field_validation_valid_cr(api) -> None:
    group, _ = noxu_crd(api, SPEC_SCHEMA)
    status, obj = apply_strict(api, group, noxu_yaml(group, "  foo: foo1\n" + PORTS_YAML))
    assert status == 200, obj
    assert obj["spec"]["ports"] == [{"name": "x", "containerPort": 80, "protocol": "TCP"}]
    _remove(api, group)


@pytest.mark.conformance("Server side field validation, unknown fields CR fails validation")
def test_field_validation_cr_unknown_fields_rejected(api) -> None:
    group, _ = noxu_crd(api, SPEC_SCHEMA)
    status, body = apply_strict(api, group, noxu_yaml(group, "  foo: foo1\n" + PORTS_YAML,
                                                      extra="unknownField: unknown\n"))
    assert status == 500, body
    assert body["message"] == (f"failed to create typed patch object (/mytest; {group}/v1beta1, "
                               "Kind=WishIHadChosenNoxu): .unknownField: field not declared in schema")
    status, _, _ = raw(api, "GET", f"/apis/{group}/v1beta1/noxus/mytest")
    assert status == 404
    _remove(api, group)


@pytest.mark.conformance("Server side field validation, CR duplicates")
def test_field_validation_cr_duplicates(api) -> None:
    schema = copy.deepcopy(SPEC_SCHEMA)
    schema["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"] = True
    group, _ = noxu_crd(api, schema)
    status, body = apply_strict(api, group, noxu_yaml(group, "  unknown: uk1\n  foo: foo1\n  foo: foo2\n"
                                                      + PORTS_YAML))
    assert status == 400, body
    assert body["message"] == ('error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal '
                               'errors:\n  line 11: key "foo" already set in map')
    _remove(api, group)


@pytest.mark.conformance("Server side field validation, unknown metadata")
def test_field_validation_cr_unknown_metadata(api) -> None:
    schema = copy.deepcopy(SPEC_SCHEMA)
    schema["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"] = True
    schema["properties"]["spec"]["properties"]["template"] = {
        "type": "object", "x-kubernetes-embedded-resource": True, "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
            "spec": {"type": "object"}}}
    group, _ = noxu_crd(api, schema)
    template = ("  template:\n    apiversion: foo/v1\n    kind: Sub\n    metadata:\n        unknownSubMeta: unknown\n"
                "        name: subobject\n        namespace: default\n")
    status, body = apply_strict(api, group, noxu_yaml(group, template + "  foo: foo1\n" + PORTS_YAML,
                                                      meta="  unknownMeta: unknown\n"))
    assert status == 500, body
    assert ".metadata.unknownMeta: field not declared in schema" in body["message"]
    assert ".spec.template.metadata.unknownSubMeta: field not declared in schema" in body["message"]
    assert "namespace" not in body["message"]  # an embedded object's metadata is an ObjectMeta
    _remove(api, group)


# ------------------------------------------------------------------ API priority and fairness
FC = "flowcontrol.apiserver.k8s.io"


def _check_flowcontrol_discovery(api, plural: str) -> None:
    _, _, body = raw(api, "GET", "/apis")
    assert FC in [g["name"] for g in json.loads(body)["groups"]]
    _, _, body = raw(api, "GET", f"/apis/{FC}")
    assert f"{FC}/v1" in [v["groupVersion"] for v in json.loads(body)["versions"]]
    _, _, body = raw(api, "GET", f"/apis/{FC}/v1")
    names = [r["name"] for r in json.loads(body)["resources"]]
    assert plural in names and f"{plural}/status" in names


def _api_operations(api, plural: str, kind: str, make_spec, status_condition: dict) -> None:
    """create, get, list, watch, update, patch, status get/patch/update, delete, deletecollection."""
    objs = client.CustomObjectsApi(api)
    label = "e2e-" + uid()

    def body(n: int) -> dict:
        return {"apiVersion": f"{FC}/v1", "kind": kind,
                "metadata": {"name": f"{label}-{n}", "labels": {label: "true"}}, "spec": make_spec(n)}

    created = [objs.create_cluster_custom_object(FC, "v1", plural, body(n)) for n in (1, 2, 3)]
    got = objs.get_cluster_custom_object(FC, "v1", plural, created[0]["metadata"]["name"])
    assert got["metadata"]["uid"] == created[0]["metadata"]["uid"]
    listed = objs.list_cluster_custom_object(FC, "v1", plural, label_selector=f"{label}=true")
    assert len(listed["items"]) == 3
    rv = listed["metadata"]["resourceVersion"]
    events: list[tuple[str, str]] = []
    w = watch.Watch()

    def follow() -> None:
        try:
            for ev in w.stream(objs.list_cluster_custom_object, FC, "v1", plural, label_selector=f"{label}=true",
                               resource_version=rv, timeout_seconds=30):
                events.append((ev["type"], ev["object"]["metadata"]["name"]))
        except Exception:  # the cluster may stop first, at the end of the module
            pass
    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    name = created[0]["metadata"]["name"]
    patched = objs.patch_cluster_custom_object(FC, "v1", plural, name, {"metadata": {"annotations": {"patched": "true"}}})
    assert patched["metadata"]["annotations"]["patched"] == "true"
    patched["metadata"]["annotations"]["updated"] = "true"
    updated = objs.replace_cluster_custom_object(FC, "v1", plural, name, patched)
    assert updated["metadata"]["annotations"] == {"patched": "true", "updated": "true"}
    wait_until(lambda: events.count(("MODIFIED", name)) == 2, what="watch events of patch and update")
    # the status subresource
    status = objs.get_cluster_custom_object_status(FC, "v1", plural, name)
    assert status["metadata"]["name"] == name
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    condition = {**status_condition, "lastTransitionTime": now}
    patched = objs.patch_cluster_custom_object_status(FC, "v1", plural, name,
                                                      {"status": {"conditions": [condition]}})
    assert condition in patched["status"]["conditions"]
    assert patched["spec"] == updated["spec"]
    patched["status"]["conditions"] = [{**condition, "message": "updated"}]
    replaced = objs.replace_cluster_custom_object_status(FC, "v1", plural, name, patched)
    assert [c["message"] for c in replaced["status"]["conditions"] if c["type"] == condition["type"]] == ["updated"]
    objs.delete_cluster_custom_object(FC, "v1", plural, name)
    wait_until(lambda: ("DELETED", name) in events, what="watch event of the delete")
    with pytest.raises(ApiException) as e:
        objs.get_cluster_custom_object(FC, "v1", plural, name)
    assert e.value.status == 404
    raw(api, "DELETE", f"/apis/{FC}/v1/{plural}", query=[("labelSelector", f"{label}=true")])
    wait_until(lambda: not objs.list_cluster_custom_object(FC, "v1", plural, label_selector=f"{label}=true")["items"],
               what="deletecollection")
    w.stop()


@pytest.mark.conformance("Priority and Fairness FlowSchema API")
def test_flowschema_api(api) -> None:
    _check_flowcontrol_discovery(api, "flowschemas")
    _api_operations(api, "flowschemas", "FlowSchema", lambda n: {
        "matchingPrecedence": 10000 - n, "priorityLevelConfiguration": {"name": "global-default"},
        "rules": [{"subjects": [{"kind": "User", "user": {"name": f"user-{n}"}}],
                   "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]},
        {"type": "StatusUpdated", "status": "True", "reason": "E2E", "message": "Set from an e2e test"})


@pytest.mark.conformance("Priority and Fairness PriorityLevelConfiguration API")
def test_priority_level_configuration_api(api) -> None:
    _check_flowcontrol_discovery(api, "prioritylevelconfigurations")
    _api_operations(api, "prioritylevelconfigurations", "PriorityLevelConfiguration", lambda n: {
        "type": "Limited", "limited": {"nominalConcurrencyShares": n, "limitResponse": {"type": "Reject"}}},
        {"type": "StatusUpdated", "status": "True", "reason": "E2E", "message": "Set from an e2e test"})
