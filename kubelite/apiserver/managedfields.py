"""Typed walks over plain JSON objects and structured-merge-diff field sets.

Mirrors sigs.k8s.io/structured-merge-diff as the API server uses it: a schema type model built
from the OpenAPI extensions (list-type map/set/atomic, map-type atomic, patch strategy/merge key),
field sets in the FieldsV1 shape (`f:name`, `k:{"name":"x"}`, `v:"x"`, `.`), ToFieldSet, Compare,
Merge and item removal. Shared by the strategic merge patch and by server-side apply.

A field set is a tree `dict[str, tree]`; the key "." marks that the path itself is a member, which
is exactly FieldsV1 except that FieldsV1 writes a member leaf as `{}`.
"""

from __future__ import annotations

from typing import Any

import orjson

from kubelite.api import schema as _schema

Tree = dict[str, Any]

SCALAR, STRUCT, MAP, LIST, UNTYPED = "scalar", "struct", "map", "list", "untyped"

# Struct fields that are Go values (not pointers) in upstream's types: always present (maybe
# empty) in a typed object, so their own path never comes or goes, only their contents.
VALUE_STRUCTS = frozenset({"metadata", "spec", "status", "template", "strategy", "updateStrategy", "jobTemplate"})

# List-map key fields whose schema default upstream uses when the item omits them.
_KEY_DEFAULTS = {"protocol": "TCP"}


class Type:
    """One node of the schema: what kind of value lives here and how it merges."""

    __slots__ = ("kind", "_props", "_elem_node", "_elem", "_fields", "list_type", "keys", "atomic",
                 "patch_strategies", "merge_key", "required")

    def __init__(self, kind: str):
        self.kind = kind
        self._props: dict[str, Any] = {}
        self._elem_node: dict | None = None
        self._elem: Type | None = None
        self._fields: dict[str, Type] = {}
        self.list_type = "atomic"
        self.keys: list[str] = []
        self.atomic = False
        self.patch_strategies: list[str] = []
        self.merge_key = ""
        self.required: frozenset[str] = frozenset()

    def field(self, name: str) -> Type | None:
        """The declared field `name` of a struct (None when not declared)."""
        if self.kind != STRUCT:
            return None
        t = self._fields.get(name)
        if t is None:
            node = self._props.get(name)
            if node is None:
                return None
            t = self._fields[name] = type_of_node(node)
        return t

    def elem(self) -> Type:
        """The type of map values / list items (untyped when the schema says nothing)."""
        if self.kind == UNTYPED:
            return UNTYPED_T
        if self._elem is None:
            self._elem = type_of_node(self._elem_node) if self._elem_node is not None else UNTYPED_T
        return self._elem

    def child(self, key: str) -> tuple[Type, bool]:
        """Type of the value under map key `key`, and whether it is a declared (named) field."""
        if self.kind == STRUCT:
            t = self.field(key)
            if t is not None:
                return t, True
            if self._elem_node is not None:
                return self.elem(), False
            return UNTYPED_T, False
        return self.elem(), False

    def is_map_like(self) -> bool:
        return self.kind in (STRUCT, MAP, UNTYPED)


UNTYPED_T = Type(UNTYPED)
_SCALAR_T = Type(SCALAR)
_cache: dict[int, tuple[dict, Type]] = {}


def _types_of(node: dict) -> set[str]:
    t = node.get("type")
    if isinstance(t, list):
        return {x for x in t if x != "null"}
    return {t} if isinstance(t, str) else set()


