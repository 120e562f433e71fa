"""PolicyRule matching and coverage, as upstream's rbac `RuleAllows` and `validation.Covers`.

Rules are plain dicts (`verbs`, `apiGroups`, `resources`, `resourceNames`, `nonResourceURLs`).
"""

from __future__ import annotations

from typing import Any

from kubelite.apiserver.auth import RequestAttributes

Rule = dict[str, Any]


def _has(items: list[str] | None, value: str) -> bool:
    return bool(items) and value in items  # type: ignore[operator]


def verb_matches(rule: Rule, verb: str) -> bool:
    verbs = rule.get("verbs") or ()
    return "*" in verbs or verb in verbs


def api_group_matches(rule: Rule, group: str) -> bool:
    groups = rule.get("apiGroups") or ()
    return "*" in groups or group in groups


def resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    """`*`, the exact `resource/subresource`, or `*/subresource`."""
    for r in rule.get("resources") or ():
        if r == "*" or r == combined:
            return True
        if subresource and len(r) == len(subresource) + 2 and r.startswith("*/") and r.endswith(subresource):
            return True
    return False


def resource_name_matches(rule: Rule, name: str) -> bool:
    names = rule.get("resourceNames") or ()
    return not names or name in names


def non_resource_url_matches(rule: Rule, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or ():
        if url == "*" or url == path or (url.endswith("*") and path.startswith(url.rstrip("*"))):
            return True
    return False


def rule_allows(attrs: RequestAttributes, rule: Rule) -> bool:
    if attrs.resource_request:
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        return (verb_matches(rule, attrs.verb) and api_group_matches(rule, attrs.api_group)
                and resource_matches(rule, combined, attrs.subresource)
                and resource_name_matches(rule, attrs.name))
    return verb_matches(rule, attrs.verb) and non_resource_url_matches(rule, attrs.path)


# ---- coverage (escalation prevention) ------------------------------------------------------------

def breakdown(rule: Rule) -> list[Rule]:
    """One rule per (group, resource, verb[, name]) and per (url, verb): upstream's BreakdownRule."""
    out: list[Rule] = []
    names = rule.get("resourceNames") or []
    for group in rule.get("apiGroups") or []:
        for resource in rule.get("resources") or []:
            for verb in rule.get("verbs") or []:
                if names:
                    out.extend({"apiGroups": [group], "resources": [resource], "verbs": [verb],
                                "resourceNames": [n]} for n in names)
                else:
                    out.append({"apiGroups": [group], "resources": [resource], "verbs": [verb]})
    for url in rule.get("nonResourceURLs") or []:
        for verb in rule.get("verbs") or []:
            out.append({"nonResourceURLs": [url], "verbs": [verb]})
    return out


def _has_all(owner: list[str], wanted: list[str]) -> bool:
    return all(w in owner for w in wanted)


def _resources_cover(owner: list[str], wanted: list[str]) -> bool:
    if "*" in owner or _has_all(owner, wanted):
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path or "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def _urls_cover(owner: list[str], wanted: list[str]) -> bool:
    return all(any(o == w or (o.endswith("*") and w.startswith(o.rstrip("*"))) for o in owner) for w in wanted)


def rule_covers(owner: Rule, sub: Rule) -> bool:
    ov, og = owner.get("verbs") or [], owner.get("apiGroups") or []
    onames, snames = owner.get("resourceNames") or [], sub.get("resourceNames") or []
    return (("*" in ov or _has_all(ov, sub.get("verbs") or []))
            and ("*" in og or _has_all(og, sub.get("apiGroups") or []))
            and _resources_cover(owner.get("resources") or [], sub.get("resources") or [])
            and _urls_cover(owner.get("nonResourceURLs") or [], sub.get("nonResourceURLs") or [])
            and (not onames if not snames else (not onames or _has_all(onames, snames))))


def covers(owner_rules: list[Rule], requested: list[Rule]) -> tuple[bool, list[Rule]]:
    """Whether owner_rules cover every atomic piece of requested, and the pieces they miss."""
    missing = [sub for rule in requested for sub in breakdown(rule)
               if not any(rule_covers(o, sub) for o in owner_rules)]
    return not missing, missing


def compact(rules: list[Rule]) -> list[Rule]:
    """Merge simple one-group/one-resource rules that differ only in verbs (upstream's CompactRules)."""
    merged: dict[tuple[str, str], Rule] = {}
    out: list[Rule] = []
    for r in rules:
        groups, resources = r.get("apiGroups") or [], r.get("resources") or []
        simple = (len(groups) == 1 and len(resources) == 1 and not r.get("resourceNames")
                  and not r.get("nonResourceURLs"))
        if not simple:
            out.append(r)
            continue
        key = (groups[0], resources[0])
        if key in merged:
            merged[key]["verbs"].extend(v for v in r.get("verbs") or [] if v not in merged[key]["verbs"])
        else:
            merged[key] = {"apiGroups": list(groups), "resources": list(resources), "verbs": list(r.get("verbs") or [])}
            out.append(merged[key])
    return out


def go_quote_list(items: list[str]) -> str:
    """Go's %q of a []string: `["a" "b"]`."""
    import json

    return "[" + " ".join(json.dumps(i) for i in items) + "]"


def compact_string(rule: Rule) -> str:
    """Upstream's rbacv1helpers.CompactString: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`."""
    parts = []
    for label, key in (("APIGroups", "apiGroups"), ("Resources", "resources"),
                       ("NonResourceURLs", "nonResourceURLs"), ("ResourceNames", "resourceNames"),
                       ("Verbs", "verbs")):
        if rule.get(key):
            parts.append(f"{label}:{go_quote_list(rule[key])}")
    return "{" + ", ".join(parts) + "}"
