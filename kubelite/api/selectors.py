"""Label and field selectors, parsed and matched as upstream's apimachinery does.

One implementation shared by the API server (list/watch filtering, query validation) and the client's
informer caches, so a selector means the same thing on both sides of the wire. Error texts follow
`k8s.io/apimachinery/pkg/labels/selector.go` and `pkg/fields/selector.go` word for word because
kubectl prints them unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kubelite.api.errors import FieldError, StatusError


class SelectorError(StatusError, ValueError):
    """A selector that does not parse or names an unsupported field; str() is upstream's message.

    It is a 400 BadRequest StatusError, so the API server answers it as upstream does unchanged.
    """

    def __init__(self, message: str):
        super().__init__(400, "BadRequest", message)


# ---------------------------------------------------------------------------------------------
# Name and value validation (k8s.io/apimachinery/pkg/util/validation), as the parser words it.

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(f"^{_QNAME_FMT}$")
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    ex = ",  or ".join(f"'{e}'" for e in examples)
    return f"{msg} (e.g. {ex}, regex used for validation is '{fmt}')"


def is_qualified_name(value: str) -> list[str]:
    """validation.IsQualifiedName: `[prefix/]name` as label and annotation keys must be."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in is_dns1123_subdomain(prefix)]
    else:
        return [
            "a qualified name " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not _QNAME_RE.match(name):
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(_regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character", _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.match(value):
        errs.append(_regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character", _LABEL_VALUE_FMT,
            "MyValue", "my_value", "12345"))
    return errs


def _aggregate(errs: list[str]) -> str:
    return errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"


# ---------------------------------------------------------------------------------------------
# Label selectors

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"
_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term; values are kept sorted as upstream's sets.String.List() does."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except ValueError:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def to_string(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        vals = ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({vals})"
        sym = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{sym}{vals}"


def new_requirement(key: str, operator: str, values: list[str] | tuple[str, ...] = (),
                    path: str = "") -> Requirement:
    """labels.NewRequirement: validates key, operator arity and values; raises SelectorError."""
    errs: list[str] = []
    key_errs = is_qualified_name(key)
    if key_errs:
        errs.append(str(FieldError("Invalid", _child(path, "key"), key, "; ".join(key_errs))))
    vpath = _child(path, "values")
    vals = list(values)
    if operator in (IN, NOT_IN):
        if not vals:
            errs.append(str(FieldError("Invalid", vpath, vals, "for 'in', 'notin' operators, values set can't be empty")))
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(str(FieldError("Invalid", vpath, vals, "exact-match compatibility requires one single value")))
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errs.append(str(FieldError("Invalid", vpath, vals, "values set must be empty for exists and does not exist")))
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(str(FieldError("Invalid", vpath, vals, "for 'Gt', 'Lt' operators, exactly one value is required")))
        for i, v in enumerate(vals):
            if not re.fullmatch(r"[+-]?\d+", v):
                errs.append(str(FieldError("Invalid", f"{vpath}[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer")))
    else:
        errs.append(str(FieldError("NotSupported", _child(path, "operator"), operator,
                                   "supported values: " + ", ".join(f'"{o}"' for o in (
                                       IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN,
                                       EXISTS, DOES_NOT_EXIST)))))
    for i, v in enumerate(vals):
        v_errs = is_valid_label_value(v)
        if v_errs:
            errs.append(str(FieldError("Invalid", f"{vpath}[{i}][{key}]", v, "; ".join(v_errs))))
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, operator, tuple(sorted(set(vals))))


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class LabelSelector:
    """An AND of requirements (upstream's internalSelector); `nothing()` matches no object at all."""

    __slots__ = ("requirements", "_nothing")

    def __init__(self, requirements: list[Requirement] | tuple[Requirement, ...] = (), nothing: bool = False):
        self.requirements = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = nothing

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    def empty(self) -> bool:
        """True when the selector does not restrict anything (upstream's Empty)."""
        return not self._nothing and not self.requirements

    def is_nothing(self) -> bool:
        return self._nothing

    def matches(self, labels: dict[str, str] | None) -> bool:
        if self._nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def matches_object(self, obj: dict) -> bool:
        return self.matches((obj.get("metadata") or {}).get("labels") or {})

    def requires_exact_match(self, key: str) -> str | None:
        """The single value `key` must have under this selector, if there is one (index lookups)."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def to_string(self) -> str:
        return "" if self._nothing else ",".join(r.to_string() for r in self.requirements)

    __str__ = to_string

    def __repr__(self) -> str:
        return "LabelSelector(<nothing>)" if self._nothing else f"LabelSelector({self.to_string()!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, LabelSelector) and self._nothing == other._nothing
                and self.requirements == other.requirements)

    def __hash__(self) -> int:
        return hash((self._nothing, self.requirements))


# Lexer tokens
_ERR, _EOS, _CPAR, _COMMA, _NOT, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPAR = range(14)
_STRING_TOKENS = {")": _CPAR, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "in": _IN,
                  "<": _LT, "!=": _NEQ, "notin": _NOTIN, "(": _OPAR}
_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")


def _lex(s: str) -> list[tuple[int, str]]:
    items: list[tuple[int, str]] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i] in _WHITESPACE:
            i += 1
        if i >= n:
            items.append((_EOS, ""))
            return items
        if s[i] in _SPECIAL:
            buf, last = "", None
            while i < n and s[i] in _SPECIAL:
                buf += s[i]
                if buf in _STRING_TOKENS:
                    last = (_STRING_TOKENS[buf], buf)
                    i += 1
                elif last is not None:
                    break
                else:
                    i += 1
            if last is None:
                items.append((_ERR, f"error expected: keyword found '{buf}'"))
            else:
                items.append(last)
        else:
            start = i
            while i < n and s[i] not in _SPECIAL and s[i] not in _WHITESPACE:
                i += 1
            word = s[start:i]
            items.append((_STRING_TOKENS.get(word, _ID), word))


class _Parser:
    def __init__(self, s: str):
        self.items = _lex(s)
        self.pos = 0

    def _tok(self, idx: int, values: bool) -> tuple[int, str]:
        tok, lit = self.items[idx]
        if values and tok in (_IN, _NOTIN):
            tok = _ID
        return tok, lit

    def lookahead(self, values: bool = True) -> tuple[int, str]:
        return self._tok(self.pos, values)

    def consume(self, values: bool = True) -> tuple[int, str]:
        self.pos += 1
        return self._tok(self.pos - 1, values)

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_ID, _NOT):
                try:
                    reqs.append(self.requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e}") from None
                t, lit = self.consume()
                if t == _EOS:
                    return reqs
                if t == _COMMA:
                    t2, l2 = self.lookahead()
                    if t2 not in (_ID, _NOT):
                        raise SelectorError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == _EOS:
                return reqs
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        op = ""
        tok, lit = self.consume()
        if tok == _NOT:
            op = DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok != _ID:
            raise SelectorError(f"found '{lit}', expected: identifier")
        key_errs = is_qualified_name(lit)
        if key_errs:
            raise SelectorError(str(FieldError("Invalid", "<nil>", lit, "; ".join(key_errs))))
        key = lit
        if self.lookahead()[0] in (_EOS, _COMMA):
            op = op or EXISTS
        if op in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, op, ())
        tok, lit = self.consume(values=False)
        ops = {_IN: IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN,
               _NOTIN: NOT_IN, _NEQ: NOT_EQUALS}
        if tok not in ops:
            raise SelectorError(f"found '{lit}', expected: {_BINARY_OPERATORS}")
        op = ops[tok]
        values = self.set_values() if op in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, op, sorted(values))

    def set_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _OPAR:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_ID, _COMMA):
            vals = self.identifiers()
            if self.consume()[0] != _CPAR:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return vals
        if tok == _CPAR:
            self.consume()
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        vals: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _ID:
                vals.add(lit)
                t2, l2 = self.lookahead()
                if t2 == _COMMA:
                    continue
                if t2 == _CPAR:
                    return vals
                raise SelectorError(f"found '{l2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not vals:
                    vals.add("")
                t2, _ = self.lookahead()
                if t2 == _CPAR:
                    vals.add("")
                    return vals
                if t2 == _COMMA:
                    self.consume()
                    vals.add("")
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.lookahead()
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self.consume()
        if tok == _ID:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(s: str) -> LabelSelector:
    """labels.Parse: `a=b,c!=d,e in (f,g),!h,i`; raises SelectorError with upstream's message."""
    if not s or not s.strip():
        return LabelSelector()
    return LabelSelector(_Parser(s).parse())