def type_of_node(node: dict) -> Type:
    """The Type for a schema node (a property schema, possibly a $ref with sibling extensions)."""
    hit = _cache.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    r = _schema.resolve(node)
    ext = {k: v for k, v in r.items() if k.startswith("x-kubernetes-")}
    ext.update({k: v for k, v in node.items() if k.startswith("x-kubernetes-")})
    strategies = [s for s in str(ext.get("x-kubernetes-patch-strategy", "")).split(",") if s]
    merge_key = ext.get("x-kubernetes-patch-merge-key", "") or ""
    types = _types_of(r)
    if "oneOf" in r or "anyOf" in r or ext.get("x-kubernetes-int-or-string"):
        t = Type(SCALAR)
    elif "array" in types or "items" in r:
        t = Type(LIST)
        t._elem_node = r.get("items") if isinstance(r.get("items"), dict) else None
        lt = ext.get("x-kubernetes-list-type")
        if lt in ("atomic", "set", "map"):
            t.list_type = lt
            t.keys = list(ext.get("x-kubernetes-list-map-keys") or ([merge_key] if merge_key else []))
        elif "merge" in strategies:
            t.list_type = "map" if merge_key else "set"
            t.keys = [merge_key] if merge_key else []
        if t.list_type == "map" and not t.keys:
            t.list_type = "atomic"
    elif isinstance(r.get("properties"), dict) and r["properties"]:
        t = Type(STRUCT)
        t._props = r["properties"]
        t.required = frozenset(r.get("required") or ())
        if isinstance(r.get("additionalProperties"), dict):
            t._elem_node = r["additionalProperties"]
        t.atomic = ext.get("x-kubernetes-map-type") == "atomic"
    elif isinstance(r.get("additionalProperties"), dict):
        t = Type(MAP)
        t._elem_node = r["additionalProperties"]
        t.atomic = ext.get("x-kubernetes-map-type") == "atomic"
    elif types & {"string", "integer", "number", "boolean"}:
        t = Type(SCALAR)
    else:
        t = Type(UNTYPED)
    if ext.get("x-kubernetes-preserve-unknown-fields") and t.kind in (MAP, UNTYPED):
        t = Type(UNTYPED)
    t.patch_strategies = strategies
    t.merge_key = merge_key
    _cache[id(node)] = (node, t)
    return t


_root_nodes: dict[str, dict] = {}


def root_type(definition: str | None) -> Type:
    """The Type of a whole object of the named definition; untyped when unknown (CRDs, "")."""
    if not definition or definition not in _schema.definitions():
        return UNTYPED_T
    node = _root_nodes.get(definition)
    if node is None:
        node = _root_nodes[definition] = {"$ref": _schema.REF_PREFIX + definition}
    return type_of_node(node)


# ---------------------------------------------------------------------------------------------
# Path elements


def _dumps(v: Any) -> str:
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


def item_pe(t: Type, item: Any, index: int) -> str:
    """The FieldsV1 path element naming list item `item` of a non-atomic list of type `t`."""
    if t.list_type == "map" and isinstance(item, dict):
        key = {}
        for k in t.keys:
            v = item.get(k)
            if v is None:
                v = _KEY_DEFAULTS.get(k)
                if v is None:
                    return f"i:{index}"
            key[k] = v
        return "k:" + _dumps(key)
    if t.list_type == "set":
        return "v:" + _dumps(item)
    return f"i:{index}"


def field_pe(name: str) -> str:
    return "f:" + name


def _go_value(v: Any) -> str:
    if isinstance(v, str):
        return orjson.dumps(v).decode()
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return _dumps(v) if isinstance(v, (dict, list)) else str(v)


def pe_string(pe: str) -> str:
    """Path element as fieldpath.PathElement.String(): `.name`, `[name="x"]`, `[="v"]`, `[0]`."""
    kind, rest = pe[0], pe[2:]
    if kind == "f":
        return "." + rest
    if kind == "k":
        key = orjson.loads(rest)
        return "[" + ",".join(f"{k}={_go_value(v)}" for k, v in key.items()) + "]"
    if kind == "v":
        return "[=" + _go_value(orjson.loads(rest)) + "]"
    return "[" + rest + "]"


def path_string(path: list[str]) -> str:
    return "".join(pe_string(p) for p in path)


_PE_ORDER = {"f": "0", "k": "1", "v": "2", "i": "3"}


