"""CustomResourceDefinitions end to end: given a kubelite, when a user applies a CRD with kubectl, then its
custom objects are served like built-in kinds (tables, explain, validation, status and scale, watch),
through the real kubectl and the official client, until the CRD is deleted, and across a restart."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from tests.conftest import Cluster
from tests.course_support import table, wait_for

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.{group}
spec:
  group: {group}
  scope: {scope}
  names:
    plural: {plural}
    singular: {singular}
    kind: {kind}
    shortNames: [{short}]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {{}}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - name: Spec
      type: string
      jsonPath: .spec.cronSpec
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        description: CronTab runs a command on a schedule
        properties:
          spec:
            type: object
            description: the desired schedule
            required: [cronSpec]
            properties:
              cronSpec:
                type: string
                description: a cron schedule
                pattern: '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){{4}}$'
              image:
                type: string
              replicas:
                type: integer
                minimum: 1
                maximum: 10
                default: 1
              mode:
                type: string
                enum: [fast, slow]
          status:
            type: object
            properties:
              replicas:
                type: integer
"""


class CRDs:
    """A unique group per test, so tests sharing the session cluster never meet."""

    def __init__(self, cluster: Cluster, scope: str = "Namespaced"):
        self.cluster = cluster
        tag = uuid.uuid4().hex[:8]
        # unique plurals too: kubectl's cached discovery would otherwise map a plural to a deleted group
        self.group = f"t{tag}.example.com"
        self.plural, self.singular, self.kind = f"crontabs{tag}", f"crontab{tag}", "CronTab"
        self.name = f"{self.plural}.{self.group}"
        self.resource = f"{self.plural}.{self.group}"
        self.yaml = CRD.format(plural=self.plural, group=self.group, scope=scope, singular=self.singular,
                               kind=self.kind, short="ct" + tag)

    def apply(self) -> None:
        self.cluster.kubectl("apply", "-f", "-", input=self.yaml)

    def obj(self, name: str, **spec) -> str:
        body = {"apiVersion": f"{self.group}/v1", "kind": self.kind, "metadata": {"name": name},
                "spec": {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image", **spec}}
        return json.dumps(body)


@pytest.fixture
def crds(cluster: Cluster) -> CRDs:
    c = CRDs(cluster)
    c.apply()
    yield c
    cluster.kubectl("delete", "crd", c.name, "--wait=false", check=False)


@pytest.mark.conformance("Custom Resource Definition, create")
def test_apply_crd_then_get_custom_objects_at_once(cluster: Cluster, ns: str):
    c = CRDs(cluster)
    c.apply()  # no wait: upstream kubectl re-discovers on a miss, the CRD is Established on create
    cluster.kubectl("-n", ns, "create", "-f", "-", input=c.obj("my-new-cron-object"))
    names, rows = table(cluster.kubectl("-n", ns, "get", c.resource).stdout)
    assert names == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert rows[0]["NAME"] == "my-new-cron-object" and rows[0]["SPEC"] == "* * * * */5"
    assert rows[0]["REPLICAS"] == "1"  # defaulted from the schema
    crd = json.loads(cluster.kubectl("get", "crd", c.name, "-o", "json").stdout)
    conds = {x["type"]: (x["status"], x["reason"]) for x in crd["status"]["conditions"]}
    assert conds["Established"] == ("True", "InitialNamesAccepted")
    assert conds["NamesAccepted"] == ("True", "NoConflicts")
    assert crd["status"]["acceptedNames"]["kind"] == "CronTab" and crd["status"]["storedVersions"] == ["v1"]
    assert "customresourcecleanup.apiextensions.k8s.io" in crd["metadata"]["finalizers"]
    cluster.kubectl("delete", "crd", c.name)
    r = cluster.kubectl("get", "crd", c.name, check=False)
    assert r.returncode != 0 and "NotFound" in r.stderr


@pytest.mark.conformance("Custom Resource Definition, discovery")
def test_discovery_lists_custom_resources(cluster: Cluster, crds: CRDs):
    rows = table(cluster.kubectl("api-resources", "--api-group", crds.group).stdout)[1]
    assert [(r["NAME"], r["APIVERSION"], r["NAMESPACED"], r["KIND"]) for r in rows] == [
        (crds.plural, f"{crds.group}/v1", "true", "CronTab")]
    assert rows[0]["SHORTNAMES"].startswith("ct")
    doc = json.loads(cluster.kubectl("get", "--raw", f"/apis/{crds.group}/v1").stdout)
    names = sorted(r["name"] for r in doc["resources"])
    assert names == [crds.plural, f"{crds.plural}/scale", f"{crds.plural}/status"]
    assert f"{crds.group}/v1" in cluster.kubectl("api-versions").stdout.split()
    ext = json.loads(cluster.kubectl("get", "--raw", "/apis/apiextensions.k8s.io/v1").stdout)
    crd_entry = next(r for r in ext["resources"] if r["name"] == "customresourcedefinitions")
    assert crd_entry["shortNames"] == ["crd", "crds"] and crd_entry["kind"] == "CustomResourceDefinition"
    svc = table(cluster.kubectl("get", "apiservices", f"v1.{crds.group}").stdout)[1][0]
    assert (svc["SERVICE"], svc["AVAILABLE"]) == ("Local", "True")


@pytest.mark.conformance("Custom Resource OpenAPI Publish, with validation schema")
def test_explain_and_kubectl_validation(cluster: Cluster, crds: CRDs, ns: str):
    out = cluster.kubectl("explain", crds.resource).stdout
    assert out.startswith(f"GROUP:      {crds.group}\nKIND:       CronTab\nVERSION:    v1\n"), out
    assert "CronTab runs a command on a schedule" in out and "spec\t<Object>" in out
    field = cluster.kubectl("explain", f"{crds.resource}.spec.cronSpec").stdout
    assert "FIELD: cronSpec <string>" in field and "a cron schedule" in field
    bad = json.loads(crds.obj("unk"))
    bad["spec"]["foo"] = "bar"
    r = cluster.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(bad), check=False)
    assert r.returncode != 0
    assert 'cannot be handled as a CronTab: strict decoding error: unknown field "spec.foo"' in r.stderr
    cluster.kubectl("-n", ns, "create", "--validate=false", "-f", "-", input=json.dumps(bad))
    spec = json.loads(cluster.kubectl("-n", ns, "get", crds.resource, "unk", "-o", "jsonpath={.spec}").stdout)
    assert "foo" not in spec  # pruned


def test_schema_validation_errors_worded_as_upstream(cluster: Cluster, crds: CRDs, ns: str):
    bad = json.loads(crds.obj("bad", replicas=20, mode="medium"))
    bad["spec"]["cronSpec"] = "* * * *"
    r = cluster.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(bad), check=False)
    assert r.returncode != 0
    assert r.stderr.startswith('The CronTab "bad" is invalid: \n'), r.stderr
    assert ("* spec.cronSpec: Invalid value: \"* * * *\": spec.cronSpec in body should match "
            "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'") in r.stderr
    assert '* spec.mode: Unsupported value: "medium": supported values: "fast", "slow"' in r.stderr
    assert "* spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10" in r.stderr
    missing = json.loads(crds.obj("nospec"))
    del missing["spec"]["cronSpec"]
    r = cluster.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(missing), check=False)
    assert 'The CronTab "nospec" is invalid: spec.cronSpec: Required value' in r.stderr, r.stderr
    wrong = json.loads(crds.obj("wrongtype"))
    wrong["spec"]["replicas"] = "three"
    r = cluster.kubectl("-n", ns, "create", "--validate=false", "-f", "-", input=json.dumps(wrong), check=False)
    assert ('spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'
            in r.stderr), r.stderr


