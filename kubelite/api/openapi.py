"""The served OpenAPI v3 documents (/openapi/v3), built from the registry and kubernetes-validate's types.

kubectl 1.32 reads only OpenAPI v3: `kubectl explain` finds a resource's kind through the
`x-kubernetes-group-version-kind` of its path operations and prints the matching component schema,
and `kubectl apply/create/edit` look for the `fieldValidation` parameter on the kind's PATCH
operation to decide that the server validates fields (otherwise kubectl falls back to /openapi/v2).
The documents mirror upstream's shape: one per group-version, paths for every served resource and
subresource, and `components.schemas` converted from kubernetes-validate's JSON-schema flavour.

Documents are built lazily on first request and cached as bytes; each index entry carries a hash of
what the document is built from, so a `?hash=` URL may be cached immutably, as upstream does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from kubelite.api import schema
from kubelite.api.registry import Registry, Resource

SCHEMAS_PREFIX = "#/components/schemas/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
STATUS_DEF = META + "Status"
DELETE_OPTIONS_DEF = META + "DeleteOptions"
WATCH_EVENT_DEF = META + "WatchEvent"
PATCH_DEF = META + "Patch"

# Bumped whenever the document builder changes, so that clients drop cached ?hash= documents.
_BUILDER_REVISION = "2"

# Upstream's descriptions of the two scalar-or-string types (kubernetes-validate drops them).
_INT_OR_STRING = {
    "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
    "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you to have, "
    "for example, a JSON field that can accept a name or number.",
    "format": "int-or-string",
    "oneOf": [{"type": "integer"}, {"type": "string"}],
}
_QUANTITY = {
    "description": "Quantity is a fixed-point representation of a number. It provides convenient "
    "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors.\n\n"
    "The serialization format is:\n\n```\n<quantity>        ::= <signedNumber><suffix>\n```\n\n"
    "Examples: 100m (0.1), 1Gi, 500Mi, 2.5, 1e3.",
    "oneOf": [{"type": "string"}, {"type": "number"}],
}
_SPECIAL_DEFS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": _INT_OR_STRING,
    "io.k8s.apimachinery.pkg.api.resource.Quantity": _QUANTITY,
}


# ---------------------------------------------------------------------------------------------
# Subresources: what each one answers with (shared with discovery)


@dataclass(frozen=True)
class Subresource:
    """How a subresource appears in discovery and OpenAPI: its response kind and verbs."""

    name: str
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...]


def subresource_info(res: Resource, sub: str) -> Subresource:
    """Upstream's response kind and verbs for `<plural>/<sub>` (e.g. deployments/scale is autoscaling/v1 Scale)."""
    same = (res.group, res.version)
    table: dict[str, tuple[tuple[str, str], str, tuple[str, ...]]] = {
        "status": (same, res.kind, ("get", "patch", "update")),
        "scale": (("autoscaling", "v1"), "Scale", ("get", "patch", "update")),
        "log": (same, res.kind, ("get",)),
        "exec": (("", "v1"), "PodExecOptions", ("create", "get")),
        "attach": (("", "v1"), "PodAttachOptions", ("create", "get")),
        "portforward": (("", "v1"), "PodPortForwardOptions", ("create", "get")),
        "proxy": (("", "v1"), f"{res.kind}ProxyOptions", ("create", "delete", "get", "patch", "update")),
        "binding": (("", "v1"), "Binding", ("create",)),
        "eviction": (("policy", "v1"), "Eviction", ("create",)),
        "ephemeralcontainers": (same, res.kind, ("get", "patch", "update")),
        "resize": (same, res.kind, ("get", "patch", "update")),
        "finalize": (same, res.kind, ("update",)),
        "token": (("authentication.k8s.io", "v1"), "TokenRequest", ("create",)),
        "approval": (same, res.kind, ("get", "patch", "update")),
    }
    (group, version), kind, verbs = table.get(sub, (same, res.kind, ("get",)))
    return Subresource(sub, group, version, kind, verbs)


def definition_of(res: Resource) -> str:
    """The schema definition of a resource's kind: Resource.definition or the one carrying its GVK."""
    return res.definition or schema.definition_for_kind(res.group, res.version, res.kind) or ""