def _pe_sort_key(pe: str) -> str:
    return _PE_ORDER.get(pe[0], "4") + pe


# ---------------------------------------------------------------------------------------------
# Set algebra on trees


# Trees are immutable values once built: set operations share unchanged subtrees instead of copying.


def union(a: Tree, b: Tree) -> Tree:
    """Members of either. b itself when a adds nothing to it, so that a manager whose write touched
    only fields it already owned keeps its encoded FieldsV1."""
    if not a:
        return b
    if not b:
        return a
    out: Tree | None = None
    for k, v in a.items():
        if k == ".":
            if "." not in b:
                if out is None:
                    out = dict(b)
                out["."] = {}
            continue
        bv = b.get(k)
        sub = v if bv is None else union(v, bv)
        if sub is not bv:
            if out is None:
                out = dict(b)
            out[k] = sub
    return b if out is None else out


def difference(a: Tree, b: Tree) -> Tree:
    """Members of a that are not members of b (children kept unless they are members of b). a itself
    when nothing is taken away, so that a manager's unchanged fields keep their encoded FieldsV1."""
    if not b:
        return a
    out: Tree = {}
    changed = False
    for k, v in a.items():
        if k == ".":
            if "." not in b:
                out["."] = {}
            else:
                changed = True
            continue
        sub = difference(v, b[k]) if k in b else v
        if sub:
            out[k] = sub
        changed = changed or sub is not v or not sub
    return out if changed else a


def intersection(a: Tree, b: Tree) -> Tree:
    out: Tree = {}
    for k, v in a.items():
        if k not in b:
            continue
        if k == ".":
            out["."] = {}
            continue
        sub = intersection(v, b[k])
        if sub:
            out[k] = sub
    return out


def copy_tree(a: Tree) -> Tree:
    return {k: copy_tree(v) for k, v in a.items()}


def remove_prefix(a: Tree, prefix: list[str]) -> Tree:
    """a without the whole subtree at `prefix` (how ignored/reset fields are filtered)."""
    if not prefix or prefix[0] not in a:
        return a
    out = dict(a)
    if len(prefix) == 1:
        del out[prefix[0]]
    else:
        sub = remove_prefix(out[prefix[0]], prefix[1:])
        if sub:
            out[prefix[0]] = sub
        else:
            del out[prefix[0]]
    return out


def iterate_paths(a: Tree, prefix: list[str] | None = None) -> list[list[str]]:
    """Member paths in fieldpath.Set.Iterate order: this level's members, then children."""
    prefix = prefix or []
    out: list[list[str]] = []
    keys = sorted((k for k in a if k != "."), key=_pe_sort_key)
    for k in keys:
        if "." in a[k]:
            out.append(prefix + [k])
    for k in keys:
        out.extend(iterate_paths(a[k], prefix + [k]))
    return out


def ensure_named_fields(a: Tree, t: Type) -> Tree:
    """EnsureNamedFieldsAreMembers: struct fields that have owned children become members too."""
    out: Tree = {}
    for k, v in a.items():
        if k == ".":
            out["."] = {}
            continue
        if k.startswith("f:"):
            ct, named = t.child(k[2:]) if t.is_map_like() else (UNTYPED_T, False)
        else:
            ct, named = (t.elem() if t.kind == LIST else UNTYPED_T), False
        sub = ensure_named_fields(v, ct)
        if named and t.kind == STRUCT and sub:
            sub["."] = {}
        out[k] = sub
    return out


def to_fields_v1(a: Tree) -> dict:
    """Tree -> FieldsV1 JSON (sorted as upstream serializes, "." first)."""
    out: dict = {}
    for k in sorted((k for k in a if k != "."), key=_pe_sort_key):
        child = a[k]
        sub = to_fields_v1(child)
        if "." in child and sub:
            sub = {".": {}, **sub}
        out[k] = sub
    return out