def selector_from_set(labels: dict[str, str] | None) -> LabelSelector:
    """labels.SelectorFromSet: every key must equal its value; empty matches everything."""
    return LabelSelector([Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items()])


_EXPR_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_label_selector(sel: dict | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, `{}` selects everything."""
    if sel is None:
        return LabelSelector.nothing()
    match_labels = sel.get("matchLabels") or {}
    exprs = sel.get("matchExpressions") or []
    if not match_labels and not exprs:
        return LabelSelector()
    reqs: list[Requirement] = []
    for k, v in match_labels.items():
        reqs.append(new_requirement(k, EQUALS, [v]))
    for expr in exprs:
        op = expr.get("operator")
        if op not in _EXPR_OPS:
            raise SelectorError(f'"{op}" is not a valid label selector operator')
        vals = list(expr.get("values") or [])
        reqs.append(new_requirement(expr.get("key", ""), _EXPR_OPS[op], vals))
    return LabelSelector(reqs)


def label_selector_to_string(sel: dict | None) -> str:
    """metav1.FormatLabelSelector-like rendering of a LabelSelector dict (`<none>` for None)."""
    if sel is None:
        return "<none>"
    s = selector_from_label_selector(sel).to_string()
    return s or "<none>"


# ---------------------------------------------------------------------------------------------
# Field selectors

@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" or "!="
    value: str

    def to_string(self) -> str:
        return f"{self.field}{'!=' if self.operator == NOT_EQUALS else '='}{_escape_field_value(self.value)}"


class FieldSelector:
    """An AND of `field=value` / `field!=value` terms (fields.Selector)."""

    __slots__ = ("requirements",)

    def __init__(self, requirements: list[FieldRequirement] | tuple[FieldRequirement, ...] = ()):
        self.requirements = tuple(requirements)

    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: dict[str, str]) -> bool:
        """A field absent from `fields` reads as "" (fields.Set.Get), so `spec.nodeName=` selects unbound pods."""
        for r in self.requirements:
            have = fields.get(r.field, "")
            if (have == r.value) != (r.operator == EQUALS):
                return False
        return True

    def requires_exact_match(self, field: str) -> str | None:
        for r in self.requirements:
            if r.field == field and r.operator == EQUALS:
                return r.value
        return None

    def validate_for(self, kind: str, group: str | None = None) -> FieldSelector:
        """Raise SelectorError for a label `kind` cannot select on; see validate_field_selector."""
        return validate_field_selector(kind, self, group)

    def to_string(self) -> str:
        return ",".join(r.to_string() for r in self.requirements)

    __str__ = to_string

    def __repr__(self) -> str:
        return f"FieldSelector({self.to_string()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldSelector) and self.requirements == other.requirements

    def __hash__(self) -> int:
        return hash(self.requirements)


def _escape_field_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(v: str) -> str:
    if "\\" not in v and "," not in v and "=" not in v:
        return v
    out: list[str] = []
    escaped = False
    for ch in v:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(s: str) -> list[str]:
    terms: list[str] = []
    start, escaped = 0, False
    for i, ch in enumerate(s):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(s[start:i])
            start = i + 1
    terms.append(s[start:])
    return terms


def parse_field_selector(s: str) -> FieldSelector:
    """fields.ParseSelector: comma-separated `f=v`, `f==v`, `f!=v` terms, sorted as upstream sorts them."""
    if not s:
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for part in sorted(_split_terms(s)):
        if not part:
            continue
        for i in range(len(part)):
            rest = part[i:]
            op = next((o for o in ("!=", "==", "=") if rest.startswith(o)), None)
            if op is not None:
                value = _unescape_field_value(part[i + len(op):])
                reqs.append(FieldRequirement(part[:i], NOT_EQUALS if op == "!=" else EQUALS, value))
                break
        else:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
    return FieldSelector(reqs)


def _get(obj: dict, *path: str) -> Any:
    cur: Any = obj
    for p in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def _s(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _pod_fields(obj: dict) -> dict[str, str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ips = status.get("podIPs") or []
    pod_ip = (ips[0].get("ip") if ips and isinstance(ips[0], dict) else None) or status.get("podIP")
    return {
        "spec.nodeName": _s(spec.get("nodeName")),
        "spec.restartPolicy": _s(spec.get("restartPolicy")),
        "spec.schedulerName": _s(spec.get("schedulerName")),
        "spec.serviceAccountName": _s(spec.get("serviceAccountName")),
        "spec.hostNetwork": "true" if spec.get("hostNetwork") else "false",
        "status.phase": _s(status.get("phase")),
        "status.podIP": _s(pod_ip),
        "status.nominatedNodeName": _s(status.get("nominatedNodeName")),
    }


def _event_fields(obj: dict) -> dict[str, str]:
    io = obj.get("involvedObject") or {}
    out = {f"involvedObject.{k}": _s(io.get(k)) for k in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    out["reason"] = _s(obj.get("reason"))
    out["reportingComponent"] = _s(obj.get("reportingComponent"))
    out["source"] = _s(_get(obj, "source", "component"))
    out["type"] = _s(obj.get("type"))
    return out


# (group, kind) -> (fields beyond metadata.*, accepted labels or None for metadata-only kinds,
# whether metadata.namespace is accepted). Mirrors the AddFieldLabelConversionFunc registrations.
_KIND_FIELDS: dict[tuple[str, str], Any] = {
    ("", "Pod"): _pod_fields,
    ("", "Event"): _event_fields,
    ("", "Secret"): lambda o: {"type": _s(o.get("type"))},
    ("", "Node"): lambda o: {"spec.unschedulable": "true" if _get(o, "spec", "unschedulable") else "false"},
    ("", "Namespace"): lambda o: {"status.phase": _s(_get(o, "status", "phase")),
                                  "name": _s(_get(o, "metadata", "name"))},
    ("", "ReplicationController"): lambda o: {"status.replicas": _s(_get(o, "status", "replicas") or 0)},
    ("", "Service"): lambda o: {"spec.clusterIP": _s(_get(o, "spec", "clusterIP")),
                                "spec.type": _s(_get(o, "spec", "type"))},
    ("apps", "ReplicaSet"): lambda o: {"status.replicas": _s(_get(o, "status", "replicas") or 0)},
    ("batch", "Job"): lambda o: {"status.successful": _s(_get(o, "status", "succeeded") or 0)},
    ("certificates.k8s.io", "CertificateSigningRequest"): lambda o: {
        "spec.signerName": _s(_get(o, "spec", "signerName"))},
}

# Labels each kind's conversion func accepts (the server rejects anything else with this text).
_ACCEPTED: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
                  "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                  "status.podIP", "status.podIPs", "status.nominatedNodeName", "spec.host"),
    ("", "Node"): ("metadata.name", "spec.unschedulable"),
    ("", "ReplicationController"): ("metadata.name", "metadata.namespace", "status.replicas"),
    ("", "Event"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                    "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                    "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
                    "metadata.namespace", "metadata.name"),
    ("", "Namespace"): ("status.phase", "metadata.name"),
    ("", "Secret"): ("type", "metadata.namespace", "metadata.name"),
    ("", "Service"): ("metadata.namespace", "metadata.name", "spec.clusterIP", "spec.type"),
    ("apps", "ReplicaSet"): ("metadata.name", "metadata.namespace", "status.replicas"),
    ("batch", "Job"): ("metadata.name", "metadata.namespace", "status.successful"),
    ("certificates.k8s.io", "CertificateSigningRequest"): ("metadata.name", "spec.signerName"),
}


def _split_kind(kind: str, group: str | None) -> tuple[str, str]:
    """Accept `Pod`, `pods`, `ReplicaSet`, `replicasets`; group is guessed for the few kinds that need it."""
    lowered = kind.lower()
    for g, k in _KIND_FIELDS:
        if lowered in (k.lower(), k.lower() + "s") or (k == "ReplicationController" and lowered == "rc"):
            if group is None or group == g:
                return g, k
    return group or "", kind


def object_fields(kind: str, obj: dict, group: str | None = None) -> dict[str, str]:
    """The selectable fields of an object (upstream's <Kind>ToSelectableFields), as strings."""
    g, k = _split_kind(kind, group)
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": _s(meta.get("name")), "metadata.namespace": _s(meta.get("namespace"))}
    fn = _KIND_FIELDS.get((g, k))
    if fn is not None:
        fields.update(fn(obj))
    return fields


def validate_field_selector(kind: str, selector: FieldSelector, group: str | None = None) -> FieldSelector:
    """The server's field-label conversion: reject labels the kind cannot select on, with upstream's text.

    Returns the selector with legacy labels converted (pods' `spec.host` -> `spec.nodeName`).
    """
    g, k = _split_kind(kind, group)
    accepted = _ACCEPTED.get((g, k))
    out: list[FieldRequirement] = []
    for r in selector.requirements:
        if accepted is not None:
            if r.field not in accepted:
                raise SelectorError(f"field label not supported: {r.field}")
            if (g, k) == ("", "Pod") and r.field == "spec.host":
                r = FieldRequirement("spec.nodeName", r.operator, r.value)
        elif r.field not in ("metadata.name", "metadata.namespace"):
            raise SelectorError(
                f'"{r.field}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        out.append(r)
    return FieldSelector(out)


def matches(obj: dict, kind: str, label_selector: LabelSelector | None = None,
            field_selector: FieldSelector | None = None, group: str | None = None) -> bool:
    """Both selectors against one object; what list/watch filtering asks of every candidate."""
    if label_selector is not None and not label_selector.matches_object(obj):
        return False
    if field_selector is not None and not field_selector.empty():
        return field_selector.matches(object_fields(kind, obj, group))
    return True