@pytest.mark.conformance("Custom Resource Definition, status sub-resource")
def test_status_and_scale_subresources(cluster: Cluster, crds: CRDs, ns: str):
    cluster.kubectl("-n", ns, "create", "-f", "-", input=crds.obj("web"))
    # the main resource ignores status; the status subresource ignores spec
    cluster.kubectl("-n", ns, "patch", crds.resource, "web", "--type=merge", "-p", '{"status":{"replicas":9}}')
    obj = json.loads(cluster.kubectl("-n", ns, "get", crds.resource, "web", "-o", "json").stdout)
    assert "status" not in obj and obj["metadata"]["generation"] == 1
    cluster.kubectl("-n", ns, "patch", crds.resource, "web", "--subresource=status", "--type=merge",
                    "-p", '{"status":{"replicas":2},"spec":{"image":"ignored"}}')
    obj = json.loads(cluster.kubectl("-n", ns, "get", crds.resource, "web", "-o", "json").stdout)
    assert obj["status"] == {"replicas": 2} and obj["spec"]["image"] == "my-awesome-cron-image"
    assert obj["metadata"]["generation"] == 1
    out = cluster.kubectl("-n", ns, "scale", crds.resource, "web", "--replicas=3").stdout
    assert out.strip() == f"crontab.{crds.group}/web scaled"
    scale = json.loads(cluster.kubectl("-n", ns, "get", crds.resource, "web", "--subresource=scale",
                                       "-o", "json").stdout)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3 and scale["status"]["replicas"] == 2
    obj = json.loads(cluster.kubectl("-n", ns, "get", crds.resource, "web", "-o", "json").stdout)
    assert obj["spec"]["replicas"] == 3 and obj["metadata"]["generation"] == 2
    r = cluster.kubectl("-n", ns, "scale", crds.resource, "web", "--replicas=11", check=False)
    assert "spec.replicas in body should be less than or equal to 10" in r.stderr, r.stderr