def from_fields_v1(f: dict) -> Tree:
    out: Tree = {}
    for k, v in (f or {}).items():
        if k == ".":
            out["."] = {}
        elif not v:
            out[k] = {".": {}}
        else:
            out[k] = from_fields_v1(v)
    return out


# ---------------------------------------------------------------------------------------------
# Typed walks over values


def _is_atomic(t: Type, v: Any) -> bool:
    """Whether v is a leaf at type t (scalar, atomic list/map, untyped list, or a shape mismatch)."""
    if isinstance(v, dict):
        return not t.is_map_like() or t.atomic
    if isinstance(v, list):
        return t.kind != LIST or t.list_type == "atomic"
    return True


def index_list(t: Type, items: list) -> tuple[list[str], dict[str, Any]]:
    pes = [item_pe(t, it, i) for i, it in enumerate(items)]
    return pes, dict(zip(pes, items, strict=True))


def to_field_set(v: Any, t: Type) -> Tree:
    """ToFieldSet of an applied configuration (children of v; the root itself is not a member)."""
    out: Tree = {}
    if _is_atomic(t, v):
        return out
    if isinstance(v, dict):
        for key, val in v.items():
            ct, named = t.child(key)
            sub = to_field_set(val, ct) if val is not None else {}
            if val is None or _is_atomic(ct, val) or (isinstance(val, dict) and not val) or not named:
                sub["."] = {}
            if sub:
                out["f:" + key] = sub
    else:
        et = t.elem()
        for i, item in enumerate(v):
            sub = to_field_set(item, et)
            sub["."] = {}
            out[item_pe(t, item, i)] = sub
    return out


def _all_paths(v: Any, t: Type) -> Tree:
    """Every path of a value that exists on one side only (member at each structural node)."""
    node: Tree = {".": {}}
    if _is_atomic(t, v):
        return node
    if isinstance(v, dict):
        for key, val in v.items():
            if val is not None:
                node["f:" + key] = _all_paths(val, t.child(key)[0])
    else:
        et = t.elem()
        for i, item in enumerate(v):
            node[item_pe(t, item, i)] = _all_paths(item, et)
    return node


def values_equal(a: Any, b: Any) -> bool:
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def compare(old: Any, new: Any, t: Type, skip: frozenset[str] = frozenset()) -> tuple[Tree, Tree, Tree]:
    """typed.Compare: (added, modified, removed) paths going from old to new. `skip` names top-level
    fields left out (a caller that drops their paths anyway, e.g. spec on a status write, saves the walk)."""
    added: Tree = {}
    modified: Tree = {}
    removed: Tree = {}
    if skip and isinstance(old, dict) and isinstance(new, dict):
        old = {k: v for k, v in old.items() if k not in skip}
        new = {k: v for k, v in new.items() if k not in skip}
    _compare(old, new, t, added, modified, removed)
    return added, modified, removed


def _compare(a: Any, b: Any, t: Type, add: Tree, mod: Tree, rem: Tree) -> None:
    if isinstance(a, dict) and isinstance(b, dict) and not _is_atomic(t, a) and not _is_atomic(t, b):
        for key in a.keys() | b.keys():
            va, vb = a.get(key), b.get(key)
            if va is None and vb is None:
                continue
            ct = t.child(key)[0]
            implicit = key in t.required or (key in VALUE_STRUCTS and ct.kind == STRUCT)
            _compare_child("f:" + key, va, vb, ct, add, mod, rem, implicit)
        return
    if isinstance(a, list) and isinstance(b, list) and not _is_atomic(t, a):
        et = t.elem()
        pa, ma = index_list(t, a)
        pb, mb = index_list(t, b)
        for pe in pa:
            if pe not in mb:
                rem[pe] = _all_paths(ma[pe], et)
        for pe in pb:
            if pe in ma:
                _compare_child(pe, ma[pe], mb[pe], et, add, mod, rem)
            else:
                add[pe] = _all_paths(mb[pe], et)
        return


