"""CRD conversion webhooks: a real HTTPS ConversionReview server beside a real kubelite and real kubectl.

Given a CRD with versions v1 (`hostPort: "host:port"`) and v2 (`host`, `port`) converted by a
webhook (as upstream's e2e sample converter does), when a user creates a custom resource in one
version and reads or lists it in another, then each object comes back converted by the webhook,
whatever version it was stored in; a webhook that fails makes the read fail with a 500 as upstream.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from aiohttp import web
from conftest import Cluster
from test_admission_webhooks import WebhookServer

GROUP = "stable.example.com"


def _to_v2(obj: dict) -> dict:
    spec = dict(obj.get("spec") or {})
    if "hostPort" in spec:
        host, _, port = spec.pop("hostPort").partition(":")
        spec.update(host=host, port=port)
    return {**obj, "apiVersion": f"{GROUP}/v2", "spec": spec}


def _to_v1(obj: dict) -> dict:
    spec = dict(obj.get("spec") or {})
    if "host" in spec or "port" in spec:
        spec["hostPort"] = f"{spec.pop('host', '')}:{spec.pop('port', '')}"
    return {**obj, "apiVersion": f"{GROUP}/v1", "spec": spec}


class ConversionServer(WebhookServer):
    """The e2e's sample converter: /crdconvert splits or joins hostPort; /fail answers Failed."""

    async def _review(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review["request"]
        self.requests.append({"path": request.path, **req})
        if request.match_info["behaviour"] == "fail":
            response = {"uid": req["uid"], "result": {"status": "Failed", "message": "conversion is broken"}}
        else:
            convert = _to_v2 if req["desiredAPIVersion"].endswith("/v2") else _to_v1
            response = {"uid": req["uid"], "result": {"status": "Success"},
                        "convertedObjects": [convert(o) for o in req["objects"]]}
        return web.json_response({"apiVersion": review["apiVersion"], "kind": "ConversionReview",
                                  "response": response})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConversionServer]:
    s = ConversionServer(str(tmp_path_factory.mktemp("conversion-tls")), ["converter.hooks.svc"])
    yield s
    s.stop()


def _crd(server: ConversionServer, plural: str, path: str = "/crdconvert", storage: str = "v1") -> dict:
    kind = "E2e" + plural.capitalize()

    def version(name: str, props: dict) -> dict:
        return {"name": name, "served": True, "storage": name == storage,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": props}}}}}

    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"},
            "spec": {"group": GROUP, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": plural, "kind": kind, "listKind": kind + "List"},
                     "versions": [version("v1", {"hostPort": {"type": "string"}}),
                                  version("v2", {"host": {"type": "string"}, "port": {"type": "string"}})],
                     "conversion": {"strategy": "Webhook", "webhook": {
                         "conversionReviewVersions": ["v1", "v1beta1"],
                         "clientConfig": {"url": server.url(path), "caBundle": server.ca_bundle}}}}}


@pytest.fixture
def crd(cluster: Cluster, server: ConversionServer) -> Iterator[str]:
    plural = "conv" + uuid.uuid4().hex[:6]
    cluster.kubectl("create", "-f", "-", input=json.dumps(_crd(server, plural)))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{plural}.{GROUP}", "--timeout=30s")
    yield plural
    cluster.kubectl("delete", "crd", f"{plural}.{GROUP}", "--wait=false", check=False)


def _cr(plural: str, version: str, name: str, ns: str, spec: dict) -> str:
    return json.dumps({"apiVersion": f"{GROUP}/{version}", "kind": "E2e" + plural.capitalize(),
                       "metadata": {"name": name, "namespace": ns, "labels": {"app": name}}, "spec": spec})


def _get(cluster: Cluster, what: str, ns: str) -> dict:
    return json.loads(cluster.kubectl("get", what, "-n", ns, "-o", "json").stdout)


