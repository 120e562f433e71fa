"""Custom resources in garbage collection and namespace deletion: are they as fast as built-in kinds?

Run: python bench/crd_gc.py [--objects 200]

Starts a real kubelite (`kubelite up`), creates a CustomResourceDefinition at run time and drives the
cluster with the real kubectl, as a user would:
- pick-up: from `kubectl apply` of a new CRD to its first custom owner's dependent being collected
  (the collector must notice the new resource, watch it and see the owner go);
- background collection: N ConfigMaps owned by one custom object, then by one ConfigMap: the time
  from `kubectl delete` of the owner until the last dependent is gone, and their ratio;
- namespace deletion: `kubectl delete ns` of a namespace holding N custom objects, then N ConfigMaps,
  and their ratio.
Prints the figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import controllers  # noqa: E402  (bench/controllers.py: kubectl and the simulated cluster)

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.bench.example.com"},
    "spec": {"group": "bench.example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


class Kubectl(controllers.Kubectl):
    """kubectl, and the custom-object conveniences of this bench."""

    def create(self, ns: str, *objs: dict) -> list[dict]:
        text = self("create", "-n", ns, "-o", "json", "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))
        out, pos, dec = [], 0, json.JSONDecoder()  # one JSON document per object created
        while text[pos:].strip():
            obj, end = dec.raw_decode(text, pos)
            out.extend(obj["items"] if obj.get("kind") == "List" else [obj])
            pos = end
            while pos < len(text) and text[pos].isspace():
                pos += 1
        return out

    def count(self, ns: str, resource: str) -> int:
        return len(self("get", resource, "-n", ns, "-l", "bench=dep", "-o", "name").split())


def widget(name: str) -> dict:
    return {"apiVersion": "bench.example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {}}


def configmap(name: str, owner: dict | None = None) -> dict:
    meta: dict = {"name": name, "labels": {"bench": "dep"}}
    if owner is not None:
        m = owner["metadata"]
        meta["ownerReferences"] = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": m["name"],
                                    "uid": m["uid"]}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": "b"}}


def wait_zero(k: Kubectl, ns: str, resource: str, t0: float, timeout: float = 300) -> float:
    while time.perf_counter() - t0 < timeout:
        if k.count(ns, resource) == 0:
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise TimeoutError(f"{resource} in {ns} not collected after {timeout}s")


def collect(k: Kubectl, ns: str, owner: dict, resource: str, n: int) -> float:
    """Seconds from deleting owner until its n dependent ConfigMaps are gone."""
    k.create(ns, *[configmap(f"dep-{i}", owner) for i in range(n)])
    t0 = time.perf_counter()
    k("delete", resource, owner["metadata"]["name"], "-n", ns, "--wait=false")
    return wait_zero(k, ns, "configmaps", t0) if n else 0.0


def delete_namespace(k: Kubectl, ns: str, objs: list[dict]) -> float:
    k("create", "namespace", ns)
    k.create(ns, *objs)
    t0 = time.perf_counter()
    k("delete", "namespace", ns, "--timeout=300s")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=200)
    args = ap.parse_args()
    n = args.objects
    with controllers.simulated_cluster("kubelite-bench-crd-", 1) as kc:
        k = Kubectl(kc)
        k("create", "namespace", "gc")

        t0 = time.perf_counter()
        k("apply", "-f", "-", input=json.dumps(CRD))
        k("wait", "--for=condition=Established", "crd/widgets.bench.example.com", "--timeout=60s")
        while True:  # kubectl's discovery may lag the CRD by a moment
            try:
                first = k.create("gc", widget("first"))[0]
                break
            except subprocess.CalledProcessError:
                time.sleep(0.05)
        k.create("gc", configmap("first-dep", first))
        k("delete", "widgets", "first", "-n", "gc", "--wait=false")
        pickup_s = wait_zero(k, "gc", "configmaps", t0)

        owner = k.create("gc", widget("owner"))[0]
        custom_s = collect(k, "gc", owner, "widgets", n)
        owner = k.create("gc", dict(configmap("owner"), metadata={"name": "owner"}))[0]
        builtin_s = collect(k, "gc", owner, "configmap", n)

        ns_custom_s = delete_namespace(k, "ns-custom", [widget(f"w-{i}") for i in range(n)])
        ns_builtin_s = delete_namespace(k, "ns-builtin", [configmap(f"c-{i}") for i in range(n)])

        print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
        print(f"new CRD applied -> first custom owner's dependent collected: {pickup_s:6.2f} s")
        print(f"background collection of {n} ConfigMaps, custom owner:    {custom_s:6.2f} s")
        print(f"background collection of {n} ConfigMaps, ConfigMap owner: {builtin_s:6.2f} s   "
              f"(custom / built-in: {custom_s / builtin_s:.2f}x)")
        print(f"kubectl delete ns with {n} custom objects:  {ns_custom_s:6.2f} s")
        print(f"kubectl delete ns with {n} ConfigMaps:      {ns_builtin_s:6.2f} s   "
              f"(custom / built-in: {ns_custom_s / ns_builtin_s:.2f}x)")


if __name__ == "__main__":
    main()
