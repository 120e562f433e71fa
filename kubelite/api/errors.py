"""Kubernetes-style API errors: field errors and `Status` objects worded as upstream words them.

Field errors mirror k8s.io/apimachinery/pkg/util/validation/field; `StatusError` carries a
`Status` body and the HTTP code so that the server can answer any failure the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

# field.ErrorType -> (StatusCause reason, message prefix)
_FIELD_TYPES = {
    "Required": ("FieldValueRequired", "Required value"),
    "Invalid": ("FieldValueInvalid", "Invalid value"),
    "NotSupported": ("FieldValueNotSupported", "Unsupported value"),
    "Duplicate": ("FieldValueDuplicate", "Duplicate value"),
    "Forbidden": ("FieldValueForbidden", "Forbidden"),
    "TooLong": ("FieldValueTooLong", "Too long"),
    "TooMany": ("FieldValueTooMany", "Too many"),
    "NotFound": ("FieldValueNotFound", "Not found"),
}


def go_value(value: Any) -> str:
    """Render a value roughly as Go's %#v does in upstream field errors."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, dict):
        if all(isinstance(v, str) for v in value.values()):
            inner = ", ".join(f"{go_value(k)}:{go_value(v)}" for k, v in sorted(value.items()))
            return "map[string]string{" + inner + "}"
        return orjson.dumps(value).decode()
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "[]string{" + ", ".join(go_value(v) for v in value) + "}"
        return orjson.dumps(value).decode()
    return str(value)


@dataclass
class FieldError:
    """One field.Error: a path such as `spec.template.spec.containers[0].name`, a type and a detail."""

    type: str
    field: str
    value: Any = None
    detail: str = ""
    show_value: bool = True

    def body(self) -> str:
        prefix = _FIELD_TYPES[self.type][1]
        if self.type in ("Required", "Forbidden", "TooLong") or not self.show_value:
            s = prefix
        else:
            s = f"{prefix}: {go_value(self.value)}"
        if self.detail:
            s += f": {self.detail}"
        return s

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict:
        return {"reason": _FIELD_TYPES[self.type][0], "message": self.body(), "field": self.field}


def required(field: str, detail: str = "") -> FieldError:
    return FieldError("Required", field, None, detail)


def invalid(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("Invalid", field, value, detail)


def not_supported(field: str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(f'"{s}"' for s in supported) if supported else ""
    return FieldError("NotSupported", field, value, detail)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("Duplicate", field, value)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError("Forbidden", field, None, detail)


def too_long(field: str, value: Any, max_len: int) -> FieldError:
    return FieldError("TooLong", field, value, f"may not be more than {max_len} bytes")


def too_many(field: str, actual: int, max_items: int) -> FieldError:
    return FieldError("TooMany", field, actual, f"must have at most {max_items} items")


def not_found(field: str, value: Any) -> FieldError:
    return FieldError("NotFound", field, value)


class StatusError(Exception):
    """An API failure answered as a `Status` object with the given HTTP code."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict:
        s = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del s["reason"]  # omitempty, as upstream (an error that is no API status: reason unknown)
        if self.details is not None:
            s["details"] = self.details
        return s


def qualified(resource: str, group: str) -> str:
    """`deployments.apps`, or plain `pods` for the core group, as upstream names resources in errors."""
    return f"{resource}.{group}" if group else resource


def new_not_found(resource: str, group: str, name: str) -> StatusError:
    return StatusError(
        404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
        {"name": name, "group": group, "kind": resource} if group else {"name": name, "kind": resource},
    )


def new_already_exists(resource: str, group: str, name: str) -> StatusError:
    details = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return StatusError(409, "AlreadyExists", f'{qualified(resource, group)} "{name}" already exists', details)


def new_conflict(resource: str, group: str, name: str, detail: str) -> StatusError:
    details = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return StatusError(
        409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {detail}', details
    )


def new_invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> StatusError:
    """Upstream's NewInvalid: `Deployment.apps "x" is invalid: [a: ..., b: ...]`."""
    msgs = [str(e) for e in errors]
    # upstream de-duplicates identical messages in the aggregate
    seen: list[str] = []
    for m in msgs:
        if m not in seen:
            seen.append(m)
    joined = seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"
    details: dict = {"name": name, "kind": kind, "causes": [e.cause() for e in errors]}
    if group:
        details["group"] = group
    return StatusError(422, "Invalid", f'{qualified(kind, group)} "{name}" is invalid: {joined}', details)


def new_bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def new_forbidden(resource: str, group: str, name: str, message: str) -> StatusError:
    what = f'{qualified(resource, group)} "{name}"' if name else qualified(resource, group)
    details: dict = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return StatusError(403, "Forbidden", f"{what} is forbidden: {message}", details)


def new_method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def new_gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def new_unauthorized(message: str = "Unauthorized") -> StatusError:
    return StatusError(401, "Unauthorized", message)


def new_internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def new_unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf' if not content_type else "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json")


def new_not_acceptable(message: str = "only the following media types are accepted: application/json, application/yaml") -> StatusError:
    return StatusError(406, "NotAcceptable", message)
