"""Container environment as upstream's kubelet builds it: service links, envFrom, env with the
downward API and ConfigMap/Secret references, and $(VAR) expansion of values, command and args."""

from __future__ import annotations

import base64
import re
from decimal import ROUND_CEILING, Decimal
from typing import Any

from kubelite.api.errors import StatusError
from kubelite.api.kinds.common import parse_quantity


class ContainerConfigError(Exception):
    """CreateContainerConfigError: a referenced ConfigMap/Secret or key is missing."""


class ObjectSource:
    """ConfigMaps and Secrets for one sync, read from the API once each (None when absent)."""

    def __init__(self, client: Any):
        self.client = client
        self._cache: dict[tuple[str, str, str], dict | None] = {}

    async def get(self, kind: str, namespace: str, name: str) -> dict | None:
        key = (kind, namespace, name)
        if key not in self._cache:
            res = self.client.configmaps if kind == "ConfigMap" else self.client.secrets
            try:
                self._cache[key] = await res.get(name, namespace)
            except StatusError as e:
                if e.code != 404:
                    raise
                self._cache[key] = None
        return self._cache[key]

    async def data(self, kind: str, namespace: str, name: str) -> dict[str, bytes] | None:
        """The object's keys as bytes (Secret data decoded, ConfigMap binaryData included)."""
        obj = await self.get(kind, namespace, name)
        if obj is None:
            return None
        out: dict[str, bytes] = {}
        if kind == "Secret":
            for k, v in (obj.get("data") or {}).items():
                out[k] = base64.b64decode(v or "")
            for k, v in (obj.get("stringData") or {}).items():
                out[k] = (v or "").encode()
        else:
            for k, v in (obj.get("data") or {}).items():
                out[k] = (v or "").encode()
            for k, v in (obj.get("binaryData") or {}).items():
                out[k] = base64.b64decode(v or "")
        return out


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """third_party/forked/golang/expansion: $(VAR) from env, $$ escapes, unknown refs stay as written."""
    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _VAR.sub(repl, value)


