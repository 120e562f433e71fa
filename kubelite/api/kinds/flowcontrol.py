"""flowcontrol.apiserver.k8s.io/v1: FlowSchema and PriorityLevelConfiguration (API Priority and Fairness).

Stored with upstream's defaults and columns; the server bootstraps the two mandatory configurations
(`exempt` and `catch-all`). kubelite does not queue requests by them.
"""

from __future__ import annotations

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import age_cell, age_column, definition
from kubelite.api.registry import Column, Obj, Registry, Resource

GROUP = "flowcontrol.apiserver.k8s.io"
PL_TYPES = ["Exempt", "Limited"]
LIMIT_TYPES = ["Queue", "Reject"]
DISTINGUISHERS = ["ByNamespace", "ByUser"]
AUTO_UPDATE = "apf.kubernetes.io/autoupdate-spec"


def builtin_configurations() -> list[tuple[str, Obj]]:
    """The mandatory objects kube-apiserver keeps (plural, object)."""
    ann = {AUTO_UPDATE: "true"}
    v = f"{GROUP}/v1"
    return [
        ("prioritylevelconfigurations", {"apiVersion": v, "kind": "PriorityLevelConfiguration",
                                         "metadata": {"name": "exempt", "annotations": dict(ann)},
                                         "spec": {"type": "Exempt", "exempt": {}}}),
        ("prioritylevelconfigurations", {"apiVersion": v, "kind": "PriorityLevelConfiguration",
                                         "metadata": {"name": "catch-all", "annotations": dict(ann)},
                                         "spec": {"type": "Limited", "limited": {
                                             "nominalConcurrencyShares": 5, "lendablePercent": 0,
                                             "limitResponse": {"type": "Reject"}}}}),
        ("flowschemas", {"apiVersion": v, "kind": "FlowSchema", "metadata": {"name": "exempt",
                                                                              "annotations": dict(ann)},
                         "spec": {"matchingPrecedence": 1, "priorityLevelConfiguration": {"name": "exempt"},
                                  "rules": [{"subjects": [{"kind": "Group", "group": {"name": "system:masters"}}],
                                             "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                                                "resources": ["*"], "clusterScope": True,
                                                                "namespaces": ["*"]}],
                                             "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}),
        ("flowschemas", {"apiVersion": v, "kind": "FlowSchema", "metadata": {"name": "catch-all",
                                                                              "annotations": dict(ann)},
                         "spec": {"matchingPrecedence": 10000, "priorityLevelConfiguration": {"name": "catch-all"},
                                  "distinguisherMethod": {"type": "ByUser"},
                                  "rules": [{"subjects": [{"kind": "Group", "group": {"name": "system:unauthenticated"}},
                                                          {"kind": "Group", "group": {"name": "system:authenticated"}}],
                                             "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                                                "resources": ["*"], "clusterScope": True,
                                                                "namespaces": ["*"]}],
                                             "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}),
    ]


def default_flowschema(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not spec.get("matchingPrecedence"):
        spec["matchingPrecedence"] = 1000


def validate_flowschema(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    mp = spec.get("matchingPrecedence")
    if isinstance(mp, int) and not 0 < mp <= 10000:
        errs.append(ferr.invalid("spec.matchingPrecedence", mp, "must be between 1 and 10000 inclusively"))
    if not (spec.get("priorityLevelConfiguration") or {}).get("name"):
        errs.append(ferr.required("spec.priorityLevelConfiguration.name", "must reference a priority level"))
    dm = (spec.get("distinguisherMethod") or {}).get("type")
    if spec.get("distinguisherMethod") is not None and dm not in DISTINGUISHERS:
        errs.append(ferr.not_supported("spec.distinguisherMethod.type", dm, DISTINGUISHERS))
    return errs


def flowschema_row(obj: Obj) -> list:
    spec = obj.get("spec") or {}
    dm = (spec.get("distinguisherMethod") or {}).get("type") or "<none>"
    missing = "?"
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Dangling":
            missing = c.get("status") or "?"
    return [(spec.get("priorityLevelConfiguration") or {}).get("name") or "", spec.get("matchingPrecedence") or 0,
            dm, age_cell(obj), missing]


def default_prioritylevel(obj: Obj) -> None:
    """SetDefaults_PriorityLevelConfiguration (v1)."""
    spec = obj.setdefault("spec", {})
    if spec.get("type") == "Limited" and isinstance(spec.get("limited"), dict):
        lim = spec["limited"]
        if lim.get("nominalConcurrencyShares") is None:
            lim["nominalConcurrencyShares"] = 30
        lim.setdefault("lendablePercent", 0)
        lr = lim.get("limitResponse")
        if isinstance(lr, dict) and lr.get("type") == "Queue":
            q = lr.setdefault("queuing", {})
            q.setdefault("queues", 64)
            q.setdefault("handSize", 8)
            q.setdefault("queueLengthLimit", 50)
    elif spec.get("type") == "Exempt":
        ex = spec.setdefault("exempt", {})
        ex.setdefault("nominalConcurrencyShares", 0)
        ex.setdefault("lendablePercent", 0)


def validate_prioritylevel(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs: list[FieldError] = []
    t = spec.get("type")
    if not t:
        errs.append(ferr.required("spec.type", "must be 'Exempt' if and only if name is 'exempt'"))
    elif t not in PL_TYPES:
        errs.append(ferr.not_supported("spec.type", t, PL_TYPES))
    elif t == "Limited":
        lim = spec.get("limited")
        if not isinstance(lim, dict):
            errs.append(ferr.required("spec.limited", "must not be empty when type is Limited"))
        else:
            lr = (lim.get("limitResponse") or {}).get("type")
            if lr not in LIMIT_TYPES:
                errs.append(ferr.not_supported("spec.limited.limitResponse.type", lr, LIMIT_TYPES))
    return errs


def prioritylevel_row(obj: Obj) -> list:
    spec = obj.get("spec") or {}
    ncs: object = "<none>"
    queues: object = "<none>"
    hand: object = "<none>"
    qlen: object = "<none>"
    lim = spec.get("limited")
    if isinstance(lim, dict):
        ncs = lim.get("nominalConcurrencyShares", 0)
        q = (lim.get("limitResponse") or {}).get("queuing")
        if isinstance(q, dict):
            queues, hand, qlen = q.get("queues", 0), q.get("handSize", 0), q.get("queueLengthLimit", 0)
    elif isinstance(spec.get("exempt"), dict):
        ncs = spec["exempt"].get("nominalConcurrencyShares", 0)
    return [spec.get("type") or "", ncs, queues, hand, qlen, age_cell(obj)]


def _update(validate):
    return lambda new, old: common.validate_object_meta_update(new, old) + validate(new)


def register(reg: Registry) -> None:
    g, v = GROUP, "v1"
    reg.register(Resource(
        group=g, version=v, kind="FlowSchema", plural="flowschemas", namespaced=False, subresources=("status",),
        definition=definition(g, v, "FlowSchema"),
        columns=(Column("PriorityLevel", "string", description="The name of the priority level that the flow schema "
                        "is associated with."),
                 Column("MatchingPrecedence", "string", description="The matching precedence of the flow schema."),
                 Column("DistinguisherMethod", "string", description="The distinguisher method of the flow schema."),
                 age_column(),
                 Column("MissingPL", "string", description="Whether the flow schema is dangling.")),
        row=flowschema_row, default=default_flowschema, validate=validate_flowschema,
        validate_update=_update(validate_flowschema), tracks_generation=True,
    ))
    reg.register(Resource(
        group=g, version=v, kind="PriorityLevelConfiguration", plural="prioritylevelconfigurations",
        namespaced=False, subresources=("status",), definition=definition(g, v, "PriorityLevelConfiguration"),
        columns=(Column("Type", "string", description="The type of the priority level."),
                 Column("NominalConcurrencyShares", "string", description="Nominal concurrency shares."),
                 Column("Queues", "string", description="Number of queues."),
                 Column("HandSize", "string", description="The hand size used for shuffle sharding."),
                 Column("QueueLengthLimit", "string", description="Maximum number of requests in a queue."),
                 age_column()),
        row=prioritylevel_row, default=default_prioritylevel, validate=validate_prioritylevel,
        validate_update=_update(validate_prioritylevel), tracks_generation=True,
    ))
