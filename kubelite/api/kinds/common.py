"""Helpers every kind module shares: ages, selectors, names, metadata and quantities.

Each mirrors an upstream function (k8s.io/apimachinery validation, duration.HumanDuration,
metav1.FormatLabelSelector, resource.Quantity, intstr.GetScaledValueFromIntOrPercent) and uses its
exact wording, because users read these strings in kubectl output and error messages.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from kubelite.api import errors as ferr
from kubelite.api.errors import FieldError

# ---------------------------------------------------------------------------------------------
# Time


def parse_time(ts: str | None) -> float | None:
    """RFC 3339 timestamp (metav1.Time) to epoch seconds; None when absent or unparsable."""
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


def now_rfc3339(now: float | None = None) -> str:
    """metav1.Now() as serialized: second precision, UTC, trailing Z."""
    t = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def human_duration(seconds: float) -> str:
    """duration.HumanDuration: about 2-3 significant figures, as kubectl's AGE column."""
    s = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        sec = s % 60
        return f"{minutes}m" if sec == 0 else f"{minutes}m{sec}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def age(ts: str | None, now: float | None = None) -> str:
    """printers.translateTimestampSince: "<unknown>" for a missing timestamp, else HumanDuration."""
    t = parse_time(ts)
    if t is None:
        return "<unknown>"
    return human_duration((time.time() if now is None else now) - t)


# ---------------------------------------------------------------------------------------------
# Name validators (k8s.io/apimachinery/pkg/util/validation), exact upstream messages


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    # Go appends "'<example>', " per example joined by " or ", hence upstream's double space
    ex = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {ex}regex used for validation is '{fmt}')"


def empty_error() -> str:
    return "must be non-empty"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
CONFIG_MAP_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
ENV_VAR_NAME_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', "
    "and must not start with a digit"
)
C_IDENTIFIER_FMT = "[A-Za-z_][A-Za-z0-9_]*"
C_IDENTIFIER_MSG = (
    "a valid C identifier must start with alphabetic character or '_', followed by a string of "
    "alphanumeric characters or '_'"
)

_dns1123_label_re = re.compile(f"^{DNS1123_LABEL_FMT}$")
_dns1123_subdomain_re = re.compile(f"^{DNS1123_SUBDOMAIN_FMT}$")
_dns1035_label_re = re.compile(f"^{DNS1035_LABEL_FMT}$")
_qualified_name_re = re.compile(f"^{QUALIFIED_NAME_FMT}$")
_label_value_re = re.compile(f"^{LABEL_VALUE_FMT}$")
_config_map_key_re = re.compile(f"^{CONFIG_MAP_KEY_FMT}$")
_env_var_name_re = re.compile(f"^{ENV_VAR_NAME_FMT}$")
_c_identifier_re = re.compile(f"^{C_IDENTIFIER_FMT}$")
_port_name_charset_re = re.compile("^[-a-z0-9]+$")
_port_name_letter_re = re.compile("[a-z]")


def _full(rx: re.Pattern[str], value: str) -> bool:
    # Go's `$` does not match before a trailing newline; fullmatch semantics are what we need
    return rx.fullmatch(value) is not None