@pytest.mark.conformance("Custom Resource Definition Conversion Webhook, conversion custom resource")
def test_a_v1_resource_reads_as_v2_through_the_webhook(cluster, ns, server, crd):
    cluster.kubectl("create", "-f", "-", input=_cr(crd, "v1", "cr1", ns, {"hostPort": "localhost:8080"}))
    got = _get(cluster, f"{crd}.v2.{GROUP}/cr1", ns)
    assert got["apiVersion"] == f"{GROUP}/v2"
    assert got["spec"] == {"host": "localhost", "port": "8080"}
    assert got["metadata"]["name"] == "cr1" and got["metadata"]["labels"] == {"app": "cr1"}
    asked = [r for r in server.requests if r["path"] == "/crdconvert" and r["desiredAPIVersion"] == f"{GROUP}/v2"]
    assert asked and asked[-1]["objects"][0]["spec"] == {"hostPort": "localhost:8080"}
    # and the stored v1 object still reads back unchanged in v1, with no call needed
    assert _get(cluster, f"{crd}.v1.{GROUP}/cr1", ns)["spec"] == {"hostPort": "localhost:8080"}


@pytest.mark.conformance("Custom Resource Definition Conversion Webhook, convert mixed version list")
def test_a_list_of_resources_stored_in_two_versions_converts(cluster, ns, server, crd):
    cluster.kubectl("create", "-f", "-", input=_cr(crd, "v1", "cr1", ns, {"hostPort": "localhost:8080"}))
    crd_obj = _get(cluster, f"crd/{crd}.{GROUP}", ns)
    for v in crd_obj["spec"]["versions"]:
        v["storage"] = v["name"] == "v2"
    cluster.kubectl("replace", "-f", "-", input=json.dumps(crd_obj))
    cluster.kubectl("create", "-f", "-", input=_cr(crd, "v2", "cr2", ns, {"host": "localhost", "port": "9090"}))
    v2 = _get(cluster, f"{crd}.v2.{GROUP}", ns)["items"]
    assert {i["metadata"]["name"]: (i["apiVersion"], i["spec"]) for i in v2} == {
        "cr1": (f"{GROUP}/v2", {"host": "localhost", "port": "8080"}),
        "cr2": (f"{GROUP}/v2", {"host": "localhost", "port": "9090"})}
    v1 = _get(cluster, f"{crd}.v1.{GROUP}", ns)["items"]
    assert {i["metadata"]["name"]: (i["apiVersion"], i["spec"]) for i in v1} == {
        "cr1": (f"{GROUP}/v1", {"hostPort": "localhost:8080"}),
        "cr2": (f"{GROUP}/v1", {"hostPort": "localhost:9090"})}


def test_a_failing_conversion_webhook_fails_the_read(cluster, ns, server):
    plural = "conv" + uuid.uuid4().hex[:6]
    cluster.kubectl("create", "-f", "-", input=json.dumps(_crd(server, plural, path="/fail")))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{plural}.{GROUP}", "--timeout=30s")
    try:
        cluster.kubectl("create", "-f", "-", input=_cr(plural, "v1", "cr1", ns, {"hostPort": "a:1"}))
        r = cluster.kubectl("get", f"{plural}.v2.{GROUP}/cr1", "-n", ns, check=False)
        assert r.returncode == 1
        assert (f"Error from server (InternalError): Internal error occurred: conversion webhook for "
                f"{GROUP}/v1, Kind=E2e{plural.capitalize()} failed: conversion is broken") in r.stderr
    finally:
        cluster.kubectl("delete", "crd", f"{plural}.{GROUP}", "--wait=false", check=False)


def test_a_webhook_strategy_without_a_webhook_is_invalid(cluster, server):
    crd = _crd(server, "convbad")
    del crd["spec"]["conversion"]["webhook"]
    r = cluster.kubectl("create", "-f", "-", input=json.dumps(crd), check=False)
    assert r.returncode == 1
    assert "spec.conversion.webhook: Required value: required when strategy is set to Webhook" in r.stderr
    crd = _crd(server, "convbad")
    crd["spec"]["conversion"]["webhook"]["conversionReviewVersions"] = ["v2"]
    r = cluster.kubectl("create", "-f", "-", input=json.dumps(crd), check=False)
    assert ('spec.conversion.webhook.conversionReviewVersions: Invalid value: []string{"v2"}: '
            "must include at least one of v1, v1beta1") in r.stderr
