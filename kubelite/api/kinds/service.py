"""core/v1 Service and Endpoints: defaults, validation, strategy and printers.

ClusterIP and nodePort *allocation* is the API server's (it needs cluster state); this module
only defaults, validates and keeps allocated values stable across updates, as upstream's
pkg/registry/core/service/strategy.go (patchAllocatedValues, NormalizeClusterIPs) does.
"""

from __future__ import annotations

import copy

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.common import GoLiteral
from kubelite.api.registry import Column, Resource
from kubelite.api.schema import definition_for_kind

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_PROTOCOLS = ["SCTP", "TCP", "UDP"]
KUBELET_PORT = 10250
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400
DEFAULT_CLIENT_IP_AFFINITY_SECONDS = 10800


def is_headless(svc: dict) -> bool:
    ips = (svc.get("spec") or {}).get("clusterIPs") or []
    return len(ips) == 1 and ips[0] == "None"


def externally_accessible(spec: dict) -> bool:
    """service.ExternallyAccessible: LoadBalancer, NodePort, or ClusterIP with externalIPs."""
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def needs_cluster_ip(spec: dict) -> bool:
    return spec.get("type") in ("ClusterIP", "NodePort", "LoadBalancer") or not spec.get("type")


def needs_node_port(spec: dict) -> bool:
    t = spec.get("type")
    if t == "NodePort":
        return True
    return t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False


def needs_health_check(spec: dict) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


# ---------------------------------------------------------------------------------------------
# Defaults and strategy


def default_service(obj: dict) -> None:
    """SetDefaults_Service, plus the IP-family fields upstream fills while allocating."""
    spec = obj.setdefault("spec", {})
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    if spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig") or {}
        if (cfg.get("clientIP") or {}).get("timeoutSeconds") is None:  # only nil: 0 is rejected, as upstream
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_AFFINITY_SECONDS}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for p in spec.get("ports") or []:
        if not isinstance(p, dict):
            continue
        if not p.get("protocol"):
            p["protocol"] = "TCP"
        if p.get("targetPort") in (None, 0, ""):
            p["targetPort"] = p.get("port")
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if spec["type"] == "LoadBalancer":
        for ing in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if ing.get("ip") and ing.get("ipMode") is None:
                ing["ipMode"] = "VIP"
    if spec["type"] != "ExternalName":
        headless = spec.get("clusterIP") == "None" or spec.get("clusterIPs") == ["None"]
        if spec.get("ipFamilyPolicy") is None:
            spec["ipFamilyPolicy"] = "RequireDualStack" if headless and not spec.get("selector") else "SingleStack"
        if not spec.get("ipFamilies"):
            spec["ipFamilies"] = ["IPv4"]


def _normalize_cluster_ips(new: dict, old: dict | None) -> None:
    """NormalizeClusterIPs: keep clusterIP (singular) and clusterIPs (plural) in step."""
    ns = new.get("spec") or {}
    if old is None:
        if ns.get("clusterIP") and not ns.get("clusterIPs"):
            ns["clusterIPs"] = [ns["clusterIP"]]
        return
    os_ = old.get("spec") or {}
    if ns.get("clusterIP") != os_.get("clusterIP") and ns.get("clusterIPs") == os_.get("clusterIPs"):
        if ns.get("clusterIP"):
            ns["clusterIPs"] = [ns["clusterIP"]]
        else:
            ns.pop("clusterIPs", None)
    if not ns.get("clusterIP") and ns.get("clusterIPs") and ns.get("clusterIPs") == os_.get("clusterIPs"):
        ns.pop("clusterIPs", None)


def _patch_allocated_values(new: dict, old: dict) -> None:
    """patchAllocatedValues: an update that omits allocated clusterIP/nodePorts keeps the old ones."""
    ns, os_ = new.setdefault("spec", {}), old.get("spec") or {}
    if needs_cluster_ip(os_) and needs_cluster_ip(ns):
        if not ns.get("clusterIP"):
            if os_.get("clusterIP"):
                ns["clusterIP"] = os_["clusterIP"]
            if not ns.get("clusterIPs") and os_.get("clusterIPs"):
                ns["clusterIPs"] = list(os_["clusterIPs"])
        if ns.get("ipFamilies") is None and os_.get("ipFamilies"):
            ns["ipFamilies"] = list(os_["ipFamilies"])
        if ns.get("ipFamilyPolicy") is None and os_.get("ipFamilyPolicy"):
            ns["ipFamilyPolicy"] = os_["ipFamilyPolicy"]
    if needs_node_port(os_) and needs_node_port(ns):
        old_ports = os_.get("ports") or []
        for p in ns.get("ports") or []:
            if p.get("nodePort"):
                continue
            for op in old_ports:
                if op.get("nodePort") and op.get("port") == p.get("port") and \
                        (op.get("protocol") or "TCP") == (p.get("protocol") or "TCP"):
                    p["nodePort"] = op["nodePort"]
                    break
    if needs_health_check(os_) and needs_health_check(ns) and not ns.get("healthCheckNodePort"):
        if os_.get("healthCheckNodePort"):
            ns["healthCheckNodePort"] = os_["healthCheckNodePort"]


