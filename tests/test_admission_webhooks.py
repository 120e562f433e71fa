"""Admission webhooks: a real HTTPS webhook server beside a real kubelite, driven with the real kubectl.

Given webhook configurations registered with kubectl, when a user creates, updates, deletes or attaches,
then the webhooks are asked in upstream's order and their answers decide (and mutate) what is stored,
with upstream's error wording.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
from aiohttp import web
from conftest import Cluster

from kubelite.apiserver.pki import ensure_pki, primary_ip

UNWANTED = "the configmap contains unwanted key and value"


class WebhookServer:
    """An HTTPS admission webhook in a thread: a few behaviours chosen by path, requests recorded."""

    def __init__(self, tls_dir: str, names: list[str]):
        self.pki = ensure_pki(tls_dir, names)
        self.requests: list[dict] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.pki.read("ca.crt")).decode()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/{behaviour}", self._review)
        runner = self._runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.pki.server_cert, self.pki.server_key)
        site = web.TCPSite(runner, "0.0.0.0", 0, ssl_context=ctx)  # also reached as a Service's endpoint
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _review(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review["request"]
        self.requests.append({"path": request.path, "query": dict(request.query), **req})
        behaviour = request.match_info["behaviour"]
        response: dict = {"uid": req["uid"], "allowed": True}
        obj = req.get("object") or {}
        if behaviour == "deny-configmaps":
            if (obj.get("data") or {}).get("webhook-e2e-test") == "webhook-disallow":
                response = {"uid": req["uid"], "allowed": False, "status": {"code": 403, "message": UNWANTED}}
        elif behaviour == "deny-all":
            response = {"uid": req["uid"], "allowed": False,
                        "status": {"code": 403, "reason": "Forbidden", "message": f"{req['operation']} is denied"}}
        elif behaviour == "deny-attach":
            response = {"uid": req["uid"], "allowed": False,
                        "status": {"message": f"attaching to pod '{req['name']}' is not allowed"}}
        elif behaviour in ("mutate-1", "mutate-2"):
            data = obj.get("data") or {}
            ops = [] if "data" in obj else [{"op": "add", "path": "/data", "value": {}}]
            if behaviour == "mutate-2" and data.get("mutation-stage-1") != "yes":
                ops.append({"op": "add", "path": "/data/mutation-stage-2", "value": "stage 1 missing"})
            else:
                ops.append({"op": "add", "path": f"/data/mutation-stage-{behaviour[-1]}", "value": "yes"})
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(orjson.dumps(ops)).decode()
        elif behaviour == "add-init-container":
            ops = [{"op": "add", "path": "/spec/initContainers",
                    "value": [{"name": "webhook-added-init-container", "image": "busybox:1.36"}]}]
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(orjson.dumps(ops)).decode()
        elif behaviour == "deny-crd":
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if labels.get("webhook-e2e-test") == "webhook-disallow":
                response = {"uid": req["uid"], "allowed": False,
                            "status": {"code": 403, "message": "the crd contains unwanted label"}}
        elif behaviour == "add-label":
            labels = (obj.get("metadata") or {}).get("labels")
            ops = [] if labels is not None else [{"op": "add", "path": "/metadata/labels", "value": {}}]
            ops.append({"op": "add", "path": "/metadata/labels/added-by-webhook", "value": "yes"})
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(orjson.dumps(ops)).decode()
        elif behaviour == "slow":
            await asyncio.sleep(5)
        return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                  "response": response})

    def stop(self) -> None:
        # close kept-alive connections (the API server pools them) before the loop ends
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookServer]:
    s = WebhookServer(str(tmp_path_factory.mktemp("webhook-tls")), ["webhook.hooks.svc"])
    yield s
    s.stop()


@pytest.fixture
def hook_ns(module_cluster: Cluster) -> Iterator[str]:
    """A namespace labelled for the webhooks' namespaceSelector."""
    name = "wh-" + uuid.uuid4().hex[:6]
    module_cluster.kubectl("create", "namespace", name)
    module_cluster.kubectl("label", "namespace", name, f"webhook-test={name}")
    yield name
    module_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def register(cluster: Cluster, kind: str, name: str, webhooks: list[dict], labels: dict | None = None) -> None:
    cfg = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
           "metadata": {"name": name, "labels": labels or {}}, "webhooks": webhooks}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(cfg))


def webhook(name: str, client_config: dict, ns: str, resources: list[str], operations: list[str] | None = None,
            **extra) -> dict:
    return {"name": name, "clientConfig": client_config,
            "rules": [{"operations": operations or ["CREATE", "UPDATE"], "apiGroups": ["*"], "apiVersions": ["*"],
                       "resources": resources}],
            "namespaceSelector": {"matchLabels": {"webhook-test": ns}},
            "sideEffects": "None", "admissionReviewVersions": ["v1"], **extra}


