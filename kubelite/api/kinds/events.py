"""events.k8s.io/v1 Event: the same objects as core/v1 events, seen through the newer field names.

Upstream both groups share one internal type and one etcd prefix (/registry/events/). Here the
events.k8s.io resource sets `storage_group=""` so that it reads and writes the core/v1 events'
keys, with storage_version "core/v1", and `convert` maps field names between the two shapes (the
store holds core/v1):

  events.k8s.io/v1          core/v1
  note                      message
  regarding                 involvedObject
  reportingController       reportingComponent
  deprecatedCount           count
  deprecatedFirstTimestamp  firstTimestamp
  deprecatedLastTimestamp   lastTimestamp
  deprecatedSource          source
  (eventTime, series, related, action, reason, type, reportingInstance: same names)
"""

from __future__ import annotations

import copy

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError
from kubelite.api.kinds import common
from kubelite.api.kinds.apps import definition
from kubelite.api.registry import Column, Obj, Registry, Resource

GROUP = "events.k8s.io"
EVENTS_V1 = f"{GROUP}/v1"

# events.k8s.io/v1 name -> core/v1 name
_RENAMES = (
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("reportingController", "reportingComponent"),
    ("deprecatedCount", "count"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedSource", "source"),
)


def to_core(obj: Obj) -> Obj:
    """events.k8s.io/v1 Event -> core/v1 Event."""
    if obj.get("apiVersion") == "v1":
        return obj
    out = copy.deepcopy(obj)
    out["apiVersion"], out["kind"] = "v1", "Event"
    for new, old in _RENAMES:
        if new in out:
            out[old] = out.pop(new)
    out.setdefault("involvedObject", {})
    out.setdefault("source", {})
    out.setdefault("reportingComponent", "")
    out.setdefault("reportingInstance", "")
    # core/v1 serializes zero timestamps as null
    out.setdefault("firstTimestamp", None)
    out.setdefault("lastTimestamp", None)
    return out


def to_events_v1(obj: Obj) -> Obj:
    """core/v1 Event -> events.k8s.io/v1 Event (empty deprecated fields are dropped)."""
    if obj.get("apiVersion") == EVENTS_V1:
        return obj
    out = copy.deepcopy(obj)
    out["apiVersion"], out["kind"] = EVENTS_V1, "Event"
    for new, old in _RENAMES:
        if old in out:
            value = out.pop(old)
            if value not in (None, "", 0, {}):
                out[new] = value
    if "eventTime" not in out or out.get("eventTime") is None:
        out["eventTime"] = None
    return out


# The stored version, group-qualified because both groups call their version "v1": the API server
# converts to storage when storage_version != version, and back with to_version=version ("v1").
STORAGE_VERSION = "core/v1"


def convert_event(obj: Obj, to_version: str) -> Obj:
    """Registry convert hook: "core/v1" is the stored core shape; "v1"/"events.k8s.io/v1" the served one."""
    if to_version == STORAGE_VERSION:
        return to_core(obj)
    if to_version in ("v1", EVENTS_V1):
        return to_events_v1(obj)
    raise ValueError(f"cannot convert Event to {to_version}")


def validate_event(obj: Obj) -> list[FieldError]:
    """ValidateEventCreate for events.k8s.io/v1 (strict: the new API's required fields)."""
    errs = common.validate_object_meta(obj, True, "subdomain")
    ns = (obj.get("metadata") or {}).get("namespace") or ""
    regarding = obj.get("regarding") or {}
    if obj.get("eventTime"):
        if not regarding.get("namespace") and ns not in ("default", "kube-system"):
            errs.append(ferr.invalid("involvedObject.namespace", regarding.get("namespace") or "", "does not match event.namespace"))
        controller = obj.get("reportingController") or ""
        if not controller:
            errs.append(ferr.required("reportingController", ""))
        errs.extend(ferr.invalid("reportingController", controller, m) for m in common.qualified_name(controller))
        instance = obj.get("reportingInstance") or ""
        if not instance:
            errs.append(ferr.required("reportingInstance", ""))
        if len(instance) > 128:
            errs.append(ferr.invalid("reportingInstance", "", "can have at most 128 characters"))
        action = obj.get("action") or ""
        if not action:
            errs.append(ferr.required("action", ""))
        if len(action) > 128:
            errs.append(ferr.invalid("action", "", "can have at most 128 characters"))
        reason = obj.get("reason") or ""
        if not reason:
            errs.append(ferr.required("reason", ""))
        if len(reason) > 128:
            errs.append(ferr.invalid("reason", "", "can have at most 128 characters"))
        if len(obj.get("note") or "") > 1024:
            errs.append(ferr.invalid("note", "", "can have at most 1024 characters"))
    else:
        errs.append(ferr.required("eventTime", ""))
    series = obj.get("series")
    if isinstance(series, dict):
        if (series.get("count") or 0) < 2:
            errs.append(ferr.invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(ferr.required("series.lastObservedTime", ""))
    t = obj.get("type") or ""
    if t not in ("Normal", "Warning"):
        errs.append(ferr.invalid("type", "", f"has invalid value: {t}"))
    for key in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount", "deprecatedSource"):
        if obj.get(key):
            errs.append(ferr.invalid(key, "", "needs to be unset"))
    return errs


def validate_event_update(new: Obj, old: Obj) -> list[FieldError]:
    """ValidateEventUpdate (events.k8s.io/v1): only series, and unchanged identity fields."""
    errs: list[FieldError] = []
    for key in ("action", "reason", "reportingController", "reportingInstance", "type", "note", "eventTime",
                "regarding", "related"):
        if new.get(key) != old.get(key):
            errs.append(ferr.invalid(key, new.get(key), "field is immutable"))
    return errs


def event_row(obj: Obj) -> list:
    """printEvent: every cell, NAME last (shown with -o wide), as upstream prints events."""
    core = to_core(obj)
    first = core.get("firstTimestamp")
    first_s = common.age(first) if first else common.age(core.get("eventTime"))
    last = core.get("lastTimestamp")
    last_s = common.age(last) if last else first_s
    count = core.get("count") or 0
    series = core.get("series")
    if isinstance(series, dict):
        last_s = common.age(series.get("lastObservedTime"))
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    inv = core.get("involvedObject") or {}
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = core.get("source") or {}
    component = src.get("component") or core.get("reportingComponent") or ""
    host = src.get("host") or core.get("reportingInstance") or ""
    source = f"{component}, {host}" if host else component
    return [last_s, core.get("type") or "", core.get("reason") or "", target, inv.get("fieldPath") or "", source,
            (core.get("message") or "").strip(), first_s, count, (obj.get("metadata") or {}).get("name", "")]


EVENT_COLUMNS = (
    Column("Last Seen", "string", description="The time at which the most recent occurrence of this event was recorded."),
    Column("Type", "string", description="Type of this event (Normal, Warning), new types could be added in the future"),
    Column("Reason", "string", description="This should be a short, machine understandable string that gives the "
           "reason for the transition into the object's current status."),
    Column("Object", "string", description="The object that this event is about."),
    Column("Subobject", "string", priority=1, description="If referring to a piece of an object instead of an entire "
           "object, this string should contain a valid JSON/Go field access statement, such as "
           "desiredState.manifest.containers[2]."),
    Column("Source", "string", priority=1, description="The component reporting this event. Should be a short machine "
           "understandable string."),
    Column("Message", "string", description="A human-readable description of the status of this operation."),
    Column("First Seen", "string", priority=1, description="The time at which the event was first recorded. (Time of "
           "server receipt is in TypeMeta.)"),
    Column("Count", "string", priority=1, description="The number of times this event has occurred."),
    Column("Name", "string", format="name", priority=1, description="The name of the event."),
)


def register(reg: Registry) -> None:
    reg.register(Resource(
        group=GROUP, version="v1", kind="Event", plural="events", namespaced=True, short_names=("ev",),
        definition=definition(GROUP, "v1", "Event"), columns=EVENT_COLUMNS, row=event_row, name_in_row=True,
        validate=validate_event, validate_update=validate_event_update,
        storage_group="", storage_version=STORAGE_VERSION, storage_plural="events", convert=convert_event,
    ))
