"""Server-side apply and managedFields bookkeeping, as upstream's fieldmanager does it.

`server_side_apply` mirrors structured-merge-diff's Updater.Apply wrapped by the API server's field
manager chain (version check, last-applied upgrade for the "kubectl" manager, before-first-apply,
strip of untracked metadata); `update_managed_fields` mirrors Updater.Update for every non-apply
write (create/update/patch), so ownership reads like upstream's in `--show-managed-fields`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import orjson

from kubelite.api.errors import StatusError
from kubelite.apiserver import managedfields as mf

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
FIELD_MANAGER_MAX_LENGTH = 128

# Paths the API server never tracks (stripmeta.go): removed as members only.
_STRIP: mf.Tree = {
    "f:apiVersion": {".": {}},
    "f:kind": {".": {}},
    "f:metadata": {
        ".": {},
        **{f"f:{n}": {".": {}} for n in (
            "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
            "generation", "managedFields", "resourceVersion")},
    },
}



def manager_from_user_agent(ua: str) -> str:
    """prefixFromUserAgent: the part before the first "/", printable runes only, at most 128 bytes."""
    out = []
    size = 0
    for ch in (ua or "").split("/")[0]:
        if not ch.isprintable():  # unicode.IsPrint: graphic runes and the ASCII space
            continue
        n = len(ch.encode())
        if size + n > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(ch)
        size += n
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# managedFields entries <-> managers


class _Manager:
    __slots__ = ("manager", "operation", "api_version", "subresource", "time", "fields", "_raw")

    def __init__(self, manager: str, operation: str, api_version: str, subresource: str,
                 time: str | None, fields: mf.Tree, raw: dict | None = None):
        self.manager = manager
        self.operation = operation
        self.api_version = api_version
        self.subresource = subresource
        self.time = time
        self.fields = fields
        self._raw = (fields, raw) if raw is not None else None  # the FieldsV1 these fields came from

    @property
    def ident(self) -> tuple[str, str, str, str]:
        # BuildManagerIdentifier: appliers are not keyed by apiVersion
        api = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, api, self.subresource)

    def printed(self) -> str:
        """printManager: `"name"`, `"name" with subresource "s"`, `... using apps/v1` for updaters."""
        s = orjson.dumps(self.manager).decode()
        if self.subresource:
            s += f' with subresource {orjson.dumps(self.subresource).decode()}'
        if self.operation == "Update":
            s += f" using {self.api_version}"
        return s

    def entry(self) -> dict:
        e: dict[str, Any] = {"manager": self.manager, "operation": self.operation,
                             "apiVersion": self.api_version}
        if self.time:
            e["time"] = self.time
        e["fieldsType"] = "FieldsV1"
        unchanged = self._raw is not None and self._raw[0] is self.fields
        e["fieldsV1"] = self._raw[1] if unchanged else mf.to_fields_v1(self.fields)
        if self.subresource:
            e["subresource"] = self.subresource
        return e


_DECODED: dict[bytes, mf.Tree] = {}  # FieldsV1 -> Tree; trees are never mutated, so they are shared


def _fields_of(raw: dict) -> mf.Tree:
    """from_fields_v1, memoized: the same managedFields come back on every write of an object."""
    key = orjson.dumps(raw)
    tree = _DECODED.get(key)
    if tree is None:
        if len(_DECODED) >= 4096:
            _DECODED.clear()
        tree = _DECODED[key] = mf.from_fields_v1(raw)
    return tree


def _decode(entries: Any) -> dict[tuple, _Manager]:
    out: dict[tuple, _Manager] = {}
    if not isinstance(entries, list):
        return out
    for e in entries:
        if not isinstance(e, dict) or not e:
            continue
        raw = e.get("fieldsV1") or {}
        m = _Manager(str(e.get("manager", "")), str(e.get("operation", "")), str(e.get("apiVersion", "")),
                     str(e.get("subresource", "") or ""), e.get("time"), _fields_of(raw), raw)
        prev = out.get(m.ident)
        if prev is not None:
            m.fields = mf.union(prev.fields, m.fields)
        out[m.ident] = m
    return out


def _encode(obj: dict, managers: dict[tuple, _Manager]) -> None:
    """Write managedFields sorted as upstream: operation, time, manager, apiVersion, subresource."""
    live = [m for m in managers.values() if m.fields]
    live.sort(key=lambda m: (m.operation, m.time or "", m.manager, m.api_version, m.subresource))
    meta = obj.setdefault("metadata", {})
    if live:
        meta["managedFields"] = [m.entry() for m in live]
    else:
        meta.pop("managedFields", None)


def _ignored(t: mf.Type, subresource: str) -> list[list[str]]:
    """Reset fields: status for the main resource, spec for the status subresource."""
    if t.kind != mf.STRUCT:
        return []
    if subresource == "status":
        return [["f:spec"]] if t.field("spec") is not None else []
    return [["f:status"]] if t.field("status") is not None else []


def _filter(tree: mf.Tree, ignored: list[list[str]]) -> mf.Tree:
    for p in ignored:
        tree = mf.remove_prefix(tree, p)
    return tree


def _without_managed_fields(obj: dict | None) -> dict | None:
    if obj is None:
        return None
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return obj


@functools.cache
def _zero_object(t: mf.Type) -> dict:
    """The shape of upstream's empty object of the kind: its value-struct fields, empty (shared: read only)."""
    out: dict = {}
    if t.kind != mf.STRUCT:
        return out
    for name in sorted(mf.VALUE_STRUCTS):
        ft = t.field(name)
        if ft is not None and ft.kind == mf.STRUCT and not ft.atomic:
            out[name] = _zero_object(ft)
    return out