def _compare_child(pe: str, va: Any, vb: Any, ct: Type, add: Tree, mod: Tree, rem: Tree,
                   required: bool = False) -> None:
    # A required (non-omitempty) field or a value struct is null/empty, never absent, in upstream's
    # typed objects: only its contents come and go, not the field itself.
    if va is None:
        add[pe] = _all_paths(vb, ct)
        if required and not _is_atomic(ct, vb) and len(add[pe]) > 1:
            del add[pe]["."]
    elif vb is None:
        rem[pe] = _all_paths(va, ct)
        if required and not _is_atomic(ct, va) and len(rem[pe]) > 1:
            del rem[pe]["."]
    elif _is_atomic(ct, va) or _is_atomic(ct, vb) or type(va) is not type(vb):
        if not values_equal(va, vb):
            mod[pe] = {".": {}}
    else:
        sa: Tree = {}
        sm: Tree = {}
        sr: Tree = {}
        _compare(va, vb, ct, sa, sm, sr)
        if sa:
            add[pe] = sa
        if sm:
            mod[pe] = sm
        if sr:
            rem[pe] = sr


def clean(v: Any) -> Any:
    """Deep copy of a JSON value without null map entries (an absent field)."""
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [clean(x) for x in v]
    return v


def merge(lhs: Any, rhs: Any, t: Type) -> Any:
    """typed.Merge: rhs (an applied configuration) merged over lhs (the live object)."""
    if lhs is None:
        return clean(rhs)
    if isinstance(lhs, dict) and isinstance(rhs, dict) and not _is_atomic(t, rhs):
        out = dict(lhs)
        for key, rv in rhs.items():
            if rv is None:
                out.pop(key, None)
                continue
            out[key] = merge(lhs.get(key), rv, t.child(key)[0])
        return out
    if isinstance(lhs, list) and isinstance(rhs, list) and not _is_atomic(t, rhs):
        return _merge_list(lhs, rhs, t)
    return clean(rhs)


def _merge_list(lhs: list, rhs: list, t: Type) -> list:
    """Merge associative lists keeping live-only items in place and applied items in applied order."""
    et = t.elem()
    lpes, lmap = index_list(t, lhs)
    rpes, rmap = index_list(t, rhs)
    shared = [pe for pe in rpes if pe in lmap]
    shared.reverse()
    next_shared = shared.pop() if shared else None
    merged_rhs: set[str] = set()
    out: list = []
    li = ri = 0
    while li < len(lpes) or ri < len(rpes):
        if li < len(lpes) and ri < len(rpes):
            pe = lpes[li]
            if pe == rpes[ri]:
                merged_rhs.add(pe)
                out.append(merge(lmap.get(pe), rmap[pe], et))
                li += 1
                ri += 1
                next_shared = shared.pop() if shared else None
                continue
            if pe in rmap and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lpes):
            pe = lpes[li]
            if pe not in rmap:
                out.append(lhs[li])
                li += 1
                continue
            if pe in merged_rhs:
                li += 1
                continue
        if ri < len(rpes):
            pe = rpes[ri]
            merged_rhs.add(pe)
            out.append(merge(lmap.get(pe), rmap[pe], et))
            ri += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop() if shared else None
    return out


def remove_items(v: Any, paths: Tree, t: Type) -> Any:
    """A copy of v without the member paths of `paths` (each with its whole subtree)."""
    if not paths or _is_atomic(t, v):
        return v
    if isinstance(v, dict):
        out = {}
        for key, val in v.items():
            sub = paths.get("f:" + key)
            if sub is None:
                out[key] = val
            elif "." in sub:
                continue
            else:
                out[key] = remove_items(val, sub, t.child(key)[0])
        return out
    if isinstance(v, list):
        et = t.elem()
        out_l = []
        for i, item in enumerate(v):
            sub = paths.get(item_pe(t, item, i))
            if sub is None:
                out_l.append(item)
            elif "." not in sub:
                out_l.append(remove_items(item, sub, et))
        return out_l
    return v
