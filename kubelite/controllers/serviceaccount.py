"""ServiceAccounts controller and root-CA publisher.

Upstream's serviceaccounts-controller makes sure every active namespace has a `default`
ServiceAccount (recreated when deleted); the root-ca-cert-publisher keeps a ConfigMap
`kube-root-ca.crt` with the cluster CA (`ca.crt`) in every namespace, reconciled if modified.
"""

from __future__ import annotations

import logging
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.client.controller import Controller
from kubelite.client.informer import SharedInformerFactory

log = logging.getLogger(__name__)

Obj = dict[str, Any]

DEFAULT_SA = "default"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
# where the bootstrap leaves the CA: its own copy first, then cluster-info's kubeconfig
CA_SOURCES = (("default", ROOT_CA_CONFIGMAP), ("kube-system", ROOT_CA_CONFIGMAP))
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")


def _active(ns: Obj | None) -> bool:
    return ns is not None and not (ns.get("metadata") or {}).get("deletionTimestamp") and \
        (ns.get("status") or {}).get("phase", "Active") == "Active"


class ServiceAccountsController:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 3):
        self.sas = client.resource("", "v1", "serviceaccounts")
        self.ns_informer = factory.informer("", "v1", "namespaces")
        self.sa_informer = factory.informer("", "v1", "serviceaccounts")
        self.controller = Controller("serviceaccount-controller", self.sync, workers=workers)
        self.controller.watch(self.ns_informer)
        self.sa_informer.add_handler(on_delete=self._sa_deleted)

    def _sa_deleted(self, sa: Obj) -> None:
        m = sa.get("metadata") or {}
        if m.get("name") == DEFAULT_SA and m.get("namespace"):
            self.controller.enqueue(m["namespace"])

    async def sync(self, key: str) -> None:
        if not _active(self.ns_informer.store.get(None, key)):
            return
        if self.sa_informer.store.get(key, DEFAULT_SA) is not None:
            return
        try:
            await self.sas.create({"apiVersion": "v1", "kind": "ServiceAccount",
                                   "metadata": {"name": DEFAULT_SA, "namespace": key}}, namespace=key)
        except StatusError as e:
            if e.reason == "AlreadyExists" or (e.code == 403 and "terminat" in e.message):
                return
            raise

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()


class RootCACertPublisher:
    def __init__(self, client: Any, factory: SharedInformerFactory, workers: int = 3, ca_pem: str | None = None):
        self.client = client
        self.configmaps = client.resource("", "v1", "configmaps")
        self.ns_informer = factory.informer("", "v1", "namespaces")
        self.cm_informer = factory.informer("", "v1", "configmaps")
        self.ca_pem = ca_pem
        self.controller = Controller("root-ca-cert-publisher", self.sync, workers=workers)
        self.controller.watch(self.ns_informer)
        self.cm_informer.add_handler(on_update=lambda _o, n: self._cm_changed(n), on_delete=self._cm_changed)

    def _cm_changed(self, cm: Obj) -> None:
        m = cm.get("metadata") or {}
        if m.get("name") == ROOT_CA_CONFIGMAP and m.get("namespace"):
            self.controller.enqueue(m["namespace"])

    async def _ca(self) -> str | None:
        if self.ca_pem:
            return self.ca_pem
        for ns, name in CA_SOURCES:
            cm = self.cm_informer.store.get(ns, name)
            ca = ((cm or {}).get("data") or {}).get("ca.crt")
            if ca:
                self.ca_pem = ca
                return ca
        try:
            info = await self.configmaps.get("cluster-info", namespace="kube-public")
        except StatusError:
            return None
        kubeconfig = (info.get("data") or {}).get("kubeconfig") or ""
        import base64

        import yaml

        try:
            cfg = yaml.safe_load(kubeconfig) or {}
            data = cfg["clusters"][0]["cluster"]["certificate-authority-data"]
            self.ca_pem = base64.b64decode(data).decode()
        except Exception:
            return None
        return self.ca_pem

    async def sync(self, key: str) -> float | None:
        if not _active(self.ns_informer.store.get(None, key)):
            return None
        ca = await self._ca()
        if not ca:
            return 2.0  # the bootstrap has not published the CA yet
        cm = self.cm_informer.store.get(key, ROOT_CA_CONFIGMAP)
        want = {"ca.crt": ca}
        try:
            if cm is None:
                await self.configmaps.create({"apiVersion": "v1", "kind": "ConfigMap",
                                              "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": key,
                                                           "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                                              "data": want}, namespace=key)
            elif (cm.get("data") or {}) != want or cm.get("binaryData") or \
                    ((cm.get("metadata") or {}).get("annotations") or {}).get(DESCRIPTION_ANNOTATION) != DESCRIPTION:
                fixed = dict(cm, data=want)
                fixed.pop("binaryData", None)
                fixed["metadata"] = dict(cm["metadata"])
                fixed["metadata"]["annotations"] = dict(cm["metadata"].get("annotations") or {},
                                                        **{DESCRIPTION_ANNOTATION: DESCRIPTION})
                await self.configmaps.update(fixed)
        except StatusError as e:
            if e.reason in ("AlreadyExists", "Conflict", "NotFound") or (e.code == 403 and "terminat" in e.message):
                return None
            raise
        return None

    def start(self) -> None:
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