def create_configmap(cluster: Cluster, ns: str, name: str, data: dict[str, str]):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}
    return cluster.kubectl("create", "-f", "-", input=json.dumps(cm), check=False)


@pytest.mark.conformance("Admission webhook, deny create")
@pytest.mark.conformance("Admission webhook, update validating webhook")
def test_validating_webhook_denies_unwanted_data(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    client = {"url": server.url("/deny-configmaps"), "caBundle": server.ca_bundle}
    register(module_cluster, "ValidatingWebhookConfiguration", f"deny-{hook_ns}",
             [webhook("deny-unwanted-configmap-data.k8s.io", client, hook_ns, ["configmaps"])])
    r = create_configmap(module_cluster, hook_ns, "bad", {"webhook-e2e-test": "webhook-disallow"})
    assert r.returncode != 0
    assert ('admission webhook "deny-unwanted-configmap-data.k8s.io" denied the request: '
            f"{UNWANTED}") in r.stderr
    assert r.stderr.startswith("Error from server: ")  # the webhook's Status gave no reason
    assert module_cluster.kubectl("get", "cm", "bad", "-n", hook_ns, check=False).returncode != 0
    # allowed data passes; an update adding the unwanted pair is denied and changes nothing
    assert create_configmap(module_cluster, hook_ns, "good", {"fine": "yes"}).returncode == 0
    r = module_cluster.kubectl("patch", "cm", "good", "-n", hook_ns, "--type=merge",
                           "-p", '{"data":{"webhook-e2e-test":"webhook-disallow"}}', check=False)
    assert r.returncode != 0 and UNWANTED in r.stderr
    got = json.loads(module_cluster.kubectl("get", "cm", "good", "-n", hook_ns, "-o", "json").stdout)
    assert got["data"] == {"fine": "yes"}
    # the webhook saw who asked, and what
    seen = [q for q in server.requests if q.get("namespace") == hook_ns and q["name"] == "good"]
    assert {q["operation"] for q in seen} == {"CREATE", "UPDATE"}
    update = next(q for q in seen if q["operation"] == "UPDATE")
    assert update["oldObject"]["data"] == {"fine": "yes"}
    me = module_cluster.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
    assert update["userInfo"]["username"] == me and "system:masters" in update["userInfo"]["groups"]
    assert update["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert update["query"] == {"timeout": "10s"}
    # a namespace the selector does not match is not asked
    other = "plain-" + uuid.uuid4().hex[:6]
    module_cluster.kubectl("create", "namespace", other)
    assert create_configmap(module_cluster, other, "bad", {"webhook-e2e-test": "webhook-disallow"}).returncode == 0
    # updating the configuration to leave out CREATE lets the creation through; restoring it denies again
    module_cluster.kubectl("patch", "validatingwebhookconfiguration", f"deny-{hook_ns}", "--type=json",
                       "-p", '[{"op":"replace","path":"/webhooks/0/rules/0/operations","value":["UPDATE"]}]')
    assert create_configmap(module_cluster, hook_ns, "bad2", {"webhook-e2e-test": "webhook-disallow"}).returncode == 0
    module_cluster.kubectl("patch", "validatingwebhookconfiguration", f"deny-{hook_ns}", "--type=json",
                       "-p", '[{"op":"replace","path":"/webhooks/0/rules/0/operations","value":["CREATE"]}]')
    assert create_configmap(module_cluster, hook_ns, "bad3", {"webhook-e2e-test": "webhook-disallow"}).returncode != 0
    module_cluster.kubectl("delete", "validatingwebhookconfiguration", f"deny-{hook_ns}")
    assert create_configmap(module_cluster, hook_ns, "bad4", {"webhook-e2e-test": "webhook-disallow"}).returncode == 0


@pytest.mark.conformance("Admission webhook, ordered mutation")
def test_mutating_webhooks_run_in_order(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    ca = server.ca_bundle
    register(module_cluster, "MutatingWebhookConfiguration", f"mutate-{hook_ns}", [
        webhook("adding-configmap-data-stage-1.k8s.io", {"url": server.url("/mutate-1"), "caBundle": ca},
                hook_ns, ["configmaps"], ["CREATE"]),
        webhook("adding-configmap-data-stage-2.k8s.io", {"url": server.url("/mutate-2"), "caBundle": ca},
                hook_ns, ["configmaps"], ["CREATE"]),
    ])
    assert create_configmap(module_cluster, hook_ns, "to-be-mutated", {"mutation-start": "yes"}).returncode == 0
    got = json.loads(module_cluster.kubectl("get", "cm", "to-be-mutated", "-n", hook_ns, "-o", "json").stdout)
    assert got["data"] == {"mutation-start": "yes", "mutation-stage-1": "yes", "mutation-stage-2": "yes"}
    # a dry run is mutated the same way and stores nothing
    r = module_cluster.kubectl("create", "configmap", "dry", "-n", hook_ns, "--from-literal=a=b",
                           "--dry-run=server", "-o", "json")
    assert json.loads(r.stdout)["data"]["mutation-stage-2"] == "yes"
    assert module_cluster.kubectl("get", "cm", "dry", "-n", hook_ns, check=False).returncode != 0
    module_cluster.kubectl("delete", "mutatingwebhookconfiguration", f"mutate-{hook_ns}")


@pytest.mark.conformance("Admission webhook, mutation with defaulting")
def test_mutated_pod_is_defaulted(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    register(module_cluster, "MutatingWebhookConfiguration", f"pods-{hook_ns}", [
        webhook("adding-init-container.k8s.io", {"url": server.url("/add-init-container"),
                                                 "caBundle": server.ca_bundle}, hook_ns, ["pods"], ["CREATE"])])
    module_cluster.kubectl("run", "webhook-to-be-mutated", "-n", hook_ns, "--image=busybox:1.36", "--", "sleep", "60")
    pod = json.loads(module_cluster.kubectl("get", "pod", "webhook-to-be-mutated", "-n", hook_ns, "-o", "json").stdout)
    init = pod["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["webhook-added-init-container"]
    # fields the webhook left out carry upstream's defaults
    assert init[0]["terminationMessagePolicy"] == "File"
    assert init[0]["imagePullPolicy"] == "IfNotPresent"
    module_cluster.kubectl("delete", "mutatingwebhookconfiguration", f"pods-{hook_ns}")


@pytest.mark.conformance("Admission webhook, fail closed")
@pytest.mark.conformance("Admission webhook, honor timeout")
def test_failure_policy_and_timeout(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    unreachable = {"url": "https://127.0.0.1:9/unreachable", "caBundle": server.ca_bundle}
    register(module_cluster, "ValidatingWebhookConfiguration", f"closed-{hook_ns}",
             [webhook("fail-closed.k8s.io", unreachable, hook_ns, ["configmaps"], failurePolicy="Fail")])
    r = create_configmap(module_cluster, hook_ns, "x", {"a": "b"})
    assert r.returncode != 0
    assert 'Internal error occurred: failed calling webhook "fail-closed.k8s.io": failed to call webhook: ' \
           'Post "https://127.0.0.1:9/unreachable?timeout=10s"' in r.stderr
    module_cluster.kubectl("delete", "validatingwebhookconfiguration", f"closed-{hook_ns}")

    slow = {"url": server.url("/slow"), "caBundle": server.ca_bundle}
    register(module_cluster, "ValidatingWebhookConfiguration", f"slow-{hook_ns}",
             [webhook("slow.k8s.io", slow, hook_ns, ["configmaps"], timeoutSeconds=1, failurePolicy="Fail")])
    t = time.monotonic()
    r = create_configmap(module_cluster, hook_ns, "y", {"a": "b"})
    assert r.returncode != 0 and "context deadline exceeded" in r.stderr, r.stderr
    assert time.monotonic() - t < 4.5  # answered at the webhook's timeout, not when it finally replies
    module_cluster.kubectl("patch", "validatingwebhookconfiguration", f"slow-{hook_ns}", "--type=json",
                       "-p", '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]')
    assert create_configmap(module_cluster, hook_ns, "y", {"a": "b"}).returncode == 0
    module_cluster.kubectl("delete", "validatingwebhookconfiguration", f"slow-{hook_ns}")


@pytest.mark.conformance("Admission webhook, list validating webhooks")
@pytest.mark.conformance("Admission webhook, list mutating webhooks")
def test_webhook_configurations_are_never_admitted_and_list_by_label(module_cluster: Cluster, server: WebhookServer):
    deny_all = {"url": server.url("/deny-all"), "caBundle": server.ca_bundle}
    every = [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}]
    label = "wh-list-" + uuid.uuid4().hex[:6]
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        register(module_cluster, kind, f"{label}-{kind.lower()}",
                 [{"name": "deny-everything.k8s.io", "clientConfig": deny_all, "rules": every,
                   "objectSelector": {"matchLabels": {"deny": label}},
                   "sideEffects": "None", "admissionReviewVersions": ["v1"]}], labels={"e2e-list-test": label})
    # the webhooks deny everything labelled for them, but never webhook configurations themselves
    r = module_cluster.kubectl("create", "configmap", "victim", "-n", "default", "--from-literal=a=b", "--dry-run=client",
                           "-o", "json")
    victim = json.loads(r.stdout)
    victim["metadata"]["labels"] = {"deny": label}
    r = module_cluster.kubectl("create", "-f", "-", input=json.dumps(victim), check=False)
    assert r.returncode != 0 and 'admission webhook "deny-everything.k8s.io" denied the request: ' \
                                 "CREATE is denied" in r.stderr
    assert "(Forbidden)" in r.stderr
    dummy = {"name": "dummy.k8s.io", "clientConfig": deny_all, "rules": every,
             "objectSelector": {"matchLabels": {"deny": label}}, "sideEffects": "None",
             "admissionReviewVersions": ["v1"]}
    register(module_cluster, "ValidatingWebhookConfiguration", f"{label}-dummy", [dummy],
             labels={"deny": label, "e2e-list-test": label})
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        listed = module_cluster.kubectl("get", kind, "-l", f"e2e-list-test={label}", "-o", "name").stdout.split()
        assert len(listed) == (2 if kind.startswith("validating") else 1)
        module_cluster.kubectl("delete", kind, "-l", f"e2e-list-test={label}")
    # with the configurations gone, the labelled object is admitted
    assert module_cluster.kubectl("create", "-f", "-", input=json.dumps(victim), check=False).returncode == 0
    module_cluster.kubectl("delete", "configmap", "victim", "-n", "default")


@pytest.mark.conformance("Admission webhook, deny attach")
def test_attach_is_admitted_as_connect(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    register(module_cluster, "ValidatingWebhookConfiguration", f"attach-{hook_ns}", [
        webhook("deny-attaching-pod.k8s.io", {"url": server.url("/deny-attach"), "caBundle": server.ca_bundle},
                hook_ns, ["pods/attach"], ["CONNECT"])])
    module_cluster.kubectl("run", "to-be-attached-pod", "-n", hook_ns, "--image=busybox:1.36", "--", "sleep", "60")
    r = module_cluster.kubectl("get", "--raw",
                           f"/api/v1/namespaces/{hook_ns}/pods/to-be-attached-pod/attach?stdout=true",
                           check=False)
    assert r.returncode != 0
    assert ('admission webhook "deny-attaching-pod.k8s.io" denied the request: '
            "attaching to pod 'to-be-attached-pod' is not allowed") in r.stderr
    connect = [q for q in server.requests if q["operation"] == "CONNECT" and q.get("namespace") == hook_ns]
    assert connect and connect[-1]["subResource"] == "attach"
    assert connect[-1]["object"]["kind"] == "PodAttachOptions"
    module_cluster.kubectl("delete", "validatingwebhookconfiguration", f"attach-{hook_ns}")


def test_service_reference_and_delete(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    """clientConfig.service reaches a ready endpoint of the Service (TLS name <svc>.<ns>.svc); DELETE is
    admitted with the old object."""
    node_ip = primary_ip()
    if not node_ip:
        pytest.skip("no non-loopback address for the Service's endpoint")
    module_cluster.kubectl("create", "namespace", "hooks", check=False)
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "webhook", "namespace": "hooks"},
           "spec": {"ports": [{"port": 443, "targetPort": server.port}]}}
    eps = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "webhook", "namespace": "hooks"},
           "subsets": [{"addresses": [{"ip": node_ip}], "ports": [{"port": server.port}]}]}
    module_cluster.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                            "items": [svc, eps]}))
    client = {"service": {"namespace": "hooks", "name": "webhook", "path": "/deny-all"},
              "caBundle": server.ca_bundle}
    create_configmap(module_cluster, hook_ns, "keep-me", {"a": "b"})
    register(module_cluster, "ValidatingWebhookConfiguration", f"svc-{hook_ns}",
             [webhook("deny-delete.k8s.io", client, hook_ns, ["configmaps"], ["DELETE"])])
    r = module_cluster.kubectl("delete", "configmap", "keep-me", "-n", hook_ns, check=False)
    assert r.returncode != 0
    assert 'admission webhook "deny-delete.k8s.io" denied the request: DELETE is denied' in r.stderr
    assert module_cluster.kubectl("get", "configmap", "keep-me", "-n", hook_ns).returncode == 0
    delete = [q for q in server.requests if q["operation"] == "DELETE" and q.get("namespace") == hook_ns]
    assert delete[-1]["oldObject"]["metadata"]["name"] == "keep-me" and delete[-1]["object"] is None
    module_cluster.kubectl("delete", "validatingwebhookconfiguration", f"svc-{hook_ns}")
    module_cluster.kubectl("delete", "configmap", "keep-me", "-n", hook_ns)