def _update(managers: dict[tuple, _Manager], old: Any, new: Any, t: mf.Type, skip: tuple | None,
            force: bool, ignored: list[list[str]]) -> tuple[mf.Tree, mf.Tree, mf.Tree, dict[tuple, mf.Tree]]:
    """Updater.update: take changed fields from other managers; conflicts when not forced."""
    unwalked = frozenset(p[0][2:] for p in ignored if len(p) == 1)  # whole top-level fields, dropped below anyway
    added, modified, removed = mf.compare(old, new, t, unwalked)
    added, modified, removed = (_filter(x, ignored) for x in (added, modified, removed))
    changed = mf.union(modified, added)
    conflicts: dict[tuple, mf.Tree] = {}
    for ident, m in managers.items():
        if ident == skip:
            continue
        c = mf.intersection(m.fields, changed)
        if c:
            conflicts[ident] = c
    if conflicts and not force:
        return added, modified, removed, conflicts
    for ident, c in conflicts.items():
        managers[ident].fields = mf.difference(managers[ident].fields, c)
    if removed:
        for ident, m in managers.items():
            if ident != skip:
                m.fields = mf.difference(m.fields, removed)
    for ident in [i for i, m in managers.items() if not m.fields and i != skip]:
        del managers[ident]
    return added, modified, removed, {}


def _conflict_error(managers: dict[tuple, _Manager], conflicts: dict[tuple, mf.Tree]) -> StatusError:
    items: list[tuple[str, str]] = []
    for ident in sorted(conflicts, key=lambda i: managers[i].printed()):
        who = managers[ident].printed()
        for path in mf.iterate_paths(conflicts[ident]):
            items.append((who, mf.path_string(path)))
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {who}", "field": p} for who, p in items]
    if len(items) == 1:
        msg = f"Apply failed with 1 conflict: conflict with {items[0][0]}: {items[0][1]}"
    else:
        lines: list[str] = []
        last = None
        for who, p in items:
            if who != last:
                lines.append(f"conflicts with {who}:")
                last = who
            lines.append(f"- {p}")
        msg = f"Apply failed with {len(items)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", msg, {"causes": causes})


