"""discovery.k8s.io/v1: EndpointSlice (defaults, validation, printer as upstream)."""

from __future__ import annotations

import ipaddress

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import age_cell, age_column, definition
from kubelite.api.registry import Column, Obj, Registry, Resource

ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]


def default_endpointslice(obj: Obj) -> None:
    """SetDefaults_EndpointPort: name "" and protocol TCP."""
    for port in obj.get("ports") or []:
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


def _validate_address(addr: str, address_type: str, path: str) -> list[FieldError]:
    if address_type in ("IPv4", "IPv6"):
        try:
            ip = ipaddress.ip_address(addr)
            ok = ip.version == (4 if address_type == "IPv4" else 6)
        except ValueError:
            ok = False
        if not ok:
            return [ferr.invalid(path, addr, f"must be a valid {address_type} address")]
        return []
    return [ferr.invalid(path, addr, m) for m in common.dns1123_subdomain(addr)]


def validate_endpointslice(obj: Obj) -> list[FieldError]:
    """ValidateEndpointSlice."""
    errs = common.validate_object_meta(obj, True, "subdomain")
    address_type = obj.get("addressType") or ""
    if not address_type:
        errs.append(ferr.required("addressType", ""))
    elif address_type not in ADDRESS_TYPES:
        errs.append(ferr.not_supported("addressType", address_type, ADDRESS_TYPES))
    endpoints = obj.get("endpoints") or []
    if len(endpoints) > 1000:
        errs.append(ferr.too_many("endpoints", len(endpoints), 1000))
    for i, ep in enumerate(endpoints):
        p = f"endpoints[{i}]"
        addrs = ep.get("addresses") or []
        if not addrs:
            errs.append(ferr.required(f"{p}.addresses", "must contain at least 1 address"))
        elif len(addrs) > 100:
            errs.append(ferr.too_many(f"{p}.addresses", len(addrs), 100))
        for j, a in enumerate(addrs):
            if address_type in ADDRESS_TYPES:
                errs.extend(_validate_address(a, address_type, f"{p}.addresses[{j}]"))
        hostname = ep.get("hostname")
        if hostname is not None:
            errs.extend(ferr.invalid(f"{p}.hostname", hostname, m) for m in common.dns1123_label(hostname))
    ports = obj.get("ports") or []
    if len(ports) > 100:
        errs.append(ferr.too_many("ports", len(ports), 100))
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = f"ports[{i}]"
        name = port.get("name") or ""
        if name:
            errs.extend(ferr.invalid(f"{p}.name", name, m) for m in common.dns1123_label(name))
        if name in names:
            errs.append(ferr.duplicate(f"{p}.name", name))
        names.add(name)
        proto = port.get("protocol")
        if not proto:
            errs.append(ferr.required(f"{p}.protocol", ""))
        elif proto not in ("SCTP", "TCP", "UDP"):
            errs.append(ferr.not_supported(f"{p}.protocol", proto, ["SCTP", "TCP", "UDP"]))
        if port.get("port") is not None:
            errs.extend(ferr.invalid(f"{p}.port", port["port"], m) for m in common.port_num(port["port"]))
    return errs


def validate_endpointslice_update(new: Obj, old: Obj) -> list[FieldError]:
    errs = validate_endpointslice(new)
    if new.get("addressType") != old.get("addressType"):
        errs.append(ferr.invalid("addressType", new.get("addressType") or "", "field is immutable"))
    return errs


def _list_with_more(items: list[str], count: int, limit: int = 3) -> str:
    s = ",".join(items[:limit])
    if count > limit:
        return f"{s} + {count - limit} more..."
    return s or "<unset>"


def endpointslice_row(obj: Obj) -> list:
    ports = []
    for p in obj.get("ports") or []:
        if p.get("port") is not None:
            ports.append(str(p["port"]))
        elif p.get("name") is not None:
            ports.append(p["name"])
        else:
            ports.append("*")
    addrs = [a for ep in obj.get("endpoints") or [] for a in ep.get("addresses") or []]
    return [obj.get("addressType") or "", _list_with_more(ports, len(ports)), _list_with_more(addrs, len(addrs)),
            age_cell(obj)]


ENDPOINTSLICE_COLUMNS = (
    Column("AddressType", "string", description="addressType specifies the type of address carried by this "
           "EndpointSlice."),
    Column("Ports", "string", description="ports specifies the list of network ports exposed by each endpoint in "
           "this slice."),
    Column("Endpoints", "string", description="endpoints is a list of unique endpoints in this slice."),
    age_column(),
)


def register(reg: Registry) -> None:
    g, v = "discovery.k8s.io", "v1"
    reg.register(Resource(
        group=g, version=v, kind="EndpointSlice", plural="endpointslices", namespaced=True,
        definition=definition(g, v, "EndpointSlice"), columns=ENDPOINTSLICE_COLUMNS, row=endpointslice_row,
        default=default_endpointslice, validate=validate_endpointslice,
        validate_update=validate_endpointslice_update,
        # generation moves when addressType, endpoints or ports change: everything but metadata
        tracks_generation=True,
    ))