@pytest.mark.conformance("Admission webhook, discovery document")
def test_webhook_resources_are_discovered(module_cluster: Cluster):
    apis = json.loads(module_cluster.kubectl("get", "--raw", "/apis").stdout)
    group = next(g for g in apis["groups"] if g["name"] == "admissionregistration.k8s.io")
    assert "admissionregistration.k8s.io/v1" in [v["groupVersion"] for v in group["versions"]]
    gv = json.loads(module_cluster.kubectl("get", "--raw", "/apis/admissionregistration.k8s.io/v1").stdout)
    names = {r["name"] for r in gv["resources"]}
    assert {"mutatingwebhookconfigurations", "validatingwebhookconfigurations"} <= names


@pytest.mark.conformance("Admission webhook, deny custom resource create and delete")
@pytest.mark.conformance("Admission webhook, mutate custom resource")
def test_custom_resources_are_admitted(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    plural = "e2e-test-webhook-" + uuid.uuid4().hex[:4] + "s"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"{plural}.webhook.example.com"},
           "spec": {"group": "webhook.example.com", "scope": "Namespaced",
                    "names": {"plural": plural, "singular": plural[:-1], "kind": "E2eTestWebhook"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object",
                                                                 "x-kubernetes-preserve-unknown-fields": True}}}]}}
    module_cluster.kubectl("apply", "-f", "-", input=json.dumps(crd))
    module_cluster.kubectl("wait", "--for=condition=Established", f"crd/{plural}.webhook.example.com")
    ca = server.ca_bundle
    register(module_cluster, "MutatingWebhookConfiguration", f"cr-mutate-{hook_ns}", [
        webhook("mutate-custom-resource-data-stage-1.k8s.io", {"url": server.url("/mutate-1"), "caBundle": ca},
                hook_ns, [plural], ["CREATE"])])
    register(module_cluster, "ValidatingWebhookConfiguration", f"cr-deny-{hook_ns}", [
        webhook("deny-custom-resource-data.k8s.io", {"url": server.url("/deny-configmaps"), "caBundle": ca},
                hook_ns, [plural], ["CREATE", "UPDATE"], objectSelector={"matchLabels": {"deny": "yes"}}),
        webhook("deny-custom-resource-deletion.k8s.io", {"url": server.url("/deny-all"), "caBundle": ca},
                hook_ns, [plural], ["DELETE"], objectSelector={"matchLabels": {"deny": "yes"}})])
    cr = {"apiVersion": "webhook.example.com/v1", "kind": "E2eTestWebhook",
          "metadata": {"name": "cr-instance", "namespace": hook_ns}, "data": {"mutation-start": "yes"}}
    module_cluster.kubectl("create", "-f", "-", input=json.dumps(cr))
    got = json.loads(module_cluster.kubectl("get", plural, "cr-instance", "-n", hook_ns, "-o", "json").stdout)
    assert got["data"] == {"mutation-start": "yes", "mutation-stage-1": "yes"}
    # a labelled instance with the unwanted data is refused; a labelled one is refused deletion too
    bad = {**cr, "metadata": {"name": "cr-bad", "namespace": hook_ns, "labels": {"deny": "yes"}},
           "data": {"webhook-e2e-test": "webhook-disallow"}}
    r = module_cluster.kubectl("create", "-f", "-", input=json.dumps(bad), check=False)
    assert r.returncode != 0 and UNWANTED in r.stderr
    module_cluster.kubectl("label", plural, "cr-instance", "-n", hook_ns, "deny=yes")
    r = module_cluster.kubectl("patch", plural, "cr-instance", "-n", hook_ns, "--type=merge",
                           "-p", '{"data":{"webhook-e2e-test":"webhook-disallow"}}', check=False)
    assert r.returncode != 0 and UNWANTED in r.stderr
    r = module_cluster.kubectl("delete", plural, "cr-instance", "-n", hook_ns, check=False)
    assert r.returncode != 0 and "DELETE is denied" in r.stderr
    assert module_cluster.kubectl("get", plural, "cr-instance", "-n", hook_ns).returncode == 0
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        module_cluster.kubectl("delete", kind, f"cr-{'mutate' if kind.startswith('m') else 'deny'}-{hook_ns}")
    module_cluster.kubectl("delete", "crd", f"{plural}.webhook.example.com")