def prepare_service_create(obj: dict) -> None:
    """PrepareForCreate: empty status; clusterIPs follow clusterIP."""
    obj["status"] = {"loadBalancer": {}}
    _normalize_cluster_ips(obj, None)


def prepare_service_update(new: dict, old: dict) -> None:
    """PrepareForUpdate: status kept; omitted allocated values patched back; clusterIPs follow clusterIP."""
    new["status"] = copy.deepcopy(old.get("status") or {"loadBalancer": {}})
    _patch_allocated_values(new, old)
    _normalize_cluster_ips(new, old)
    _drop_type_dependent_fields(new.get("spec") or {}, old.get("spec") or {})


def _drop_type_dependent_fields(spec: dict, old: dict) -> None:
    """dropTypeDependentFields: a type change releases what the new type does not use, if left unchanged."""
    if spec.get("type") == old.get("type"):
        return
    if not needs_cluster_ip(spec) and needs_cluster_ip(old):
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(key) == old.get(key):
                spec.pop(key, None)
    if not needs_node_port(spec) and needs_node_port(old):
        old_np = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in old.get("ports") or []}
        for p in spec.get("ports") or []:
            if p.get("nodePort") and old_np.get((p.get("port"), p.get("protocol"))) == p.get("nodePort"):
                p.pop("nodePort", None)
    if not needs_health_check(spec) and spec.get("healthCheckNodePort") == old.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    if not externally_accessible(spec) and spec.get("externalTrafficPolicy") == old.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)
    if spec.get("type") == "ExternalName" and spec.get("internalTrafficPolicy") == old.get("internalTrafficPolicy"):
        spec.pop("internalTrafficPolicy", None)
    if spec.get("type") != "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") == old.get("allocateLoadBalancerNodePorts"):
        spec.pop("allocateLoadBalancerNodePorts", None)


# ---------------------------------------------------------------------------------------------
# Validation


def _service_port_literal(protocol: str, port: int) -> GoLiteral:
    return GoLiteral(f'core.ServicePort{{Name:"", Protocol:"{protocol}", AppProtocol:(*string)(nil), Port:{port}, '
                     'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')