# ---------------------------------------------------------------------------------------------
# Update (create / update / patch)


def update_managed_fields(old: dict | None, new: dict, manager: str, operation: str, definition: str,
                          api_version: str, now: str, subresource: str = "") -> None:
    """Record in new.metadata.managedFields the fields `manager` changed going from old to new.

    Call it on the final object (after defaulting, before storing). Fields that changed are taken
    from every other manager; removed fields are dropped from everyone. As upstream: managedFields
    sent by the client are honoured (`[]` resets them), an existing object without managedFields
    stays untracked, and the manager's time moves only when it changed something.
    """
    t = mf.root_type(definition)
    meta = new.setdefault("metadata", {})
    sent = meta.get("managedFields")
    old_entries = (old or {}).get("metadata", {}).get("managedFields")
    if subresource:
        managers = _decode(old_entries)
    elif sent is not None and (sent == [] or sent == [{}]):
        managers = {}
    else:
        managers = _decode(sent)
        if not managers:
            managers = _decode(old_entries)
    meta.pop("managedFields", None)
    if not managers and old is not None and (old.get("metadata") or {}).get("uid"):
        return  # skipNonAppliedManager: an existing untracked object stays untracked
    old_v = _without_managed_fields(old) if old is not None else _zero_object(t)
    ignored = _ignored(t, subresource)
    me = _Manager(manager, operation, api_version, subresource, now, {})
    current = ("\0current-operation", operation, api_version, subresource)
    added, modified, removed, _ = _update(managers, old_v, new, t, current, True, ignored)
    cur = mf.union(modified, added)
    cur = _filter(mf.difference(cur, _STRIP), ignored)
    prev = managers.get(me.ident)
    if cur:
        me.fields = mf.union(cur, prev.fields) if prev else cur
        if prev is not None and me.fields is prev.fields:
            me._raw = prev._raw  # the same fields: their FieldsV1 need not be encoded again
        managers[me.ident] = me
    _encode(new, managers)


# ---------------------------------------------------------------------------------------------
# Apply


def _gvk_string(api_version: str, kind: str) -> str:
    gv = api_version if "/" in api_version else "/" + api_version
    return f"{gv}, Kind={kind}"


def server_side_apply(live: dict | None, applied: dict, manager: str, force: bool, definition: str,
                      api_version: str, now: str, subresource: str = "") -> dict:
    """Apply `applied` (an apply configuration) for `manager` over `live` (None: create).

    Returns the new object with managedFields; raises StatusError 409 Conflict when another
    manager owns a field the configuration changes (unless force), 400 for a wrong kind/version
    or managedFields in the configuration.
    """
    t = mf.root_type(definition)
    kind = live.get("kind") if live else None
    kind = kind or _definition_kind(definition) or applied.get("kind", "")
    if applied.get("apiVersion") != api_version or applied.get("kind") != kind:
        raise StatusError(400, "BadRequest", "invalid object type: "
                          + _gvk_string(str(applied.get("apiVersion") or ""), str(applied.get("kind") or "")))
    if (applied.get("metadata") or {}).get("managedFields") is not None:
        raise StatusError(400, "BadRequest", "metadata.managedFields must be nil")
    managers = _decode((live or {}).get("metadata", {}).get("managedFields"))
    live_v = _without_managed_fields(live) if live is not None else {}
    ignored = _ignored(t, subresource)
    if live is not None and not managers:
        # skipNonAppliedManager: ownership of what exists goes to "before-first-apply"
        bfa = _Manager("before-first-apply", "Update", api_version, subresource, now, {})
        added, modified, _ = mf.compare(_zero_object(t), live_v, t)
        bfa.fields = _filter(mf.difference(mf.union(modified, added), _STRIP), ignored)
        if bfa.fields:
            managers[bfa.ident] = bfa
    try:
        result, managers = _apply(live_v, applied, manager, force, t, managers, api_version, now, subresource, ignored)
    except _Conflicts as c:
        if manager != "kubectl" or force:
            raise _conflict_error(c.managers, c.conflicts) from None
        allowed = _allowed_from_last_applied(live_v, t)
        rest = {i: mf.difference(s, allowed) for i, s in c.conflicts.items()}
        rest = {i: s for i, s in rest.items() if s}
        if rest:
            raise _conflict_error(c.managers, rest) from None
        managers = c.original
        result, managers = _apply(live_v, applied, manager, True, t, managers, api_version, now, subresource, ignored)
    if manager == "kubectl" and LAST_APPLIED in ((result.get("metadata") or {}).get("annotations") or {}):
        # lastAppliedUpdater: keep the client-side apply annotation in step with server-side apply
        cfg = copy.deepcopy(applied)
        anns = (cfg.get("metadata") or {}).get("annotations")
        if isinstance(anns, dict):
            anns.pop(LAST_APPLIED, None)
            if not anns:
                cfg["metadata"].pop("annotations")
        result.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = orjson.dumps(cfg).decode()
    _encode(result, managers)
    return result