@pytest.mark.conformance("Admission webhook, update mutating webhook")
def test_updating_mutating_webhook_rules(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    register(module_cluster, "MutatingWebhookConfiguration", f"upd-{hook_ns}", [
        webhook("adding-configmap-data-stage-1.k8s.io", {"url": server.url("/mutate-1"), "caBundle": server.ca_bundle},
                hook_ns, ["configmaps"], ["CREATE"])])

    def created_data(name: str) -> dict:
        assert create_configmap(module_cluster, hook_ns, name, {"mutation-start": "yes"}).returncode == 0
        return json.loads(module_cluster.kubectl("get", "cm", name, "-n", hook_ns, "-o", "json").stdout)["data"]

    assert created_data("first") == {"mutation-start": "yes", "mutation-stage-1": "yes"}
    # updated to leave CREATE out: a new configmap is not mutated
    module_cluster.kubectl("patch", "mutatingwebhookconfiguration", f"upd-{hook_ns}", "--type=json",
                       "-p", '[{"op":"replace","path":"/webhooks/0/rules/0/operations","value":["UPDATE"]}]')
    assert created_data("second") == {"mutation-start": "yes"}
    # patched to apply to CREATE again: mutated again
    module_cluster.kubectl("patch", "mutatingwebhookconfiguration", f"upd-{hook_ns}", "--type=json",
                       "-p", '[{"op":"replace","path":"/webhooks/0/rules/0/operations","value":["CREATE"]}]')
    assert created_data("third") == {"mutation-start": "yes", "mutation-stage-1": "yes"}
    module_cluster.kubectl("delete", "mutatingwebhookconfiguration", f"upd-{hook_ns}")


@pytest.mark.conformance("Admission webhook, admission control not allowed on webhook configuration objects")
def test_webhook_configurations_cannot_be_mutated_or_kept(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    """Webhooks that would label webhook configurations and deny their deletion are never asked about them."""
    ca = server.ca_bundle
    config_rules = [{"operations": ["*"], "apiGroups": ["admissionregistration.k8s.io"], "apiVersions": ["*"],
                     "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]}]
    register(module_cluster, "ValidatingWebhookConfiguration", f"keep-{hook_ns}", [
        {"name": "deny-webhook-configuration-deletions.k8s.io", "clientConfig": {"url": server.url("/deny-all"),
                                                                                "caBundle": ca},
         "rules": [dict(config_rules[0], operations=["DELETE"])], "sideEffects": "None",
         "admissionReviewVersions": ["v1"]}])
    register(module_cluster, "MutatingWebhookConfiguration", f"label-{hook_ns}", [
        {"name": "add-label-to-webhook-configurations.k8s.io", "clientConfig": {"url": server.url("/add-label"),
                                                                               "caBundle": ca},
         "rules": config_rules, "sideEffects": "None", "admissionReviewVersions": ["v1"]}])
    dummy = {"name": "dummy.k8s.io", "failurePolicy": "Ignore",
             "clientConfig": {"url": "https://127.0.0.1:9/never-called", "caBundle": ca},
             "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["invalid"]}],
             "sideEffects": "None", "admissionReviewVersions": ["v1"]}
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        register(module_cluster, kind, f"dummy-{hook_ns}", [dummy])
        got = json.loads(module_cluster.kubectl("get", kind.lower(), f"dummy-{hook_ns}", "-o", "json").stdout)
        assert "added-by-webhook" not in (got["metadata"].get("labels") or {})
        module_cluster.kubectl("delete", kind.lower(), f"dummy-{hook_ns}")
        assert module_cluster.kubectl("get", kind.lower(), f"dummy-{hook_ns}", check=False).returncode != 0
    assert not [q for q in server.requests if q["resource"]["group"] == "admissionregistration.k8s.io"]
    module_cluster.kubectl("delete", "validatingwebhookconfiguration", f"keep-{hook_ns}")
    module_cluster.kubectl("delete", "mutatingwebhookconfiguration", f"label-{hook_ns}")


@pytest.mark.conformance("Admission webhook, deny custom resource definition")
def test_crd_creation_denied(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    register(module_cluster, "ValidatingWebhookConfiguration", f"crd-{hook_ns}", [
        {"name": "deny-crd-with-unwanted-label.k8s.io",
         "clientConfig": {"url": server.url("/deny-crd"), "caBundle": server.ca_bundle},
         "rules": [{"operations": ["CREATE"], "apiGroups": ["apiextensions.k8s.io"], "apiVersions": ["*"],
                    "resources": ["customresourcedefinitions"]}],
         "objectSelector": {"matchLabels": {hook_ns: "true"}}, "sideEffects": "None",
         "admissionReviewVersions": ["v1", "v1beta1"]}])
    name = f"e2e-test-{hook_ns}-deny-crd"
    crd = test_crd(name, f"{hook_ns}.example.com", {"webhook-e2e-test": "webhook-disallow", hook_ns: "true"})
    r = module_cluster.kubectl("create", "-f", "-", input=json.dumps(crd), check=False)
    assert r.returncode != 0 and "the crd contains unwanted label" in r.stderr, r.stderr
    assert module_cluster.kubectl("get", "crd", crd["metadata"]["name"], check=False).returncode != 0
    # without the unwanted label the same definition is created
    crd["metadata"]["labels"] = {hook_ns: "true"}
    module_cluster.kubectl("create", "-f", "-", input=json.dumps(crd))
    module_cluster.kubectl("delete", "crd", crd["metadata"]["name"])
    module_cluster.kubectl("delete", "validatingwebhookconfiguration", f"crd-{hook_ns}")


def test_crd(name: str, group: str, labels: dict | None = None, versions: list[dict] | None = None) -> dict:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{name}s.{group}", "labels": labels or {}},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": f"{name}s", "singular": name, "kind": "E2eTestCrd",
                               "listKind": "E2eTestCrdList"},
                     "versions": versions or [{"name": "v1", "served": True, "storage": True, "schema": schema}]}}


test_crd.__test__ = False  # a helper, not a test


def _cr_mutating_webhooks(module_cluster: Cluster, server: WebhookServer, hook_ns: str, plural: str) -> None:
    """upstream's registerMutatingWebhookForCustomResource: stage 1 on CREATE/UPDATE, stage 2 on CREATE."""
    ca = server.ca_bundle
    register(module_cluster, "MutatingWebhookConfiguration", f"cr-{hook_ns}", [
        webhook("mutate-custom-resource-data-stage-1.k8s.io", {"url": server.url("/mutate-1"), "caBundle": ca},
                hook_ns, [plural], ["CREATE", "UPDATE"]),
        webhook("mutate-custom-resource-data-stage-2.k8s.io", {"url": server.url("/mutate-2"), "caBundle": ca},
                hook_ns, [plural], ["CREATE"])])


@pytest.mark.conformance("Admission webhook, mutate custom resource with different stored version")
def test_mutate_custom_resource_after_storage_version_change(module_cluster: Cluster, server: WebhookServer,
                                                             hook_ns: str):
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    group, name = f"{hook_ns}.example.com", "e2e-test-multiversion"
    crd = test_crd(name, group, versions=[{"name": "v1", "served": True, "storage": True, "schema": schema},
                                          {"name": "v2", "served": True, "storage": False, "schema": schema}])
    module_cluster.kubectl("create", "-f", "-", input=json.dumps(crd))
    module_cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}s.{group}")
    _cr_mutating_webhooks(module_cluster, server, hook_ns, f"{name}s")
    cr = {"apiVersion": f"{group}/v1", "kind": "E2eTestCrd", "metadata": {"name": "cr-instance-1",
                                                                          "namespace": hook_ns},
          "data": {"mutation-start": "yes"}}
    module_cluster.kubectl("create", "-f", "-", input=json.dumps(cr))
    patch = {"spec": {"versions": [dict(v, storage=v["name"] == "v2") for v in crd["spec"]["versions"]]}}
    module_cluster.kubectl("patch", "crd", f"{name}s.{group}", "--type=merge", "-p", json.dumps(patch))
    r = module_cluster.kubectl("patch", f"{name}s.v2.{group}", "cr-instance-1", "-n", hook_ns, "--type=json",
                           "-p", '[{"op":"add","path":"/dummy","value":"test"}]', "-o", "json")
    got = json.loads(r.stdout)
    assert got["apiVersion"] == f"{group}/v2"
    assert got["data"] == {"mutation-start": "yes", "mutation-stage-1": "yes", "mutation-stage-2": "yes"}
    assert got["dummy"] == "test"
    update = [q for q in server.requests if q.get("namespace") == hook_ns and q["operation"] == "UPDATE"]
    assert update and update[-1]["kind"]["version"] == "v2"
    module_cluster.kubectl("delete", "mutatingwebhookconfiguration", f"cr-{hook_ns}")
    module_cluster.kubectl("delete", "crd", f"{name}s.{group}")


@pytest.mark.conformance("Admission webhook, mutate custom resource with pruning")
def test_mutate_custom_resource_with_pruning(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    """What a webhook adds outside the schema is pruned; what the schema names is kept."""
    schema = {"openAPIV3Schema": {"type": "object", "properties": {"data": {
        "type": "object", "properties": {"mutation-start": {"type": "string"},
                                         "mutation-stage-1": {"type": "string"}}}}}}
    group, name = f"{hook_ns}.example.com", "e2e-test-prune"
    crd = test_crd(name, group, versions=[{"name": "v1", "served": True, "storage": True, "schema": schema},
                                          {"name": "v2", "served": True, "storage": False, "schema": schema}])
    module_cluster.kubectl("create", "-f", "-", input=json.dumps(crd))
    module_cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}s.{group}")
    _cr_mutating_webhooks(module_cluster, server, hook_ns, f"{name}s")
    cr = {"apiVersion": f"{group}/v1", "kind": "E2eTestCrd", "metadata": {"name": "cr-instance-1",
                                                                          "namespace": hook_ns},
          "data": {"mutation-start": "yes"}}
    r = module_cluster.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(cr))
    assert json.loads(r.stdout)["data"] == {"mutation-start": "yes", "mutation-stage-1": "yes"}
    # stage 2 did run (it saw stage 1), and its key was pruned
    assert any(q["name"] == "cr-instance-1" and q.get("namespace") == hook_ns and q["path"] == "/mutate-2"
               for q in server.requests)
    module_cluster.kubectl("delete", "mutatingwebhookconfiguration", f"cr-{hook_ns}")
    module_cluster.kubectl("delete", "crd", f"{name}s.{group}")