def _validate_service_port(sp: dict, require_name: bool, names: set, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    name = sp.get("name") or ""
    if require_name and not name:
        errs.append(ferr.required(f"{path}.name"))
    elif name:
        errs += [ferr.invalid(f"{path}.name", name, m) for m in common.dns1123_label(name)]
        if name in names:
            errs.append(ferr.duplicate(f"{path}.name", name))
        else:
            names.add(name)
    errs += [ferr.invalid(f"{path}.port", sp.get("port") or 0, m) for m in common.port_num(sp.get("port") or 0)]
    proto = sp.get("protocol") or ""
    if not proto:
        errs.append(ferr.required(f"{path}.protocol"))
    elif proto not in _PROTOCOLS:
        errs.append(ferr.not_supported(f"{path}.protocol", proto, _PROTOCOLS))
    tp = sp.get("targetPort")
    if isinstance(tp, int) and not isinstance(tp, bool):
        errs += [ferr.invalid(f"{path}.targetPort", tp, m) for m in common.port_num(tp)]
    elif isinstance(tp, str):
        errs += [ferr.invalid(f"{path}.targetPort", tp, m) for m in common.port_name(tp)]
    if sp.get("appProtocol") is not None:
        errs += [ferr.invalid(f"{path}.appProtocol", sp["appProtocol"], m) for m in common.qualified_name(sp["appProtocol"])]
    return errs


def _validate_cluster_ips(spec: dict) -> list[FieldError]:
    """ValidateServiceClusterIPsRelatedFields."""
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    cip, cips = spec.get("clusterIP") or "", spec.get("clusterIPs") or []
    if cip:
        if not cips:
            errs.append(ferr.required("spec.clusterIPs"))
        elif cips[0] != cip:
            errs.append(ferr.invalid("spec.clusterIPs", cips, "first value must match `clusterIP`"))
    elif cips:
        errs.append(ferr.invalid("spec.clusterIPs", cips, "must be empty when `clusterIP` is not specified"))
    seen: set = set()
    for i, fam in enumerate(spec.get("ipFamilies") or []):
        if fam not in ("IPv4", "IPv6"):
            errs.append(ferr.not_supported(f"spec.ipFamilies[{i}]", fam, ["IPv4", "IPv6"]))
        if fam in seen:
            errs.append(ferr.duplicate(f"spec.ipFamilies[{i}]", fam))
        seen.add(fam)
    pol = spec.get("ipFamilyPolicy")
    policies = ["PreferDualStack", "RequireDualStack", "SingleStack"]
    if pol is not None and pol not in policies:
        errs.append(ferr.not_supported("spec.ipFamilyPolicy", pol, policies))
    invalid = False
    for i, ip in enumerate(cips):
        if i == 0 and ip == "None":
            if len(cips) > 1:
                invalid = True
                errs.append(ferr.invalid("spec.clusterIPs", cips, "'None' must be the first and only value"))
            continue
        ip_errs = common.ip_errors(ip, f"spec.clusterIPs[{i}]")
        invalid |= bool(ip_errs)
        errs += ip_errs
    if len(cips) > 2:
        errs.append(ferr.invalid("spec.clusterIPs", cips, "may only hold up to 2 values"))
    if invalid:
        return errs
    if len(cips) > 1 and (":" in cips[0]) == (":" in cips[1]):
        errs.append(ferr.invalid("spec.clusterIPs", cips, "may specify no more than one IP for each IP family"))
    fams = spec.get("ipFamilies") or []
    if cips and cips != ["None"]:
        for i, ip in enumerate(cips[:len(fams)]):
            if fams[i] == "IPv4" and ":" in ip:
                errs.append(ferr.invalid(f"spec.clusterIPs[{i}]", ip, f"expected an IPv4 value as indicated by `ipFamilies[{i}]`"))
            if fams[i] == "IPv6" and ":" not in ip:
                errs.append(ferr.invalid(f"spec.clusterIPs[{i}]", ip, f"expected an IPv6 value as indicated by `ipFamilies[{i}]`"))
    return errs


def _non_special_ip(ip: str, path: str) -> list[FieldError]:
    import ipaddress

    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return [ferr.invalid(path, ip, "must be a valid IP address")]
    errs = []
    if addr.is_unspecified:
        errs.append(ferr.invalid(path, ip, f"may not be unspecified ({ip})"))
    if addr.is_loopback:
        errs.append(ferr.invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if addr.is_link_local:
        errs.append(ferr.invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if addr.is_multicast and (str(addr).startswith("224.0.0.") or str(addr).startswith("ff02:")):
        errs.append(ferr.invalid(path, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return errs


def _validate_service(obj: dict) -> list[FieldError]:
    """ValidateService."""
    errs: list[FieldError] = []
    spec = obj.get("spec") or {}
    stype = spec.get("type") or ""
    ports = spec.get("ports") or []
    headless = is_headless(obj)
    if not ports and not headless and stype != "ExternalName":
        errs.append(ferr.required("spec.ports"))
    if stype == "LoadBalancer":
        for i, p in enumerate(ports):
            if p.get("port") == KUBELET_PORT:
                errs.append(ferr.invalid(f"spec.ports[{i}]", p.get("port"),
                                         f"may not expose port {KUBELET_PORT} externally since it is used by kubelet"))
        if headless:
            errs.append(ferr.invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for LoadBalancer services"))
    elif stype == "NodePort":
        if headless:
            errs.append(ferr.invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for NodePort services"))
    elif stype == "ExternalName":
        if spec.get("clusterIPs"):
            errs.append(ferr.forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            errs.append(ferr.forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(ferr.forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = (spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs += [ferr.invalid("spec.externalName", cname, m) for m in common.dns1123_subdomain(cname)]
        else:
            errs.append(ferr.required("spec.externalName"))
    names: set = set()
    for i, p in enumerate(ports):
        errs += _validate_service_port(p if isinstance(p, dict) else {}, len(ports) > 1, names, f"spec.ports[{i}]")
    if spec.get("selector") is not None:
        errs += common.validate_labels(spec.get("selector"), "spec.selector")
    sa = spec.get("sessionAffinity") or ""
    if not sa:
        errs.append(ferr.required("spec.sessionAffinity"))
    elif sa not in ("ClientIP", "None"):
        errs.append(ferr.not_supported("spec.sessionAffinity", sa, ["ClientIP", "None"]))
    if sa == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        when = "when session affinity type is ClientIP"
        if cfg is None:
            errs.append(ferr.required("spec.sessionAffinityConfig", when))
        elif cfg.get("clientIP") is None:
            errs.append(ferr.required("spec.sessionAffinityConfig.clientIP", when))
        elif cfg["clientIP"].get("timeoutSeconds") is None:
            errs.append(ferr.required("spec.sessionAffinityConfig.clientIP.timeoutSeconds", when))
        else:
            t = cfg["clientIP"]["timeoutSeconds"]
            if t <= 0 or t > MAX_CLIENT_IP_AFFINITY_SECONDS:
                errs.append(ferr.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t,
                                         f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"))
    elif sa == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(ferr.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    errs += _validate_cluster_ips(spec)
    for i, ip in enumerate(spec.get("externalIPs") or []):
        ip_errs = common.ip_errors(ip, f"spec.externalIPs[{i}]")
        errs += ip_errs or _non_special_ip(ip, f"spec.externalIPs[{i}]")
    if not stype:
        errs.append(ferr.required("spec.type"))
    elif stype not in SERVICE_TYPES:
        errs.append(ferr.not_supported("spec.type", stype, SERVICE_TYPES))
    if stype == "ClusterIP":
        for i, p in enumerate(ports):
            if p.get("nodePort"):
                errs.append(ferr.forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"))
    seen_np: set = set()
    for i, p in enumerate(ports):
        np = p.get("nodePort")
        if not np:
            continue
        key = (p.get("protocol"), np)
        if key in seen_np:
            errs.append(ferr.duplicate(f"spec.ports[{i}].nodePort", np))
        seen_np.add(key)
    seen_p: set = set()
    for i, p in enumerate(ports):
        key = (p.get("protocol") or "", p.get("port") or 0)
        if key in seen_p:
            errs.append(ferr.duplicate(f"spec.ports[{i}]", _service_port_literal(*key)))
        seen_p.add(key)
    ranges = spec.get("loadBalancerSourceRanges") or []
    if ranges:
        if stype != "LoadBalancer":
            errs.append(ferr.forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"))
        for i, r in enumerate(ranges):
            errs += common.cidr_errors(r.strip(), f"spec.LoadBalancerSourceRanges[{i}]")
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != "LoadBalancer":
        errs.append(ferr.forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"))
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(ferr.required("allocateLoadBalancerNodePorts"))
    lbc = spec.get("loadBalancerClass")
    if stype == "LoadBalancer":
        if lbc is not None:
            errs += [ferr.invalid("spec.loadBalancerClass", lbc, m) for m in common.qualified_name(lbc)]
    elif lbc is not None:
        errs.append(ferr.forbidden("spec.loadBalancerClass", "may only be used when `type` is 'LoadBalancer'"))
    etp = spec.get("externalTrafficPolicy") or ""
    if not externally_accessible(spec):
        if etp:
            errs.append(ferr.invalid("spec.externalTrafficPolicy", etp, "may only be set for externally-accessible services"))
    elif not etp:
        errs.append(ferr.required("spec.externalTrafficPolicy"))
    elif etp not in ("Cluster", "Local"):
        errs.append(ferr.not_supported("spec.externalTrafficPolicy", etp, ["Cluster", "Local"]))
    hcnp = spec.get("healthCheckNodePort") or 0
    if not needs_health_check(spec):
        if hcnp:
            errs.append(ferr.invalid("spec.healthCheckNodePort", hcnp,
                                     "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    itp = spec.get("internalTrafficPolicy")
    if itp is None and stype in ("NodePort", "LoadBalancer", "ClusterIP"):
        errs.append(ferr.required("spec.internalTrafficPolicy"))
    if itp is not None and itp not in ("Cluster", "Local"):
        errs.append(ferr.not_supported("spec.internalTrafficPolicy", itp, ["Cluster", "Local"]))
    td = spec.get("trafficDistribution")
    if td is not None and td != "PreferClose":
        errs.append(ferr.not_supported("spec.trafficDistribution", td, ["PreferClose"]))
    return errs


def validate_service(obj: dict) -> list[FieldError]:
    return _validate_service(obj)


def validate_service_update(new: dict, old: dict) -> list[FieldError]:
    """ValidateServiceUpdate: allocated clusterIPs and ipFamilies may not change; then ValidateService."""
    errs = common.validate_object_meta_update(new, old)
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    if ns.get("type") != "ExternalName" and os_.get("type") != "ExternalName" and not (is_headless(new) and is_headless(old)):
        new_ips, old_ips = ns.get("clusterIPs") or [], os_.get("clusterIPs") or []
        if len(new_ips) == len(old_ips):
            for i, ip in enumerate(old_ips):
                if ip != new_ips[i]:
                    errs.append(ferr.invalid(f"spec.clusterIPs[{i}]", new_ips, "may not change once set"))
        elif len(old_ips) > len(new_ips):
            if not new_ips:
                errs.append(ferr.invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset"))
            elif old_ips and new_ips[0] != old_ips[0]:
                errs.append(ferr.invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
            if len(new_ips) == 1 and ns.get("ipFamilyPolicy") != "SingleStack":
                errs.append(ferr.invalid("spec.ipFamilyPolicy", ns.get("ipFamilyPolicy"),
                                         "must be set to 'SingleStack' when releasing the secondary clusterIP"))
        elif old_ips and new_ips[0] != old_ips[0]:
            errs.append(ferr.invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
        if is_headless(new) == is_headless(old) and not is_headless(new):
            nf, of = ns.get("ipFamilies") or [], os_.get("ipFamilies") or []
            if len(nf) == len(of) and nf != of:
                errs.append(ferr.invalid("spec.ipFamilies[0]", nf, "may not change once set"))
    if os_.get("type") == "LoadBalancer" and ns.get("type") == "LoadBalancer" and \
            os_.get("loadBalancerClass") != ns.get("loadBalancerClass"):
        errs.append(ferr.invalid("spec.loadBalancerClass", ns.get("loadBalancerClass"), "may not change once set"))
    if needs_health_check(os_) and needs_health_check(ns) and ns.get("healthCheckNodePort") != os_.get("healthCheckNodePort"):
        errs.append(ferr.forbidden("spec.healthCheckNodePort", "field is immutable"))
    return errs + _validate_service(new)


# ---------------------------------------------------------------------------------------------
# Printer


def service_external_ip(svc: dict) -> str:
    """getServiceExternalIP (wide: the server never clips)."""
    spec = svc.get("spec") or {}
    ext = spec.get("externalIPs") or []
    t = spec.get("type")
    if t in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else "<none>"
    if t == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        lb = sorted({i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")})
        if ext:
            return ",".join(lb + list(ext))
        return ",".join(lb) if lb else "<pending>"
    if t == "ExternalName":
        return spec.get("externalName") or ""
    return "<unknown>"


def service_ports(ports: list) -> str:
    """makePortString: 80/TCP or 80:30080/TCP, comma-separated."""
    pieces = []
    for p in ports or []:
        if p.get("nodePort"):
            pieces.append(f"{p.get('port')}:{p['nodePort']}/{p.get('protocol') or ''}")
        else:
            pieces.append(f"{p.get('port')}/{p.get('protocol') or ''}")
    return ",".join(pieces)


def service_row(obj: dict) -> list:
    spec = obj.get("spec") or {}
    ips = spec.get("clusterIPs") or []
    return [spec.get("type") or "", ips[0] if ips else "<none>", service_external_ip(obj),
            service_ports(spec.get("ports") or []) or "<none>", common.creation_age(obj),
            common.format_labels(spec.get("selector"))]


def service_resource() -> Resource:
    d = "io.k8s.api.core.v1.ServiceSpec"
    return Resource(
        group="", version="v1", kind="Service", plural="services", namespaced=True,
        short_names=("svc",), categories=("all",), subresources=("status", "proxy"),
        definition=definition_for_kind("", "v1", "Service") or "",
        columns=(
            Column("Type", "string", description=common.column_doc(d, "type")),
            Column("Cluster-IP", "string", description=common.column_doc(d, "clusterIP")),
            Column("External-IP", "string", description=common.column_doc(d, "externalIPs")),
            Column("Port(s)", "string", description=common.column_doc(d, "ports")),
            common.age_column(),
            Column("Selector", "string", priority=1, description=common.column_doc(d, "selector")),
        ),
        row=service_row, default=default_service, validate=validate_service, validate_update=validate_service_update,
        prepare_create=prepare_service_create, prepare_update=prepare_service_update,
        # upstream 1.32 validates Service names as DNS-1035 labels (must start with a letter)
        tracks_generation=False, name_rule="dns1035",
    )


# ---------------------------------------------------------------------------------------------
# Endpoints


def default_endpoints(obj: dict) -> None:
    """SetDefaults_Endpoints: port protocol TCP."""
    for ss in obj.get("subsets") or []:
        for p in (ss or {}).get("ports") or []:
            if isinstance(p, dict) and not p.get("protocol"):
                p["protocol"] = "TCP"


def _validate_endpoint_address(addr: dict, path: str) -> list[FieldError]:
    ip = addr.get("ip") or ""
    errs = common.ip_errors(ip, f"{path}.ip")
    if addr.get("hostname"):
        errs += [ferr.invalid(f"{path}.hostname", addr["hostname"], m) for m in common.dns1123_label(addr["hostname"])]
    if addr.get("nodeName") is not None:
        errs += [ferr.invalid(f"{path}.nodeName", addr["nodeName"], m) for m in common.dns1123_subdomain(addr["nodeName"])]
    return errs + _non_special_ip(ip, f"{path}.ip")


def validate_endpoints(obj: dict) -> list[FieldError]:
    """ValidateEndpoints."""
    errs: list[FieldError] = []
    for i, ss in enumerate(obj.get("subsets") or []):
        ss = ss or {}
        p = f"subsets[{i}]"
        if not ss.get("addresses") and not ss.get("notReadyAddresses"):
            errs.append(ferr.required(p, "must specify `addresses` or `notReadyAddresses`"))
        for j, a in enumerate(ss.get("addresses") or []):
            errs += _validate_endpoint_address(a or {}, f"{p}.addresses[{j}]")
        for j, a in enumerate(ss.get("notReadyAddresses") or []):
            errs += _validate_endpoint_address(a or {}, f"{p}.notReadyAddresses[{j}]")
        ports = ss.get("ports") or []
        for j, port in enumerate(ports):
            pp = f"{p}.ports[{j}]"
            name = port.get("name") or ""
            if len(ports) > 1 and not name:
                errs.append(ferr.required(f"{pp}.name"))
            elif name:
                errs += [ferr.invalid(f"{pp}.name", name, m) for m in common.dns1123_label(name)]
            errs += [ferr.invalid(f"{pp}.port", port.get("port") or 0, m) for m in common.port_num(port.get("port") or 0)]
            proto = port.get("protocol") or ""
            if not proto:
                errs.append(ferr.required(f"{pp}.protocol"))
            elif proto not in _PROTOCOLS:
                errs.append(ferr.not_supported(f"{pp}.protocol", proto, _PROTOCOLS))
    return errs


def validate_endpoints_update(new: dict, old: dict) -> list[FieldError]:
    return common.validate_object_meta_update(new, old) + validate_endpoints(new)


def format_endpoints(obj: dict) -> str:
    """formatEndpoints: up to 3 ip:port, then `+ N more...`; `<none>` without subsets."""
    subsets = obj.get("subsets") or []
    if not subsets:
        return "<none>"
    out: list[str] = []
    limit, more, count = 3, False, 0
    for ss in subsets:
        addrs = (ss or {}).get("addresses") or []
        ports = (ss or {}).get("ports") or []
        if not ports:
            count += len(addrs)
            for a in addrs:
                if len(out) == limit:
                    more = True
                    break
                out.append(a.get("ip") or "")
            continue
        for port in ports:
            count += len(addrs)
            for a in addrs:
                if len(out) == limit:
                    more = True
                    break
                ip = a.get("ip") or ""
                host = f"[{ip}]" if ":" in ip else ip
                out.append(f"{host}:{port.get('port')}")
    ret = ",".join(out)
    if more:
        return f"{ret} + {count - limit} more..."
    return ret


def endpoints_resource() -> Resource:
    return Resource(
        group="", version="v1", kind="Endpoints", plural="endpoints", namespaced=True,
        short_names=("ep",),
        definition=definition_for_kind("", "v1", "Endpoints") or "",
        columns=(Column("Endpoints", "string", description=common.column_doc("io.k8s.api.core.v1.Endpoints", "subsets")),
                 common.age_column()),
        row=lambda obj: [format_endpoints(obj), common.creation_age(obj)],
        default=default_endpoints, validate=validate_endpoints, validate_update=validate_endpoints_update,
    )


def resources() -> list[Resource]:
    return [service_resource(), endpoints_resource()]