class _Conflicts(Exception):
    def __init__(self, managers: dict, conflicts: dict, original: dict):
        super().__init__("conflicts")
        self.managers = managers
        self.conflicts = conflicts
        self.original = original


def _definition_kind(definition: str) -> str:
    from kubelite.api import schema

    d = schema.definitions().get(definition or "") or {}
    gvks = d.get("x-kubernetes-group-version-kind") or []
    return gvks[0].get("kind", "") if gvks else ""


def _apply(live: dict, applied: dict, manager: str, force: bool, t: mf.Type, managers: dict[tuple, _Manager],
           api_version: str, now: str, subresource: str, ignored: list[list[str]]) -> tuple[dict, dict]:
    original = {i: _Manager(m.manager, m.operation, m.api_version, m.subresource, m.time, m.fields)
                for i, m in managers.items()}
    merged = mf.merge(live, applied, t)
    new_set = _filter(mf.to_field_set(applied, t), ignored)
    me = _Manager(manager, "Apply", api_version, subresource, now, new_set)
    last = managers.get(me.ident)
    managers[me.ident] = me
    if last is not None and last.fields:
        merged = _prune(merged, t, managers, last.fields)
    _, _, _, conflicts = _update(managers, live, merged, t, me.ident, force, ignored)
    if conflicts:
        raise _Conflicts(managers, conflicts, original)
    me.fields = mf.difference(me.fields, _STRIP)
    if not me.fields:
        del managers[me.ident]
    return merged, managers


def _prune(merged: dict, t: mf.Type, managers: dict[tuple, _Manager], last: mf.Tree) -> dict:
    """Remove what this applier owned last time, no longer applies, and nobody else owns."""
    owned: mf.Tree = {}
    for m in managers.values():
        owned = mf.union(owned, m.fields)
    owned = mf.ensure_named_fields(owned, t)
    last = mf.ensure_named_fields(last, t)
    return mf.remove_items(merged, _to_remove(last, owned), t)


def _to_remove(last: mf.Tree, owned: mf.Tree) -> mf.Tree:
    out: mf.Tree = {}
    for k, v in last.items():
        if k == ".":
            continue
        o = owned.get(k)
        if "." in v and (o is None or "." not in o):
            out[k] = {".": {}}
        elif o is not None:
            sub = _to_remove(v, o)
            if sub:
                out[k] = sub
        else:
            sub = _to_remove(v, {})
            if sub:
                out[k] = sub
    return out


def _allowed_from_last_applied(live: dict, t: mf.Type) -> mf.Tree:
    """Fields of the client-side last-applied configuration whose live value still matches it."""
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not raw:
        return {}
    try:
        last = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(last, dict):
        return {}
    fields = mf.to_field_set(last, t)
    _, modified, _ = mf.compare(last, live, t)
    return mf.difference(fields, modified)