def dns1123_label(value: str) -> list[str]:
    """IsDNS1123Label."""
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _full(_dns1123_label_re, value):
        if _full(_dns1123_subdomain_re, value):
            errs.append("must not contain dots")
        else:
            errs.append(regex_error(DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    """IsDNS1123Subdomain."""
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _full(_dns1123_subdomain_re, value):
        errs.append(regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def dns1035_label(value: str) -> list[str]:
    """IsDNS1035Label (Service names before 1.x, container port names' cousins...)."""
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _full(_dns1035_label_re, value):
        errs.append(regex_error(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def qualified_name(value: str) -> list[str]:
    """IsQualifiedName: label keys, annotation keys, finalizers, resource names..."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _full(_qualified_name_re, name):
        errs.append("name part " + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value(value: str) -> list[str]:
    """IsValidLabelValue."""
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _full(_label_value_re, value):
        errs.append(regex_error(LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def config_map_key(value: str) -> list[str]:
    """IsConfigMapKey: keys of ConfigMap/Secret data."""
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _full(_config_map_key_re, value):
        errs.append(regex_error(CONFIG_MAP_KEY_MSG, CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    errs.extend(_chdir_prefix(value))
    return errs


def env_var_name(value: str) -> list[str]:
    """IsEnvVarName."""
    errs = []
    if not _full(_env_var_name_re, value):
        errs.append(regex_error(ENV_VAR_NAME_MSG, ENV_VAR_NAME_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1"))
    errs.extend(_chdir_prefix(value))
    return errs


def c_identifier(value: str) -> list[str]:
    """IsCIdentifier."""
    if not _full(_c_identifier_re, value):
        return [regex_error(C_IDENTIFIER_MSG, C_IDENTIFIER_FMT, "my_name", "MY_NAME", "MyName")]
    return []


def port_name(value: str) -> list[str]:
    """IsValidPortName (IANA_SVC_NAME)."""
    errs = []
    if len(value) > 15:
        errs.append(max_len_error(15))
    if not _full(_port_name_charset_re, value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _port_name_letter_re.search(value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def port_num(port: Any) -> list[str]:
    """IsValidPortNum: 1..65535."""
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return [inclusive_range_error(1, 65535)]


def path_segment_name(value: str) -> list[str]:
    """IsValidPathSegmentName: names of kinds stored by path (RBAC...)."""
    for bad in (".", ".."):
        if value == bad:
            return [f"may not be '{bad}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _mask_trailing_dash(name: str) -> str:
    return name[:-1] + "a" if name.endswith("-") else name


def name_validator(rule: str):
    """ValidateNameFunc for a name_rule: f(name, prefix) -> list of messages."""

    def subdomain(name: str, prefix: bool) -> list[str]:
        return dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)

    def label(name: str, prefix: bool) -> list[str]:
        return dns1123_label(_mask_trailing_dash(name) if prefix else name)

    def path(name: str, prefix: bool) -> list[str]:
        return path_segment_name(name)

    def none(name: str, prefix: bool) -> list[str]:
        return []

    return {"subdomain": subdomain, "label": label, "path": path, "none": none, "dns1035": (
        lambda n, p: dns1035_label(_mask_trailing_dash(n) if p else n))}[rule]


# ---------------------------------------------------------------------------------------------
# Metadata validation (apimachinery/pkg/api/validation/objectmeta.go, metav1 validation)

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    """metav1validation.ValidateLabels."""
    errs: list[FieldError] = []
    if not isinstance(labels, dict):
        return errs
    for k in sorted(labels):
        v = labels[k]
        errs.extend(ferr.invalid(path, k, m) for m in qualified_name(k))
        if isinstance(v, str):
            errs.extend(ferr.invalid(path, v, m) for m in label_value(v))
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    """ValidateAnnotations: keys are qualified names (case-insensitive), total size <= 256 KiB."""
    errs: list[FieldError] = []
    if not isinstance(annotations, dict):
        return errs
    total = 0
    for k in sorted(annotations):
        errs.extend(ferr.invalid(path, k, m) for m in qualified_name(k.lower()))
        v = annotations[k]
        total += len(k) + len(v if isinstance(v, str) else "")
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(ferr.too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def validate_finalizers(finalizers: Any, path: str, kube_finalizers: bool = True) -> list[FieldError]:
    """ValidateFinalizers (qualified names; orphan with foregroundDeletion is an error) plus core's
    validateKubeFinalizerName (an unprefixed name must be a standard finalizer), which custom resources,
    validated by apimachinery's ObjectMeta rules only, skip (kube_finalizers=False)."""
    errs: list[FieldError] = []
    if not isinstance(finalizers, list):
        return errs
    for f in finalizers:
        if isinstance(f, str):
            errs.extend(ferr.invalid(path, f, m) for m in qualified_name(f))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errs.append(ferr.invalid(path, finalizers, "finalizer orphan and foregroundDeletion cannot be both set"))
    for i, f in enumerate(finalizers if kube_finalizers else ()):
        # a domain name (upstream's own customresourcecleanup.apiextensions.k8s.io) is qualified enough
        if isinstance(f, str) and "/" not in f and "." not in f and f not in STANDARD_FINALIZERS:
            errs.append(ferr.invalid(f"{path}[{i}]", f, "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


class GoLiteral:
    """A value printed verbatim in a field error, for Go struct dumps such as `core.ServicePort{...}`."""

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoLiteral) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _owner_ref_literal(r: dict) -> str:
    bod = r.get("blockOwnerDeletion")
    return (f"{{{r.get('apiVersion') or ''} {r.get('kind') or ''} {r.get('name') or ''} {r.get('uid') or ''} "
            f"{str(bool(r.get('controller'))).lower()} {'<nil>' if bod is None else str(bool(bod)).lower()}}}")


def validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    """ValidateOwnerReferences: apiVersion, kind, name, uid present; at most one controller."""
    errs: list[FieldError] = []
    if not isinstance(refs, list):
        return errs
    controllers = []
    for r in refs:
        if not isinstance(r, dict):
            continue
        api_version = r.get("apiVersion") or ""
        version = api_version.split("/", 1)[1] if "/" in api_version else api_version
        if not version:
            errs.append(ferr.invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not r.get("kind"):
            errs.append(ferr.invalid(f"{path}.kind", r.get("kind") or "", "kind must not be empty"))
        if not r.get("name"):
            errs.append(ferr.invalid(f"{path}.name", r.get("name") or "", "name must not be empty"))
        if not r.get("uid"):
            errs.append(ferr.invalid(f"{path}.uid", r.get("uid") or "", "uid must not be empty"))
        if r.get("controller"):
            controllers.append(r)
    if len(controllers) > 1:
        found = " and ".join(_owner_ref_literal(c) for c in controllers)
        errs.append(ferr.invalid(path, refs, f"Only one reference can have Controller set to true. Found \"true\" in references for {found}"))
    return errs


def validate_object_meta(obj: dict, namespaced: bool, name_rule: str, kube_finalizers: bool = True) -> list[FieldError]:
    """ValidateObjectMeta: name (or generateName), namespace presence, labels, annotations, finalizers."""
    meta = obj.get("metadata") or {}
    errs: list[FieldError] = []
    name_fn = name_validator(name_rule)
    generate_name = meta.get("generateName") or ""
    if generate_name:
        errs.extend(ferr.invalid("metadata.generateName", generate_name, m) for m in name_fn(generate_name, True))
    name = meta.get("name") or ""
    if not name:
        if not generate_name:
            errs.append(ferr.required("metadata.name", "name or generateName is required"))
    else:
        errs.extend(ferr.invalid("metadata.name", name, m) for m in name_fn(name, False))
    ns = meta.get("namespace") or ""
    if namespaced:
        if not ns:
            errs.append(ferr.required("metadata.namespace", ""))
        else:
            errs.extend(ferr.invalid("metadata.namespace", ns, m) for m in dns1123_label(ns))
    elif ns:
        errs.append(ferr.forbidden("metadata.namespace", "not allowed on this type"))
    gen = meta.get("generation")
    if isinstance(gen, int) and gen < 0:
        errs.append(ferr.invalid("metadata.generation", gen, "must be greater than or equal to 0"))
    errs.extend(validate_labels(meta.get("labels"), "metadata.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), "metadata.annotations"))
    errs.extend(validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences"))
    errs.extend(validate_finalizers(meta.get("finalizers"), "metadata.finalizers", kube_finalizers))
    return errs


def validate_object_meta_update(new: dict, old: dict) -> list[FieldError]:
    """The update-only part of ValidateObjectMetaUpdate: identity fields immutable, generation not
    decremented, no finalizers added while deleting. Labels, annotations and the rest are checked by
    validate_object_meta, which the API server runs on every write."""
    nm, om = new.get("metadata") or {}, old.get("metadata") or {}
    errs: list[FieldError] = []
    if om.get("deletionTimestamp"):
        added = [f for f in nm.get("finalizers") or [] if f not in (om.get("finalizers") or [])]
        if added:
            errs.append(ferr.forbidden("metadata.finalizers",
                                       f"no new finalizers can be added if the object is being deleted, found new finalizers {go_list(added)}"))
    ng, og = nm.get("generation") or 0, om.get("generation") or 0
    if isinstance(ng, int) and isinstance(og, int) and ng < og:
        errs.append(ferr.invalid("metadata.generation", ng, "must not be decremented"))
    for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if key in om and nm.get(key) != om.get(key):
            errs.append(ferr.invalid(f"metadata.{key}", nm.get(key) if nm.get(key) is not None else "", "field is immutable"))
    return errs


def go_list(items: list[str]) -> str:
    """Go's %v of a []string: [a b c]."""
    return "[" + " ".join(items) + "]"


# ---------------------------------------------------------------------------------------------
# Label selectors


def validate_label_selector(sel: Any, path: str) -> list[FieldError]:
    """metav1validation.ValidateLabelSelector on a metav1.LabelSelector dict."""
    errs: list[FieldError] = []
    if not isinstance(sel, dict):
        return errs
    errs.extend(validate_labels(sel.get("matchLabels"), f"{path}.matchLabels"))
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        op = expr.get("operator")
        values = expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(ferr.required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(ferr.forbidden(f"{p}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(ferr.invalid(f"{p}.operator", op or "", "not a valid selector operator"))
        errs.extend(ferr.invalid(f"{p}.key", expr.get("key") or "", m) for m in qualified_name(expr.get("key") or ""))
        for j, v in enumerate(values):
            if isinstance(v, str):
                errs.extend(ferr.invalid(f"{p}.values[{j}]", v, m) for m in label_value(v))
    return errs


def format_label_selector(sel: dict | None) -> str:
    """metav1.FormatLabelSelector: requirements sorted by key, "<none>" when empty."""
    if not sel:
        return "<none>"
    reqs: list[tuple[str, str]] = []
    for k, v in (sel.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for expr in sel.get("matchExpressions") or []:
        k, op = expr.get("key", ""), expr.get("operator")
        values = ",".join(sorted(expr.get("values") or []))
        if op == "In":
            reqs.append((k, f"{k} in ({values})"))
        elif op == "NotIn":
            reqs.append((k, f"{k} notin ({values})"))
        elif op == "Exists":
            reqs.append((k, k))
        elif op == "DoesNotExist":
            reqs.append((k, f"!{k}"))
        else:
            return "<error>"
    reqs.sort(key=lambda r: r[0])
    s = ",".join(r[1] for r in reqs)
    return s or "<none>"


def format_labels(labels: dict | None) -> str:
    """labels.FormatLabels / Set.String(): sorted `k=v` joined by commas, "<none>" when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def selector_matches(sel: dict | None, labels: dict | None) -> bool:
    """Whether a metav1.LabelSelector matches a label set (nil selector matches nothing)."""
    if sel is None:
        return False
    labels = labels or {}
    for k, v in (sel.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in sel.get("matchExpressions") or []:
        k, op, vals = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# resource.Quantity

QUANTITY_REGEX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
QUANTITY_ERROR = f"quantities must match the regular expression '{QUANTITY_REGEX}'"
_NUMBER_RE = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}


def quantity_format(s: str) -> str:
    """The format a quantity string was written in: BinarySI, DecimalSI or DecimalExponent."""
    m = _NUMBER_RE.match(s.strip())
    suffix = s.strip()[m.end():] if m else ""
    if suffix in _BINARY:
        return "BinarySI"
    if suffix[:1] in ("e", "E"):
        return "DecimalExponent"
    return "DecimalSI"


def parse_quantity(s: Any) -> Decimal:
    """resource.ParseQuantity: "100m" -> 0.1, "1Gi" -> 1073741824, "1e3" -> 1000. ValueError if invalid."""
    if isinstance(s, bool):
        raise ValueError(QUANTITY_ERROR)
    if isinstance(s, int):
        return Decimal(s)
    if isinstance(s, float):
        return Decimal(repr(s))
    if not isinstance(s, str):
        raise ValueError(QUANTITY_ERROR)
    st = s.strip() if s else s
    if not st:
        raise ValueError("quantities must match the regular expression '" + QUANTITY_REGEX + "'")
    m = _NUMBER_RE.match(st)
    if not m:
        raise ValueError(QUANTITY_ERROR)
    number, suffix = m.group(0), st[m.end():]
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(QUANTITY_ERROR) from None
    if suffix in _BINARY:
        return value * (Decimal(2) ** _BINARY[suffix])
    if suffix in _DECIMAL:
        return value.scaleb(_DECIMAL[suffix])
    if suffix[:1] in ("e", "E") and re.fullmatch(r"[-+]?[0-9]+", suffix[1:]):
        return value.scaleb(int(suffix[1:]))
    raise ValueError("unable to parse quantity's suffix")


def _round_up_nano(value: Decimal) -> Decimal:
    # Quantity keeps at most nano precision, rounding up (away from zero for positives)
    return value.quantize(Decimal("1e-9"), rounding=ROUND_CEILING) if value.as_tuple().exponent < -9 else value


def format_quantity(value: Any, fmt: str = "DecimalSI") -> str:
    """Quantity.String() canonical form: `1500m`, `1k`, `128Mi`, `1e3`; fractions never use binary."""
    if isinstance(value, str):
        fmt = quantity_format(value)
        value = parse_quantity(value)
    v = _round_up_nano(Decimal(value))
    if v == 0:
        return "0"
    sign = "-" if v < 0 else ""
    a = -v if v < 0 else v
    if fmt == "BinarySI" and a == a.to_integral_value() and a >= 1024:
        n = int(a)
        best = ("", n)
        for suffix, shift in sorted(_BINARY.items(), key=lambda kv: kv[1]):
            if n % (1 << shift) == 0:
                best = (suffix, n >> shift)
        if best[0]:
            return f"{sign}{best[1]}{best[0]}"
        return f"{sign}{n}"
    # decimal: integer mantissa with an exponent that is a multiple of 3, as large as possible
    exp = -9
    mant = int((a.scaleb(9)).to_integral_value(rounding=ROUND_CEILING))
    while mant % 1000 == 0 and exp < 18:
        mant //= 1000
        exp += 3
    if fmt == "DecimalExponent":
        return f"{sign}{mant}" if exp == 0 else f"{sign}{mant}e{exp}"
    if exp > 18:
        exp = 18
    return f"{sign}{mant}{_DECIMAL_BY_EXP[exp]}"


def canonical_quantity(s: Any) -> str:
    """Round-trip a quantity string to the canonical form the API server returns."""
    if isinstance(s, str):
        return format_quantity(parse_quantity(s), quantity_format(s))
    return format_quantity(parse_quantity(s), "DecimalSI")


def quantity_milli(s: Any) -> int:
    """Quantity.MilliValue(), rounded up."""
    return int(math.ceil(parse_quantity(s) * 1000))


# ---------------------------------------------------------------------------------------------
# intstr


def int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: ints as is; "25%" of total, rounded up or down."""
    if isinstance(value, bool):
        raise ValueError("invalid value for IntOrString: invalid type: neither int nor percentage")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if not value.endswith("%"):
            raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")
        try:
            pct = int(value[:-1])
        except ValueError:
            raise ValueError(f'invalid value "{value}": strconv.Atoi: parsing "{value[:-1]}": invalid syntax') from None
        scaled = pct * total
        return -((-scaled) // 100) if round_up else scaled // 100
    raise ValueError("invalid value for IntOrString: invalid type: neither int nor percentage")


def is_valid_percent(value: str) -> list[str]:
    """IsValidPercent."""
    if re.fullmatch("[0-9]+%", value):
        return []
    return [regex_error("a valid percent string must be a numeric string followed by an ending '%'", "[0-9]+%", "1%", "93%")]


# ---------------------------------------------------------------------------------------------
# Generic numeric checks (ValidateNonnegativeField etc.)


def non_negative(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        return [ferr.invalid(path, value, "must be greater than or equal to 0")]
    return []


def positive(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
        return [ferr.invalid(path, value, "must be greater than 0")]
    return []


def immutable(new: Any, old: Any, path: str) -> list[FieldError]:
    """ValidateImmutableField."""
    if new != old:
        return [ferr.invalid(path, new, "field is immutable")]
    return []


# ---------------------------------------------------------------------------------------------
# IPs


def ip_errors(value: Any, path: str) -> list[FieldError]:
    """validation.IsValidIP."""
    import ipaddress

    try:
        ipaddress.ip_address(value if isinstance(value, str) else "")
        return []
    except ValueError:
        return [ferr.invalid(path, value, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]


def cidr_errors(value: Any, path: str) -> list[FieldError]:
    """validation.IsValidCIDR."""
    import ipaddress

    try:
        ipaddress.ip_network(value if isinstance(value, str) else "", strict=False)
        if "/" not in value:
            raise ValueError
        return []
    except ValueError:
        return [ferr.invalid(path, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]


# ---------------------------------------------------------------------------------------------
# Table column descriptions (upstream uses the types' SwaggerDoc, i.e. the OpenAPI descriptions)


def column_doc(definition: str, *path: str) -> str:
    """The schema description of a field, e.g. column_doc("io.k8s.api.core.v1.PodStatus", "podIP")."""
    try:
        from kubelite.api import schema

        node = schema.field_schema(definition, list(path))
        return (node or {}).get("description", "") if isinstance(node, dict) else ""
    except Exception:  # descriptions are cosmetic; never fail registration over them
        return ""


def age_column():
    """The AGE column every printer ends with."""
    from kubelite.api.registry import Column

    return Column("Age", "string", description=column_doc("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                                                          "creationTimestamp"))


def creation_age(obj: dict, now: float | None = None) -> str:
    return age((obj.get("metadata") or {}).get("creationTimestamp"), now)