MATCH_CONDITIONS = [{"name": "expression-1", "expression": "object.metadata.namespace == 'production'"}]
UPDATED_CONDITIONS = MATCH_CONDITIONS + [{"name": "expression-2",
                                          "expression": "object.metadata.namespace == 'staging'"}]


@pytest.mark.conformance("Validating Admission webhook, create and update validating webhook configuration with "
                         "matchConditions")
@pytest.mark.conformance("Mutating Admission webhook, create and update mutating webhook configuration with "
                         "matchConditions")
def test_match_conditions_are_stored_and_updated(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    api = module_cluster.api_client()
    try:
        from kubernetes import client

        adm = client.AdmissionregistrationV1Api(api)
        for kind in ("validating", "mutating"):
            hook = webhook(f"{kind}-match.k8s.io", {"url": server.url("/deny-all"), "caBundle": server.ca_bundle},
                           hook_ns, ["configmaps"], matchConditions=MATCH_CONDITIONS)
            body = {"metadata": {"name": f"{kind}-{hook_ns}"}, "webhooks": [hook]}
            create = getattr(adm, f"create_{kind}_webhook_configuration")
            read = getattr(adm, f"read_{kind}_webhook_configuration")
            replace = getattr(adm, f"replace_{kind}_webhook_configuration")
            create(body)
            got = read(f"{kind}-{hook_ns}")
            assert [(c.name, c.expression) for c in got.webhooks[0].match_conditions] == \
                [(c["name"], c["expression"]) for c in MATCH_CONDITIONS]
            got.webhooks[0].match_conditions = [client.V1MatchCondition(**c) for c in UPDATED_CONDITIONS]
            replace(f"{kind}-{hook_ns}", got)
            got = read(f"{kind}-{hook_ns}")
            assert [(c.name, c.expression) for c in got.webhooks[0].match_conditions] == \
                [(c["name"], c["expression"]) for c in UPDATED_CONDITIONS]
        # the conditions hold for neither namespace here: the deny-all webhooks are not called
        assert create_configmap(module_cluster, hook_ns, "not-matched", {"a": "b"}).returncode == 0
        for kind in ("validating", "mutating"):
            getattr(adm, f"delete_{kind}_webhook_configuration")(f"{kind}-{hook_ns}")
    finally:
        api.close()


@pytest.mark.conformance("Validating Admission webhook, reject validating webhook configurations with invalid "
                         "matchConditions")
@pytest.mark.conformance("Mutating Admission webhook, reject mutating webhook configurations with invalid "
                         "matchConditions")
def test_invalid_match_conditions_are_rejected(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    bad = [{"name": "invalid-expression-1", "expression": "... [] bad expression"}]
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        hook = webhook("bad-match.k8s.io", {"url": server.url("/deny-all"), "caBundle": server.ca_bundle},
                       hook_ns, ["configmaps"], matchConditions=bad)
        cfg = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
               "metadata": {"name": f"bad-{hook_ns}"}, "webhooks": [hook]}
        r = module_cluster.kubectl("create", "-f", "-", input=json.dumps(cfg), check=False)
        assert r.returncode != 0
        assert (f'The {kind} "bad-{hook_ns}" is invalid: '
                'webhooks[0].matchConditions[0].expression: Invalid value: "... [] bad expression": '
                "compilation failed: ERROR: <input>:1:") in r.stderr, r.stderr
        assert module_cluster.kubectl("get", kind.lower(), f"bad-{hook_ns}", check=False).returncode != 0


@pytest.mark.conformance("Mutating Admission webhook, mutating webhook excluding object with specific name")
def test_match_condition_skips_named_object(module_cluster: Cluster, server: WebhookServer, hook_ns: str):
    hook = webhook("adding-configmap-data-stage-1.k8s.io", {"url": server.url("/mutate-1"),
                                                           "caBundle": server.ca_bundle},
                   hook_ns, ["configmaps"], ["CREATE"],
                   matchConditions=[{"name": "skip-me", "expression": "object.metadata.name != 'skip-me'"}])
    register(module_cluster, "MutatingWebhookConfiguration", f"skip-{hook_ns}", [hook])
    assert create_configmap(module_cluster, hook_ns, "random-" + uuid.uuid4().hex[:6],
                            {"mutation-start": "yes"}).returncode == 0
    listed = json.loads(module_cluster.kubectl("get", "cm", "-n", hook_ns, "-o", "json").stdout)["items"]
    assert [c["data"] for c in listed if c["metadata"]["name"].startswith("random-")] == \
        [{"mutation-start": "yes", "mutation-stage-1": "yes"}]
    assert create_configmap(module_cluster, hook_ns, "skip-me", {"mutation-start": "yes"}).returncode == 0
    got = json.loads(module_cluster.kubectl("get", "cm", "skip-me", "-n", hook_ns, "-o", "json").stdout)
    assert got["data"] == {"mutation-start": "yes"}
    # an expression that fails at run time fails the call under failurePolicy Fail
    module_cluster.kubectl("patch", "mutatingwebhookconfiguration", f"skip-{hook_ns}", "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/webhooks/0/matchConditions/0/expression",
          "value": "object.data['no-such-key'] == 'x'"}]))
    r = create_configmap(module_cluster, hook_ns, "erring", {"mutation-start": "yes"})
    assert r.returncode != 0
    assert ('Internal error occurred: failed calling webhook "adding-configmap-data-stage-1.k8s.io": '
            "failed evaluating match conditions") in r.stderr, r.stderr
    module_cluster.kubectl("delete", "mutatingwebhookconfiguration", f"skip-{hook_ns}")