def test_patch_label_and_strategic_merge_refused(cluster: Cluster, crds: CRDs, ns: str):
    cluster.kubectl("-n", ns, "create", "-f", "-", input=crds.obj("p"))
    cluster.kubectl("-n", ns, "label", crds.resource, "p", "tier=gold")
    cluster.kubectl("-n", ns, "patch", crds.resource, "p", "--type=merge", "-p", '{"spec":{"mode":"fast"}}')
    cluster.kubectl("-n", ns, "patch", crds.resource, "p", "--type=json",
                    "-p", '[{"op":"replace","path":"/spec/image","value":"v2"}]')
    obj = json.loads(cluster.kubectl("-n", ns, "get", crds.resource, "-l", "tier=gold", "-o", "json").stdout)
    assert [(o["spec"]["mode"], o["spec"]["image"]) for o in obj["items"]] == [("fast", "v2")]
    r = cluster.kubectl("-n", ns, "patch", crds.resource, "p", "-p", '{"spec":{"image":"x"}}', check=False)
    assert "application/strategic-merge-patch+json is not supported" in r.stderr, r.stderr
    applied = json.loads(crds.obj("p", mode="slow"))
    cluster.kubectl("-n", ns, "apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(applied))
    assert cluster.kubectl("-n", ns, "get", crds.resource, "p", "-o", "jsonpath={.spec.mode}").stdout == "slow"
    cluster.kubectl("-n", ns, "delete", crds.resource, "p")
    assert cluster.kubectl("-n", ns, "get", crds.resource, "-o", "name").stdout == ""


def test_official_client_create_list_watch_delete(cluster: Cluster, crds: CRDs, ns: str):
    from kubernetes import client, watch

    api = client.CustomObjectsApi(cluster.api_client())
    events: list[tuple[str, str]] = []

    def watcher() -> None:
        w = watch.Watch()
        for ev in w.stream(api.list_namespaced_custom_object, crds.group, "v1", ns, crds.plural,
                           timeout_seconds=10):
            events.append((ev["type"], ev["object"]["metadata"]["name"]))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()
    wait_for(lambda: True, 1)
    body = json.loads(crds.obj("c1"))
    created = api.create_namespaced_custom_object(crds.group, "v1", ns, crds.plural, body)
    assert created["spec"]["replicas"] == 1 and created["metadata"]["namespace"] == ns
    listed = api.list_namespaced_custom_object(crds.group, "v1", ns, crds.plural)
    assert [o["metadata"]["name"] for o in listed["items"]] == ["c1"] and listed["kind"] == "CronTabList"
    api.patch_namespaced_custom_object(crds.group, "v1", ns, crds.plural, "c1", {"spec": {"image": "v3"}})
    assert api.get_namespaced_custom_object(crds.group, "v1", ns, crds.plural, "c1")["spec"]["image"] == "v3"
    api.delete_namespaced_custom_object(crds.group, "v1", ns, crds.plural, "c1")
    t.join(15)
    assert [e for e in events if e[1] == "c1"][:1] == [("ADDED", "c1")]
    assert ("MODIFIED", "c1") in events and events[-1] == ("DELETED", "c1")


@pytest.mark.conformance("Custom Resource Definition, list")
def test_cluster_scoped_crd_and_deletion_removes_objects(cluster: Cluster):
    c = CRDs(cluster, scope="Cluster")
    c.apply()
    for i in range(3):
        cluster.kubectl("create", "-f", "-", input=c.obj(f"o{i}"))
    rows = table(cluster.kubectl("get", c.resource).stdout)[1]
    assert [r["NAME"] for r in rows] == ["o0", "o1", "o2"]
    cluster.kubectl("delete", "crd", c.name)  # waits for the cleanup, as upstream
    r = cluster.kubectl("get", "--raw", f"/apis/{c.group}/v1/{c.plural}", check=False)
    assert r.returncode != 0 and "NotFound" in r.stderr
    # a CRD of the same name starts empty
    c.apply()
    assert cluster.kubectl("get", c.resource, "-o", "name").stdout == ""
    cluster.kubectl("delete", "crd", c.name)


def test_invalid_crd_worded_as_upstream(cluster: Cluster):
    c = CRDs(cluster)
    bad = c.yaml.replace("  group: ", "  group: x", 1).replace("  scope: Namespaced", "  scope: Global")
    r = cluster.kubectl("create", "-f", "-", input=bad, check=False)
    assert r.returncode != 0
    assert f'metadata.name: Invalid value: "{c.name}"' in r.stderr and 'must be spec.names.plural+"."+spec.group' \
        in r.stderr, r.stderr
    assert 'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"' in r.stderr


def test_crd_survives_restart(fresh_cluster: Cluster):
    c = CRDs(fresh_cluster)
    c.apply()
    fresh_cluster.kubectl("create", "-f", "-", input=c.obj("keep"))
    fresh_cluster.stop()
    fresh_cluster.start()
    rows = table(fresh_cluster.kubectl("get", c.resource).stdout)[1]
    assert [(r["NAME"], r["REPLICAS"]) for r in rows] == [("keep", "1")]
    assert "FIELD: cronSpec <string>" in fresh_cluster.kubectl("explain", f"{c.resource}.spec.cronSpec").stdout