def _def_for(group: str, version: str, kind: str) -> str:
    return schema.definition_for_kind(group, version, kind) or ""


# ---------------------------------------------------------------------------------------------
# Schema conversion: kubernetes-validate's JSON schema -> upstream's OpenAPI v3 components


def convert_schema(node: Any, prop_name: str = "") -> Any:
    """One schema node in upstream's v3 flavour: single types, component refs, refs with siblings in allOf."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out["type"] = types[0] if len(types) == 1 else types
        elif key == "$ref":
            continue
        elif key == "properties":
            out["properties"] = {name: convert_schema(sub, name) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = convert_schema(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [convert_schema(v) for v in value]
        elif key == "enum" and prop_name in ("apiVersion", "kind"):
            continue  # added by kubernetes-validate; upstream has none
        else:
            out[key] = value
    ref = node.get("$ref")
    if ref:
        target = {"$ref": SCHEMAS_PREFIX + schema.ref_name(ref)}
        if out:
            out["allOf"] = [target]
        else:
            out = target
    return out


def convert_definition(name: str) -> dict[str, Any]:
    """A component schema as upstream serves it."""
    special = _SPECIAL_DEFS.get(name)
    if special is not None:
        return dict(special)
    if schema.is_custom(name):
        return convert_schema(without_empty_properties(schema.definitions()[name]))
    return convert_schema(schema.definitions()[name])


def without_empty_properties(node: Any) -> Any:
    """A custom schema as published: the empty `properties` a fieldless object carries for pruning is
    omitted (upstream's JSONSchemaProps serializes an empty map as nothing)."""
    if isinstance(node, list):
        return [without_empty_properties(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for k, v in node.items():
        if k == "properties" and v == {}:
            continue
        if k == "properties" and isinstance(v, dict):
            out[k] = {p: without_empty_properties(sub) for p, sub in v.items()}
        elif k in ("items", "additionalProperties", "allOf", "anyOf", "oneOf", "not"):
            out[k] = without_empty_properties(v)
        else:
            out[k] = v
    return out


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield schema.ref_name(ref)
        for key, value in node.items():
            if key != "enum":
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def reachable_definitions(roots: Iterable[str]) -> list[str]:
    """Every definition reachable from the roots through $refs, sorted as upstream lists components."""
    defs = schema.definitions()
    seen: set[str] = set()
    stack = [r for r in roots if r in defs]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(r for r in _refs(defs[name]) if r in defs and r not in seen)
    return sorted(seen)


# ---------------------------------------------------------------------------------------------
# Paths and operations


def _param(name: str, description: str, typ: str = "string", where: str = "query", required: bool = False) -> dict:
    p: dict[str, Any] = {"description": description, "in": where, "name": name}
    if required:
        p["required"] = True
    p["schema"] = {"type": typ, "uniqueItems": True}
    return p


_P = {
    "name": _param("name", "name of the resource", where="path", required=True),
    "namespace": _param("namespace", "object name and auth scope, such as for teams and projects",
                        where="path", required=True),
    "path": _param("path", "path to the resource", where="path", required=True),
    "pretty": _param("pretty", "If 'true', then the output is pretty printed."),
    "allowWatchBookmarks": _param("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type "
                                  "\"BOOKMARK\".", "boolean"),
    "continue": _param("continue", "The continue option should be set when retrieving more results from the "
                       "server."),
    "fieldSelector": _param("fieldSelector", "A selector to restrict the list of returned objects by their "
                            "fields. Defaults to everything."),
    "labelSelector": _param("labelSelector", "A selector to restrict the list of returned objects by their "
                            "labels. Defaults to everything."),
    "limit": _param("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
    "resourceVersion": _param("resourceVersion", "resourceVersion sets a constraint on what resource versions "
                              "a request may be served from."),
    "resourceVersionMatch": _param("resourceVersionMatch", "resourceVersionMatch determines how "
                                   "resourceVersion is applied to list calls."),
    "sendInitialEvents": _param("sendInitialEvents", "`sendInitialEvents=true` may be set together with "
                                "`watch=true`.", "boolean"),
    "timeoutSeconds": _param("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    "watch": _param("watch", "Watch for changes to the described resources and return them as a stream of "
                    "add, update, and remove notifications.", "boolean"),
    "dryRun": _param("dryRun", "When present, indicates that modifications should not be persisted. Valid "
                     "values are: - All: all dry run stages will be processed"),
    "fieldManager": _param("fieldManager", "fieldManager is a name associated with the actor or entity that "
                           "is making these changes."),
    "fieldValidation": _param("fieldValidation", "fieldValidation instructs the server on how to handle objects "
                              "in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid "
                              "values are: - Ignore: This will ignore any unknown fields that are silently dropped "
                              "from the object, and will ignore all but the last duplicate field that the decoder "
                              "encounters. - Warn: This will send a warning via the standard warning response "
                              "header for each unknown field that is dropped from the object, and for each "
                              "duplicate field that is encountered. The request will still succeed if there are "
                              "no other errors, and will only persist the last of any duplicate fields. This is "
                              "the default in v1.23+ - Strict: This will fail the request with a BadRequest error "
                              "if any unknown fields would be dropped from the object, or if any duplicate fields "
                              "are present. The error returned from the server will contain all unknown and "
                              "duplicate fields encountered."),
    "force": _param("force", "Force is going to \"force\" Apply requests.", "boolean"),
    "gracePeriodSeconds": _param("gracePeriodSeconds", "The duration in seconds before the object should be "
                                 "deleted.", "integer"),
    "ignoreStoreReadErrorWithClusterBreakingPotential": _param(
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow "
        "fails with a corrupt object error.", "boolean"),
    "orphanDependents": _param("orphanDependents", "Deprecated: please use the PropagationPolicy.", "boolean"),
    "propagationPolicy": _param("propagationPolicy", "Whether and how garbage collection will be performed. "
                                "Acceptable values are: 'Orphan', 'Background', 'Foreground'."),
    "container": _param("container", "The container for which to stream logs or run the command."),
    "follow": _param("follow", "Follow the log stream of the pod.", "boolean"),
    "insecureSkipTLSVerifyBackend": _param("insecureSkipTLSVerifyBackend", "insecureSkipTLSVerifyBackend "
                                           "indicates that the apiserver should not confirm the validity of the "
                                           "serving certificate of the backend it is connecting to.", "boolean"),
    "limitBytes": _param("limitBytes", "If set, the number of bytes to read from the server before terminating "
                         "the log output.", "integer"),
    "previous": _param("previous", "Return previous terminated container logs.", "boolean"),
    "sinceSeconds": _param("sinceSeconds", "A relative time in seconds before the current time from which to "
                           "show logs.", "integer"),
    "stream": _param("stream", "Specify which container log stream to return to the client."),
    "tailLines": _param("tailLines", "If set, the number of lines from the end of the logs to show.", "integer"),
    "timestamps": _param("timestamps", "If true, add an RFC3339 timestamp at the beginning of every line of log "
                         "output.", "boolean"),
    "command": _param("command", "Command is the remote command to execute. argv array."),
    "stdin": _param("stdin", "Redirect the standard input stream of the pod for this call.", "boolean"),
    "stdout": _param("stdout", "Redirect the standard output stream of the pod for this call.", "boolean"),
    "stderr": _param("stderr", "Redirect the standard error stream of the pod for this call.", "boolean"),
    "tty": _param("tty", "TTY if true indicates that a tty will be allocated for the call.", "boolean"),
    "ports": _param("ports", "List of ports to forward", "integer"),
    "proxyPath": _param("path", "Path is the URL path to use for the current proxy request."),
}

_LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
                "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_PATCH_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force")
_DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "ignoreStoreReadErrorWithClusterBreakingPotential",
                  "orphanDependents", "propagationPolicy")
_DELETECOLLECTION_PARAMS = ("continue", "dryRun", "fieldSelector", "gracePeriodSeconds",
                            "ignoreStoreReadErrorWithClusterBreakingPotential", "labelSelector", "limit",
                            "orphanDependents", "propagationPolicy", "resourceVersion", "resourceVersionMatch",
                            "sendInitialEvents", "timeoutSeconds")
_SUB_PARAMS = {
    "log": ("container", "follow", "insecureSkipTLSVerifyBackend", "limitBytes", "previous", "sinceSeconds",
            "stream", "tailLines", "timestamps"),
    "exec": ("command", "container", "stderr", "stdin", "stdout", "tty"),
    "attach": ("container", "stderr", "stdin", "stdout", "tty"),
    "portforward": ("ports",),
    "proxy": ("proxyPath",),
}

_OBJ_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_LIST_TYPES = _OBJ_TYPES + ("application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch")
_WATCH_TYPES = _LIST_TYPES
_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json")


def _patch_types(res: Resource) -> tuple[str, ...]:
    """What PATCH consumes: custom resources take no strategic merge patch (kubectl then sends a merge patch)."""
    return tuple(t for t in _PATCH_TYPES if t != "application/strategic-merge-patch+json") if res.custom else _PATCH_TYPES


def _ref(definition: str) -> dict:
    return {"$ref": SCHEMAS_PREFIX + definition} if definition else {"type": "object"}


def _content(definition: str, types: Iterable[str]) -> dict:
    return {t: {"schema": _ref(definition)} for t in types}


def _responses(definition: str, codes: Iterable[str], types: Iterable[str] = _OBJ_TYPES) -> dict:
    words = {"200": "OK", "201": "Created", "202": "Accepted"}
    out: dict[str, Any] = {}
    types = tuple(types)
    for code in codes:
        out[code] = {"content": _content(definition, types), "description": words[code]}
    out["401"] = {"description": "Unauthorized"}
    return out


def _camel_group(group: str) -> str:
    """Upstream's operationId spelling of a group: "" -> Core, rbac.authorization.k8s.io -> RbacAuthorization."""
    if not group:
        return "Core"
    trimmed = group.removesuffix(".k8s.io")
    return "".join(part[:1].upper() + part[1:] for part in trimmed.split("."))


def _tag(group: str, version: str) -> str:
    g = _camel_group(group)
    return f"{g[:1].lower()}{g[1:]}_{version}"


@dataclass
class _Ctx:
    group: str
    version: str
    gvk: dict
    definition: str
    list_definition: str
    tag: str
    op_id: str  # e.g. AppsV1


def _op(ctx: _Ctx, verb: str, action: str, description: str, op_name: str, params: Iterable[str],
        responses: dict, gvk: dict | None = None, body: dict | None = None) -> dict:
    op: dict[str, Any] = {"description": description, "operationId": op_name}
    params = tuple(params)
    if params:
        op["parameters"] = [_P[p] for p in params]
    if body is not None:
        op["requestBody"] = body
    op["responses"] = responses
    op["tags"] = [ctx.tag]
    op["x-kubernetes-action"] = action
    op["x-kubernetes-group-version-kind"] = gvk or ctx.gvk
    return op


def _body(definition: str, types: Iterable[str] = ("*/*",), required: bool = True) -> dict:
    b: dict[str, Any] = {"content": _content(definition, types)}
    if required:
        b["required"] = True
    return b


def resource_paths(res: Resource) -> dict[str, dict]:
    """Upstream's paths for one resource and its subresources (namespaced, all-namespaces and watch paths)."""
    group, version, kind, plural = res.group, res.version, res.kind, res.plural
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    gid = f"{_camel_group(group)}{version[:1].upper()}{version[1:]}"
    ctx = _Ctx(group, version, {"group": group, "kind": kind, "version": version}, definition_of(res),
               _def_for(group, version, kind + "List"), _tag(group, version), gid)
    verbs = set(res.verbs)
    ns = "Namespaced" if res.namespaced else ""
    scoped = f"{prefix}/namespaces/{{namespace}}" if res.namespaced else prefix
    scope_params = [_P["namespace"]] if res.namespaced else []
    paths: dict[str, dict] = {}

    collection: dict[str, Any] = {}
    if "list" in verbs:
        collection["get"] = _op(ctx, "get", "list", f"list or watch objects of kind {kind}",
                                f"list{gid}{ns}{kind}", _LIST_PARAMS,
                                _responses(ctx.list_definition, ("200",), _LIST_TYPES))
    if "create" in verbs:
        collection["post"] = _op(ctx, "post", "post", f"create a {kind}", f"create{gid}{ns}{kind}", _WRITE_PARAMS,
                                 _responses(ctx.definition, ("200", "201", "202")), body=_body(ctx.definition))
    if "deletecollection" in verbs:
        collection["delete"] = _op(ctx, "delete", "deletecollection", f"delete collection of {kind}",
                                   f"delete{gid}Collection{ns}{kind}", _DELETECOLLECTION_PARAMS,
                                   _responses(STATUS_DEF, ("200",)), body=_body(DELETE_OPTIONS_DEF, required=False))
    if collection:
        collection["parameters"] = scope_params + [_P["pretty"]]
        paths[f"{scoped}/{plural}"] = collection

    item: dict[str, Any] = {}
    if "get" in verbs:
        item["get"] = _op(ctx, "get", "get", f"read the specified {kind}", f"read{gid}{ns}{kind}", (),
                          _responses(ctx.definition, ("200",)))
    if "update" in verbs:
        item["put"] = _op(ctx, "put", "put", f"replace the specified {kind}", f"replace{gid}{ns}{kind}",
                          _WRITE_PARAMS, _responses(ctx.definition, ("200", "201")), body=_body(ctx.definition))
    if "patch" in verbs:
        item["patch"] = _op(ctx, "patch", "patch", f"partially update the specified {kind}", f"patch{gid}{ns}{kind}",
                            _PATCH_PARAMS, _responses(ctx.definition, ("200", "201")),
                            body=_body(PATCH_DEF, _patch_types(res)))
    if "delete" in verbs:
        item["delete"] = _op(ctx, "delete", "delete", f"delete a {kind}", f"delete{gid}{ns}{kind}", _DELETE_PARAMS,
                             _responses(STATUS_DEF, ("200", "202")), body=_body(DELETE_OPTIONS_DEF, required=False))
    if item:
        item["parameters"] = [_P["name"]] + scope_params + [_P["pretty"]]
        paths[f"{scoped}/{plural}/{{name}}"] = item

    if "watch" in verbs:
        watch_params = [_P[p] for p in _LIST_PARAMS]
        paths[f"{prefix}/watch{scoped[len(prefix):]}/{plural}"] = {
            "get": _op(ctx, "get", "watchlist", f"watch individual changes to a list of {kind}. deprecated: use "
                       "the 'watch' parameter with a list operation instead.", f"watch{gid}{ns}{kind}List", (),
                       _responses(WATCH_EVENT_DEF, ("200",), _WATCH_TYPES)),
            "parameters": watch_params[:-1] + scope_params + [_P["pretty"]] + watch_params[-1:],
        }
        paths[f"{prefix}/watch{scoped[len(prefix):]}/{plural}/{{name}}"] = {
            "get": _op(ctx, "get", "watch", f"watch changes to an object of kind {kind}. deprecated: use the "
                       "'watch' parameter with a list operation instead, filtered to a single item with the "
                       "'fieldSelector' parameter.", f"watch{gid}{ns}{kind}", (),
                       _responses(WATCH_EVENT_DEF, ("200",), _WATCH_TYPES)),
            "parameters": watch_params[:-1] + [_P["name"]] + scope_params + [_P["pretty"]] + watch_params[-1:],
        }
    if res.namespaced and "list" in verbs:
        paths[f"{prefix}/{plural}"] = {
            "get": _op(ctx, "get", "list", f"list or watch objects of kind {kind}",
                       f"list{gid}{kind}ForAllNamespaces", (),
                       _responses(ctx.list_definition, ("200",), _LIST_TYPES)),
            "parameters": [_P[p] for p in _LIST_PARAMS[:-1]] + [_P["pretty"], _P["watch"]],
        }
        if "watch" in verbs:
            paths[f"{prefix}/watch/{plural}"] = {
                "get": _op(ctx, "get", "watchlist", f"watch individual changes to a list of {kind}. deprecated: "
                           "use the 'watch' parameter with a list operation instead.",
                           f"watch{gid}{kind}ListForAllNamespaces", (),
                           _responses(WATCH_EVENT_DEF, ("200",), _WATCH_TYPES)),
                "parameters": [_P[p] for p in _LIST_PARAMS[:-1]] + [_P["pretty"], _P["watch"]],
            }

    for sub in res.subresources:
        paths.update(_subresource_paths(ctx, res, sub, f"{scoped}/{plural}/{{name}}", scope_params, ns))
    return paths


def _subresource_paths(ctx: _Ctx, res: Resource, sub: str, base: str, scope_params: list, ns: str) -> dict:
    info = subresource_info(res, sub)
    gvk = {"group": info.group, "kind": info.kind, "version": info.version}
    definition = _def_for(info.group, info.version, info.kind)
    kind, gid = res.kind, ctx.op_id
    cap = sub[:1].upper() + sub[1:]
    common = [_P["name"]] + scope_params
    verbs = set(info.verbs)
    path: dict[str, Any] = {}
    if sub == "log":
        path["get"] = _op(ctx, "get", "get", f"read log of the specified {kind}", f"read{gid}{ns}{kind}Log",
                          _SUB_PARAMS["log"], {"200": {"content": {"*/*": {"schema": {"type": "string"}}},
                                                       "description": "OK"}, "401": {"description": "Unauthorized"}},
                          gvk=gvk)
        path["parameters"] = common + [_P["pretty"]]
        return {f"{base}/log": path}
    if sub in ("exec", "attach", "portforward", "proxy"):
        methods = ("get", "post") if sub != "proxy" else ("delete", "get", "head", "options", "patch", "post", "put")
        for m in methods:
            path[m] = _op(ctx, m, "connect", f"connect {m.upper()} requests to {sub} of {kind}",
                          f"connect{gid}{m.capitalize()}{ns}{kind}{cap}", _SUB_PARAMS[sub],
                          {"200": {"content": {"*/*": {"schema": {"type": "string"}}}, "description": "OK"},
                           "401": {"description": "Unauthorized"}}, gvk=gvk)
        path["parameters"] = common
        return {f"{base}/{sub}": path}
    if "get" in verbs:
        path["get"] = _op(ctx, "get", "get", f"read {sub} of the specified {kind}", f"read{gid}{ns}{kind}{cap}", (),
                          _responses(definition, ("200",)), gvk=gvk)
    if "update" in verbs:
        path["put"] = _op(ctx, "put", "put", f"replace {sub} of the specified {kind}",
                          f"replace{gid}{ns}{kind}{cap}", _WRITE_PARAMS, _responses(definition, ("200", "201")),
                          gvk=gvk, body=_body(definition))
    if "patch" in verbs:
        path["patch"] = _op(ctx, "patch", "patch", f"partially update {sub} of the specified {kind}",
                            f"patch{gid}{ns}{kind}{cap}", _PATCH_PARAMS, _responses(definition, ("200", "201")),
                            gvk=gvk, body=_body(PATCH_DEF, _patch_types(res)))
    if "create" in verbs:
        path["post"] = _op(ctx, "post", "post", f"create {sub} of a {kind}", f"create{gid}{ns}{kind}{cap}",
                           _WRITE_PARAMS, _responses(definition, ("200", "201", "202")), gvk=gvk,
                           body=_body(definition))
    path["parameters"] = common + [_P["pretty"]]
    return {f"{base}/{sub}": path}


def _path_refs(paths: dict) -> set[str]:
    return {r.removeprefix(SCHEMAS_PREFIX) for r in _refs(paths)}


# ---------------------------------------------------------------------------------------------
# The service


def gv_path(group: str, version: str) -> str:
    """Index key of a group-version: `api/v1`, `apis/apps/v1`."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


class OpenAPIService:
    """Serves /openapi/v3 (the index) and /openapi/v3/<gv path> documents for every registered resource."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._revision = -1
        self._by_path: dict[str, list[Resource]] = {}
        self._hashes: dict[str, str] = {}
        self._docs: dict[str, bytes] = {}
        self._index = b""
        self._refresh()

    def _refresh(self) -> None:
        """Recompute the index when the registry changed (CRDs come and go); keep unchanged documents."""
        if self._revision == self._registry.revision:
            return
        self._revision = self._registry.revision
        by_path: dict[str, list[Resource]] = {}
        for res in sorted(self._registry.all(), key=lambda r: (r.group, r.version, r.plural)):
            by_path.setdefault(gv_path(res.group, res.version), []).append(res)
        hashes = {p: self._fingerprint(p, rs) for p, rs in by_path.items()}
        self._docs = {p: d for p, d in self._docs.items() if hashes.get(p) == self._hashes.get(p)}
        self._by_path, self._hashes = by_path, hashes
        index = {"paths": {p: {"serverRelativeURL": f"/openapi/v3/{p}?hash={h}"}
                           for p, h in sorted(self._hashes.items())}}
        self._index = orjson.dumps(index)

    @staticmethod
    def _fingerprint(path: str, resources: list[Resource]) -> str:
        """Upstream-style hash (uppercase SHA-512 hex) of everything the document is built from."""
        h = hashlib.sha512()
        h.update(f"{_BUILDER_REVISION}|{schema.SCHEMA_VERSION}|{path}".encode())
        for r in resources:
            h.update(repr((r.group, r.version, r.kind, r.plural, r.namespaced, r.subresources, r.verbs,
                           definition_of(r))).encode())
            if schema.is_custom(definition_of(r)):  # a CRD's schema may change under the same name
                h.update(orjson.dumps(schema.definitions().get(definition_of(r)), option=orjson.OPT_SORT_KEYS))
        return h.hexdigest().upper()

    def paths(self) -> list[str]:
        self._refresh()
        return sorted(self._by_path)

    def hash(self, path: str) -> str | None:
        self._refresh()
        return self._hashes.get(path)

    def index(self) -> bytes:
        self._refresh()
        return self._index

    def document(self, path: str) -> bytes | None:
        """The JSON bytes of one group-version document (built on first use), or None if not served."""
        self._refresh()
        doc = self._docs.get(path)
        if doc is None and path in self._by_path:
            doc = orjson.dumps(self.build(path), option=orjson.OPT_SORT_KEYS)
            self._docs[path] = doc
        return doc

    def build(self, path: str) -> dict:
        """The document for one group-version as a dict."""
        resources = self._by_path[path]
        paths: dict[str, dict] = {}
        roots: set[str] = {STATUS_DEF, DELETE_OPTIONS_DEF, WATCH_EVENT_DEF, PATCH_DEF}
        for res in resources:
            paths.update(resource_paths(res))
            if definition_of(res):
                roots.add(definition_of(res))
        roots |= _path_refs(paths)
        components = {name: convert_definition(name) for name in reachable_definitions(roots)}
        return {
            "components": {"schemas": components},
            "info": {"title": "Kubernetes", "version": "unversioned"},
            "openapi": "3.0.0",
            "paths": paths,
        }

    # -- HTTP ------------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/openapi/v3", self._handle_index)
        app.router.add_get("/openapi/v3/", self._handle_index)
        app.router.add_get("/openapi/v3/{path:.+}", self._handle_document)
        from kubelite.api.openapi_v2 import OpenAPIV2Service  # imports this module

        OpenAPIV2Service(self._registry).add_routes(app)

    async def _handle_index(self, request: web.Request) -> web.Response:
        return web.Response(body=self.index(), content_type="application/json",
                            headers={"Cache-Control": "no-cache, private"})

    async def _handle_document(self, request: web.Request) -> web.Response:
        path = request.match_info["path"].strip("/")
        current = self.hash(path)
        if current is None:
            return _not_found()
        wanted = request.query.get("hash")
        if wanted is not None and wanted != current:
            # upstream redirects a stale hash to the current one
            raise web.HTTPMovedPermanently(f"/openapi/v3/{path}?hash={current}",
                                           headers={"Cache-Control": "no-cache, private"})
        etag = f'"{current}"'
        headers = {"ETag": etag, "Vary": "Accept"}
        if wanted is not None:
            headers["Cache-Control"] = "public, immutable"
            headers["Expires"] = "Thu, 31 Dec 2099 00:00:00 GMT"
        else:
            headers["Cache-Control"] = "no-cache, private"
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        body = self.document(path)
        return web.Response(body=body, content_type="application/json", headers=headers)


def _not_found() -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "the server could not find the requested resource", "reason": "NotFound",
            "details": {}, "code": 404}
    return web.Response(status=404, body=orjson.dumps(body), content_type="application/json")