def service_env(services: list[dict], namespace: str, master_services: list[dict]) -> dict[str, str]:
    """Docker-links style variables for services (FOO_SERVICE_HOST, FOO_PORT_80_TCP...), as
    enableServiceLinks gives, plus the master `kubernetes` service from the default namespace."""
    out: dict[str, str] = {}
    seen = set()
    for svc in list(services) + list(master_services):
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        if meta.get("namespace") != namespace and meta.get("name") != "kubernetes":
            continue
        name = meta.get("name", "")
        if name in seen:
            continue
        seen.add(name)
        prefix = name.upper().replace("-", "_")
        ports = spec.get("ports") or []
        out[f"{prefix}_SERVICE_HOST"] = ip
        if ports:
            out[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                out[f"{prefix}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p.get("port"))
        if ports:
            first = ports[0]
            proto = (first.get("protocol") or "TCP").lower()
            out[f"{prefix}_PORT"] = f"{proto}://{ip}:{first.get('port')}"
        for p in ports:
            proto = p.get("protocol") or "TCP"
            base = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
            out[base] = f"{proto.lower()}://{ip}:{p.get('port')}"
            out[base + "_PROTO"] = proto.lower()
            out[base + "_PORT"] = str(p.get("port"))
            out[base + "_ADDR"] = ip
    return out


def field_ref(pod: dict, path: str, host_ip: str = "", pod_ips: list[str] | None = None) -> str:
    """The downward API's fieldRef values (fieldpath.ExtractFieldPathAsString + the kubelet's extras)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    pod_ips = pod_ips or []
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    if path == "metadata.labels":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("labels") or {}).items()))
    if path == "metadata.annotations":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("annotations") or {}).items()))
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "status.podIP": pod_ips[0] if pod_ips else "",
        "status.podIPs": ",".join(pod_ips),
    }
    if path in simple:
        return str(simple[path])
    raise ContainerConfigError(f"unsupported fieldPath: {path}")


def resource_field_ref(pod: dict, container_name: str, ref: dict, allocatable: dict[str, str]) -> str:
    """limits.cpu / requests.memory / ... of a container, divided by `divisor` and rounded up;
    an unset limit reads as the node's allocatable (upstream's MergeContainerResourceLimits)."""
    name = ref.get("containerName") or container_name
    containers = list((pod.get("spec") or {}).get("containers") or []) + list(
        (pod.get("spec") or {}).get("initContainers") or [])
    c = next((x for x in containers if x.get("name") == name), None)
    if c is None:
        raise ContainerConfigError(f"container {name} not found")
    res = c.get("resources") or {}
    kind, _, resource = (ref.get("resource") or "").partition(".")
    values = res.get(kind) or {}
    raw = values.get(resource)
    if raw is None and kind == "requests":
        raw = (res.get("limits") or {}).get(resource)
    if raw is None:
        if kind == "requests" and resource in ("cpu", "memory"):
            raw = "0"
        else:
            raw = allocatable.get(resource, "0")
    value = parse_quantity(raw)
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor == 0:
        divisor = Decimal(1)
    out = (value / divisor).to_integral_value(rounding=ROUND_CEILING)
    if resource == "cpu" and value > 0 and out == 0:
        out = Decimal(1)
    return str(int(out))


async def container_env(pod: dict, container: dict, objects: ObjectSource, *, host_ip: str, pod_ips: list[str],
                        service_vars: dict[str, str], allocatable: dict[str, str]) -> list[tuple[str, str]]:
    """The (name, value) list a container starts with; raises ContainerConfigError as upstream words it."""
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    env: dict[str, str] = {}
    order: list[str] = []

    def put(k: str, v: str) -> None:
        if k not in env:
            order.append(k)
        env[k] = v

    for src in container.get("envFrom") or []:
        prefix = src.get("prefix") or ""
        if src.get("configMapRef"):
            kind, ref = "ConfigMap", src["configMapRef"]
        elif src.get("secretRef"):
            kind, ref = "Secret", src["secretRef"]
        else:
            continue
        data = await objects.data(kind, ns, ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(f'{kind.lower()} "{ref.get("name", "")}" not found')
        for k in sorted(data):
            put(prefix + k, data[k].decode(errors="replace"))

    for e in container.get("env") or []:
        name = e.get("name", "")
        vf = e.get("valueFrom")
        if not vf:
            value = expand(e.get("value") or "", {**service_vars, **env})
        elif vf.get("fieldRef"):
            value = field_ref(pod, vf["fieldRef"].get("fieldPath", ""), host_ip, pod_ips)
        elif vf.get("resourceFieldRef"):
            value = resource_field_ref(pod, container.get("name", ""), vf["resourceFieldRef"], allocatable)
        elif vf.get("configMapKeyRef") or vf.get("secretKeyRef"):
            kind = "ConfigMap" if vf.get("configMapKeyRef") else "Secret"
            ref = vf.get("configMapKeyRef") or vf.get("secretKeyRef")
            data = await objects.data(kind, ns, ref.get("name", ""))
            key = ref.get("key", "")
            if data is None:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f'{kind.lower()} "{ref.get("name", "")}" not found')
            if key not in data:
                if ref.get("optional"):
                    continue
                raise ContainerConfigError(f"couldn't find key {key} in {kind} {ns}/{ref.get('name', '')}")
            value = data[key].decode(errors="replace")
        else:
            value = ""
        put(name, value)

    for k, v in service_vars.items():
        if k not in env:
            put(k, v)
    return [(k, env[k]) for k in order]


def expand_command(container: dict, env: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    lookup = dict(env)
    return ([expand(c, lookup) for c in container.get("command") or []],
            [expand(a, lookup) for a in container.get("args") or []])
