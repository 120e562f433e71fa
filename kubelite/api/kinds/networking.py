"""networking.k8s.io/v1: Ingress, IngressClass, NetworkPolicy.

Mirrors pkg/apis/networking/v1/defaults.go, pkg/apis/networking/validation/validation.go and the
printers in pkg/printers/internalversion/printers.go.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import GoRepr, age_cell, age_column, definition, spec_of
from kubelite.api.registry import Column, Obj, Registry, Resource

INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_INGRESS_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"

# ---------------------------------------------------------------------------------------------
# Ingress


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _validate_host(host: str, path: str) -> list[FieldError]:
    if _is_ip(host):
        return [ferr.invalid(path, host, "must be a DNS name, not an IP address")]
    if "*" in host:
        # IsWildcardDNS1123Subdomain
        if not host.startswith("*.") or "*" in host[2:] or common.dns1123_subdomain(host[2:]):
            return [ferr.invalid(path, host, common.regex_error(
                "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must "
                "consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
                r"\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", "*.example.com"))]
        return []
    return [ferr.invalid(path, host, m) for m in common.dns1123_subdomain(host)]


def _validate_backend(backend: dict, path: str) -> list[FieldError]:
    """validateIngressBackend."""
    errs: list[FieldError] = []
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [ferr.invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        if not resource.get("kind"):
            errs.append(ferr.required(f"{path}.resource.kind", ""))
        if not resource.get("name"):
            errs.append(ferr.required(f"{path}.resource.name", ""))
        return errs
    if service is None:
        return [ferr.invalid(path, "", "resource or service backend is required")]
    name = service.get("name") or ""
    if not name:
        errs.append(ferr.required(f"{path}.service.name", ""))
    else:
        errs.extend(ferr.invalid(f"{path}.service.name", name, m) for m in common.dns1035_label(name))
    port = service.get("port") or {}
    pname, pnum = port.get("name") or "", port.get("number") or 0
    if pname and pnum:
        errs.append(ferr.invalid(path, "", "cannot set both port name & port number"))
    elif pname:
        errs.extend(ferr.invalid(f"{path}.service.port.name", pname, m) for m in common.port_name(pname))
    elif pnum:
        errs.extend(ferr.invalid(f"{path}.service.port.number", pnum, m) for m in common.port_num(pnum))
    else:
        errs.append(ferr.required(path, "port name or number is required"))
    return errs


_INVALID_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_SUFFIXES = ("/..", "/.")


def _validate_path(p: dict, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    value = p.get("path") or ""
    ptype = p.get("pathType")
    if ptype is None:
        errs.append(ferr.required(f"{path}.pathType", "pathType must be specified"))
    elif ptype in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.append(ferr.invalid(f"{path}.path", value, "must be an absolute path"))
        if value:
            errs.extend(ferr.invalid(f"{path}.path", value, f"must not contain '{s}'") for s in _INVALID_SEQUENCES if s in value)
            errs.extend(ferr.invalid(f"{path}.path", value, f"cannot end with '{s}'") for s in _INVALID_SUFFIXES if value.endswith(s))
    elif ptype == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.append(ferr.invalid(f"{path}.path", value, "must be an absolute path"))
    else:
        errs.append(ferr.not_supported(f"{path}.pathType", ptype, ["Exact", "ImplementationSpecific", "Prefix"]))
    errs.extend(_validate_backend(p.get("backend") or {}, f"{path}.backend"))
    return errs


def validate_ingress_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    """ValidateIngressSpec."""
    errs: list[FieldError] = []
    rules = spec.get("rules")
    if not rules and spec.get("defaultBackend") is None:
        value = GoRepr("[]networking.IngressRule{}" if rules == [] else "[]networking.IngressRule(nil)")
        errs.append(ferr.invalid(path, value, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        errs.extend(_validate_backend(spec["defaultBackend"], f"{path}.defaultBackend"))
    for i, rule in enumerate(rules or []):
        rp = f"{path}.rules[{i}]"
        host = rule.get("host") or ""
        if host:
            errs.extend(_validate_host(host, f"{rp}.host"))
        http = rule.get("http")
        if http is not None:
            paths = http.get("paths") or []
            if not paths:
                errs.append(ferr.required(f"{rp}.http.paths", ""))
            for j, p in enumerate(paths):
                errs.extend(_validate_path(p, f"{rp}.http.paths[{j}]"))
    for i, tls in enumerate(spec.get("tls") or []):
        for j, host in enumerate(tls.get("hosts") or []):
            if "*" in host:
                errs.extend(_validate_host(host, f"{path}.tls[{i}].hosts[{j}]"))
            else:
                errs.extend(ferr.invalid(f"{path}.tls[{i}].hosts[{j}]", host, m) for m in common.dns1123_subdomain(host))
        secret = tls.get("secretName") or ""
        if secret:
            errs.extend(ferr.invalid(f"{path}.tls[{i}].secretName", secret, m) for m in common.dns1123_subdomain(secret))
    cls = spec.get("ingressClassName")
    if cls is not None:
        errs.extend(ferr.invalid(f"{path}.ingressClassName", cls, m) for m in common.dns1123_subdomain(cls))
    return errs


def validate_ingress(obj: Obj) -> list[FieldError]:
    errs = common.validate_object_meta(obj, True, "subdomain")
    spec = obj.get("spec") or {}
    errs.extend(validate_ingress_spec(spec))
    anns = (obj.get("metadata") or {}).get("annotations") or {}
    if spec.get("ingressClassName") is not None and INGRESS_CLASS_ANNOTATION in anns:
        errs.append(ferr.invalid(f"annotations.{INGRESS_CLASS_ANNOTATION}", anns[INGRESS_CLASS_ANNOTATION],
                                 "can not be set when the class field is also set"))
    return errs


def validate_ingress_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_ingress_spec(new.get("spec") or {})


def prepare_create_ingress(obj: Obj) -> None:
    obj["status"] = {"loadBalancer": {}}


def _format_hosts(rules: list) -> str:
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        if not more and rule.get("host"):
            hosts.append(rule["host"])
    if not hosts:
        return "*"
    s = ",".join(hosts)
    return f"{s} + {len(rules) - 3} more..." if more else s


def load_balancer_address(lb: Any, wide: bool = True) -> str:
    """ingressLoadBalancerStatusStringer (the server builds tables wide)."""
    result = set()
    for ing in (lb or {}).get("ingress") or []:
        if ing.get("ip"):
            result.add(ing["ip"])
        elif ing.get("hostname"):
            result.add(ing["hostname"])
    s = ",".join(sorted(result))
    if not wide and len(s) > 16:
        s = s[:13] + "..."
    return s


def ingress_row(obj: Obj) -> list:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    cls = spec.get("ingressClassName")
    return [
        cls if cls is not None else "<none>",
        _format_hosts(spec.get("rules") or []),
        load_balancer_address(status.get("loadBalancer")),
        "80, 443" if spec.get("tls") else "80",
        age_cell(obj),
    ]


INGRESS_COLUMNS = (
    Column("Class", "string", description="The name of the IngressClass resource that should be used for additional "
           "configuration"),
    Column("Hosts", "string", description="Hosts that incoming requests are matched against before the ingress rule"),
    Column("Address", "string", description="Address is a list containing ingress points for the load-balancer"),
    Column("Ports", "string", description="Ports of TLS configurations that open"),
    age_column(),
)


# ---------------------------------------------------------------------------------------------
# IngressClass


def default_ingressclass(obj: Obj) -> None:
    """SetDefaults_IngressClass: parameters.scope defaults to Cluster."""
    params = spec_of(obj).get("parameters")
    if isinstance(params, dict) and params.get("scope") is None:
        params["scope"] = "Cluster"


def validate_ingressclass_spec(spec: dict, old: dict | None = None) -> list[FieldError]:
    errs: list[FieldError] = []
    controller = spec.get("controller") or ""
    if not controller:
        errs.append(ferr.required("spec.controller", ""))
    elif len(controller) > 250:
        errs.append(ferr.too_long("spec.controller", "", 250))
    else:
        errs.extend(ferr.invalid("spec.controller", controller, m) for m in common.qualified_name(controller))
    params = spec.get("parameters")
    if isinstance(params, dict):
        p = "spec.parameters"
        if not params.get("kind"):
            errs.append(ferr.required(f"{p}.kind", ""))
        if not params.get("name"):
            errs.append(ferr.required(f"{p}.name", ""))
        scope = params.get("scope")
        if scope not in ("Cluster", "Namespace"):
            errs.append(ferr.not_supported(f"{p}.scope", scope or "", ["Cluster", "Namespace"]))
        elif scope == "Namespace" and not params.get("namespace"):
            errs.append(ferr.required(f"{p}.namespace", "`parameters.scope` is set to 'Namespace'"))
        elif scope == "Cluster" and params.get("namespace"):
            errs.append(ferr.forbidden(f"{p}.namespace", "`parameters.scope` is set to 'Cluster'"))
    if old is not None and (old.get("controller") or "") != controller:
        errs.append(ferr.invalid("spec.controller", controller, "field is immutable"))
    return errs


def validate_ingressclass(obj: Obj) -> list[FieldError]:
    errs = common.validate_object_meta(obj, False, "subdomain")
    errs.extend(validate_ingressclass_spec(obj.get("spec") or {}))
    return errs


def validate_ingressclass_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_ingressclass_spec(new.get("spec") or {}, old.get("spec") or {})


def ingressclass_row(obj: Obj) -> list:
    spec = obj.get("spec") or {}
    params = spec.get("parameters")
    parameters = "<none>"
    if isinstance(params, dict):
        parameters = params.get("kind") or ""
        if params.get("apiGroup") is not None:
            parameters += "." + params["apiGroup"]
        parameters += "/" + (params.get("name") or "")
    return [spec.get("controller") or "", parameters, age_cell(obj)]


INGRESSCLASS_COLUMNS = (
    Column("Controller", "string", description="Controller that is responsible for handling this class"),
    Column("Parameters", "string", description="A reference to a resource with additional parameters"),
    age_column(),
)


# ---------------------------------------------------------------------------------------------
# NetworkPolicy


def default_networkpolicy(obj: Obj) -> None:
    """SetDefaults_NetworkPolicy and SetDefaults_NetworkPolicyPort."""
    spec = spec_of(obj)
    spec.setdefault("podSelector", {})
    for rules_key in ("ingress", "egress"):
        for rule in spec.get(rules_key) or []:
            for port in rule.get("ports") or []:
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types


def _validate_np_ports(ports: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, port in enumerate(ports):
        p = f"{path}[{i}]"
        proto = port.get("protocol")
        if proto is not None and proto not in ("TCP", "UDP", "SCTP"):
            errs.append(ferr.not_supported(f"{p}.protocol", proto, ["SCTP", "TCP", "UDP"]))
        value = port.get("port")
        if isinstance(value, int) and not isinstance(value, bool):
            errs.extend(ferr.invalid(f"{p}.port", value, m) for m in common.port_num(value))
            end = port.get("endPort")
            if end is not None:
                if end < value:
                    errs.append(ferr.invalid(f"{p}.endPort", end, "must be greater than or equal to `port`"))
                errs.extend(ferr.invalid(f"{p}.endPort", end, m) for m in common.port_num(end))
        elif isinstance(value, str):
            if port.get("endPort") is not None:
                errs.append(ferr.invalid(f"{p}.endPort", port["endPort"], "may not be specified when `port` is non-numeric"))
            errs.extend(ferr.invalid(f"{p}.port", value, m) for m in common.port_name(value))
        elif port.get("endPort") is not None:
            errs.append(ferr.required(f"{p}.port", "must be specified when `endPort` is specified"))
    return errs


def _validate_peers(peers: list, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, peer in enumerate(peers):
        p = f"{path}[{i}]"
        n = 0
        if peer.get("podSelector") is not None:
            n += 1
            errs.extend(common.validate_label_selector(peer["podSelector"], f"{p}.podSelector"))
        if peer.get("namespaceSelector") is not None:
            n += 1
            errs.extend(common.validate_label_selector(peer["namespaceSelector"], f"{p}.namespaceSelector"))
        block = peer.get("ipBlock")
        if block is not None:
            n += 1
            errs.extend(_validate_ip_block(block, f"{p}.ipBlock"))
        if n == 0:
            errs.append(ferr.required(p, "must specify a peer"))
        elif block is not None and n > 1:
            errs.append(ferr.forbidden(p, "may not specify both ipBlock and another peer"))
    return errs


def _validate_ip_block(block: dict, path: str) -> list[FieldError]:
    cidr = block.get("cidr") or ""
    if not cidr:
        return [ferr.required(f"{path}.cidr", "")]
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return [ferr.invalid(f"{path}.cidr", cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    errs: list[FieldError] = []
    for i, exc in enumerate(block.get("except") or []):
        ep = f"{path}.except[{i}]"
        try:
            enet = ipaddress.ip_network(exc, strict=False)
        except ValueError:
            errs.append(ferr.invalid(ep, exc, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
            continue
        if enet.version != net.version or not enet.subnet_of(net) or enet.prefixlen <= net.prefixlen:  # type: ignore[arg-type]
            errs.append(ferr.invalid(ep, exc, "must be a strict subset of `cidr`"))
    return errs


def validate_networkpolicy_spec(spec: dict, path: str = "spec") -> list[FieldError]:
    """ValidateNetworkPolicySpec."""
    errs = common.validate_label_selector(spec.get("podSelector"), f"{path}.podSelector")
    for i, rule in enumerate(spec.get("ingress") or []):
        errs.extend(_validate_np_ports(rule.get("ports") or [], f"{path}.ingress[{i}].ports"))
        errs.extend(_validate_peers(rule.get("from") or [], f"{path}.ingress[{i}].from"))
    for i, rule in enumerate(spec.get("egress") or []):
        errs.extend(_validate_np_ports(rule.get("ports") or [], f"{path}.egress[{i}].ports"))
        errs.extend(_validate_peers(rule.get("to") or [], f"{path}.egress[{i}].to"))
    types = spec.get("policyTypes") or []
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            errs.append(ferr.not_supported(f"{path}.policyTypes[{i}]", t, ["Egress", "Ingress"]))
    if len(types) > 2:
        errs.append(ferr.invalid(f"{path}.policyTypes", types, "may not specify more than two policyTypes"))
    return errs


def validate_networkpolicy(obj: Obj) -> list[FieldError]:
    errs = common.validate_object_meta(obj, True, "subdomain")
    errs.extend(validate_networkpolicy_spec(obj.get("spec") or {}))
    return errs


def validate_networkpolicy_update(new: Obj, old: Obj) -> list[FieldError]:
    return validate_networkpolicy_spec(new.get("spec") or {})


def networkpolicy_row(obj: Obj) -> list:
    sel = (obj.get("spec") or {}).get("podSelector") or {}
    return [common.format_label_selector(sel), age_cell(obj)]


NETWORKPOLICY_COLUMNS = (
    Column("Pod-Selector", "string", description="Selects the pods to which this NetworkPolicy object applies."),
    age_column(),
)


def register(reg: Registry) -> None:
    g, v = "networking.k8s.io", "v1"
    reg.register(Resource(
        group=g, version=v, kind="Ingress", plural="ingresses", namespaced=True, short_names=("ing",),
        subresources=("status",), definition=definition(g, v, "Ingress"), columns=INGRESS_COLUMNS, row=ingress_row,
        validate=validate_ingress, validate_update=validate_ingress_update, prepare_create=prepare_create_ingress,
        tracks_generation=True,
    ))
    reg.register(Resource(
        group=g, version=v, kind="IngressClass", plural="ingressclasses", namespaced=False,
        definition=definition(g, v, "IngressClass"), columns=INGRESSCLASS_COLUMNS, row=ingressclass_row,
        default=default_ingressclass, validate=validate_ingressclass, validate_update=validate_ingressclass_update,
        tracks_generation=True,
    ))
    reg.register(Resource(
        group=g, version=v, kind="NetworkPolicy", plural="networkpolicies", namespaced=True, short_names=("netpol",),
        definition=definition(g, v, "NetworkPolicy"), columns=NETWORKPOLICY_COLUMNS, row=networkpolicy_row,
        default=default_networkpolicy, validate=validate_networkpolicy,
        validate_update=validate_networkpolicy_update, tracks_generation=True,
    ))
