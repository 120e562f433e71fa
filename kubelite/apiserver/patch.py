"""PATCH bodies applied to plain JSON objects: JSON patch, merge patch and strategic merge patch.

Mirrors the API server's patch handler (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/
patch.go): JSON patch with evanphx/json-patch v4 semantics, RFC 7386 merge patch, and
apimachinery's strategicpatch driven by the schema's patch strategies and merge keys. Errors are
the StatusErrors upstream answers with. Server-side apply lives in apply.py.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from kubelite.api.errors import StatusError, new_bad_request, new_unsupported_media_type
from kubelite.apiserver import managedfields as mf

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

MAX_JSON_PATCH_OPERATIONS = 10000

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"


def _internal(message: str) -> StatusError:
    """A plain Go error surfacing from the handler: 500 with an empty reason and the bare text."""
    return StatusError(500, "", message)


def _invalid_request(detail: str) -> StatusError:
    """NewGenericServerResponse(422, ...): the detail is not sent, as upstream."""
    err = StatusError(422, "Invalid", "the server rejected our request due to an error in our request", {})
    err.detail = detail  # type: ignore[attr-defined]
    return err


def go_json_error(body: bytes) -> str:
    """An encoding/json style message for an unparsable body."""
    text = body.decode("utf-8", "replace")
    if not text.strip():
        return "unexpected end of JSON input"
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as e:
        pos = getattr(e, "pos", None)
        if pos is None or pos >= len(text.rstrip()):
            return "unexpected end of JSON input"
        ch = text[pos]
        where = "looking for beginning of value" if pos == 0 or text[pos - 1] in "[:," else "after top-level value"
        if pos > 0 and text[:pos].rstrip().endswith(("{", ",")) and ch != '"':
            where = "looking for beginning of object key string"
        return f"invalid character {_go_quote_char(ch)} {where}"
    return "invalid JSON"


def _go_quote_char(ch: str) -> str:
    return "'\\''" if ch == "'" else f"'{ch}'"


def _go_repr(v: Any) -> str:
    """fmt's %v of a decoded JSON value (maps print as map[k:v ...] with sorted keys)."""
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_go_repr(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_go_repr(x) for x in v) + "]"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _go_type(v: Any) -> str:
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if v is None:
        return "null"
    return "number"


# ---------------------------------------------------------------------------------------------
# RFC 6902 JSON patch


class _JSONPatchError(Exception):
    pass


def _decode_key(k: str) -> str:
    return k.replace("~1", "/").replace("~0", "~")


def _atoi(key: str) -> int:
    s = key[1:] if key[:1] in "+-" else key
    if not s.isdigit() or not s.isascii():
        raise _JSONPatchError(f'strconv.Atoi: parsing "{key}": invalid syntax')
    return int(key)


def _find(doc: Any, path: str) -> tuple[Any, str] | None:
    """findObject: the container holding the last token of `path`, and that token."""
    split = path.split("/")
    if len(split) < 2:
        return None
    con = doc
    for part in split[1:-1]:
        part = _decode_key(part)
        if isinstance(con, dict):
            nxt = con.get(part)
        else:
            try:
                i = _atoi(part)
            except _JSONPatchError:
                return None
            if i < 0 or i >= len(con):
                return None
            nxt = con[i]
        if not isinstance(nxt, (dict, list)):
            return None
        con = nxt
    return con, _decode_key(split[-1])


def _get(con: Any, key: str) -> Any:
    if isinstance(con, dict):
        return con.get(key)
    i = _atoi(key)
    if i < 0 or i >= len(con):
        raise _JSONPatchError(f"Unable to access invalid index: {i}: invalid index referenced")
    return con[i]


def _add(con: Any, key: str, val: Any) -> None:
    if isinstance(con, dict):
        con[key] = val
        return
    if key == "-":
        con.append(val)
        return
    try:
        i = _atoi(key)
    except _JSONPatchError as e:
        raise _JSONPatchError(f"value was not a proper array index: '{key}': {e}") from None
    size = len(con) + 1
    if i >= size or i < -size:
        raise _JSONPatchError(f"Unable to access invalid index: {i}: invalid index referenced")
    if i < 0:
        i += size
    con.insert(i, val)


def _remove(con: Any, key: str) -> None:
    if isinstance(con, dict):
        if key not in con:
            raise _JSONPatchError(f"Unable to remove nonexistent key: {key}: missing value")
        del con[key]
        return
    i = _atoi(key)
    if i >= len(con) or i < -len(con):
        raise _JSONPatchError(f"Unable to access invalid index: {i}: invalid index referenced")
    del con[i]


def _op_str(op: dict, name: str, what: str) -> str:
    v = op.get(name)
    if not isinstance(v, str):
        raise _JSONPatchError(f"{what}: missing value" if v is None else f"{what}: json: cannot unmarshal")
    return v


def _apply_op(doc: Any, op: dict) -> None:
    kind = op.get("op") if isinstance(op.get("op"), str) else "unknown"
    if kind == "add":
        path = _op_str(op, "path", "add operation failed to decode path")
        found = _find(doc, path)
        if found is None:
            raise _JSONPatchError(f'add operation does not apply: doc is missing path: "{path}": missing value')
        try:
            _add(found[0], found[1], copy.deepcopy(op.get("value")))
        except _JSONPatchError as e:
            raise _JSONPatchError(f"error in add for path: '{path}': {e}") from None
    elif kind == "remove":
        path = _op_str(op, "path", "remove operation failed to decode path")
        found = _find(doc, path)
        if found is None:
            raise _JSONPatchError(f'remove operation does not apply: doc is missing path: "{path}": missing value')
        try:
            _remove(*found)
        except _JSONPatchError as e:
            raise _JSONPatchError(f"error in remove for path: '{path}': {e}") from None
    elif kind == "replace":
        path = _op_str(op, "path", "replace operation failed to decode path")
        found = _find(doc, path)
        if found is None:
            raise _JSONPatchError(f"replace operation does not apply: doc is missing path: {path}: missing value")
        con, key = found
        try:
            _get(con, key)
        except _JSONPatchError:
            raise _JSONPatchError(f"replace operation does not apply: doc is missing key: {path}: missing value") from None
        val = copy.deepcopy(op.get("value"))
        if isinstance(con, dict):
            con[key] = val
        else:
            con[_atoi(key)] = val
    elif kind in ("move", "copy"):
        frm = _op_str(op, "from", f"{kind} operation failed to decode from")
        found = _find(doc, frm)
        if found is None:
            raise _JSONPatchError(f"{kind} operation does not apply: doc is missing from path: {frm}: missing value")
        con, key = found
        try:
            val = _get(con, key)
            if kind == "move":
                _remove(con, key)
        except _JSONPatchError as e:
            where = f"error in move for path: '{key}'" if kind == "move" else f"error in copy for from: '{frm}'"
            raise _JSONPatchError(f"{where}: {e}") from None
        if kind == "copy":
            val = copy.deepcopy(val)
        path = _op_str(op, "path", f"{kind} operation failed to decode path")
        found = _find(doc, path)
        if found is None:
            raise _JSONPatchError(f"{kind} operation does not apply: doc is missing destination path: {path}: missing value")
        try:
            _add(found[0], found[1], val)
        except _JSONPatchError as e:
            where = f"error in move for path: '{path}'" if kind == "move" else "error while adding value during copy"
            raise _JSONPatchError(f"{where}: {e}") from None
    elif kind == "test":
        path = _op_str(op, "path", "test operation failed to decode path")
        found = _find(doc, path)
        if found is None:
            raise _JSONPatchError(f"test operation does not apply: is missing path: {path}: missing value")
        try:
            val = _get(*found)
        except _JSONPatchError as e:
            raise _JSONPatchError(f"error in test for path: '{path}': {e}") from None
        want = op.get("value")
        if val is None and want is None:
            return
        if val is None or "value" not in op or not mf.values_equal(val, want):
            raise _JSONPatchError(f"testing value {path} failed: test failed")
    else:
        raise _JSONPatchError(f"Unexpected kind: {kind}")


def apply_json_patch(doc: dict, ops: list) -> dict:
    """RFC 6902 as evanphx/json-patch v4 applies it; failures are upstream's 422 Invalid."""
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise StatusError(413, "RequestEntityTooLarge", "Request entity too large: The allowed maximum operations "
                          f"in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {len(ops)}")
    out = copy.deepcopy(doc)
    for op in ops:
        try:
            if not isinstance(op, dict):
                raise _JSONPatchError("Unexpected kind: unknown")
            _apply_op(out, op)
        except _JSONPatchError as e:
            raise _invalid_request(str(e)) from e
    return out


# ---------------------------------------------------------------------------------------------
# RFC 7386 merge patch


def apply_merge_patch(doc: dict, patch: Any) -> dict:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        raise new_bad_request("Invalid JSON Patch")
    return _merge_patch(doc, patch)


def _merge_patch(doc: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return mf.clean(patch)
    out = dict(doc) if isinstance(doc, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge_patch(out.get(k), v)
    return out


# ---------------------------------------------------------------------------------------------
# Strategic merge patch


def apply_strategic_merge_patch(doc: dict, patch: Any, definition: str) -> dict:
    """apimachinery's StrategicMergeMapPatch with the definition's patch metadata.

    Without schema (unknown definition, untyped subtrees) maps merge and lists replace, which is
    merge-patch semantics.
    """
    if not isinstance(patch, dict):
        raise new_bad_request(f"json: cannot unmarshal {_go_type(patch)} into Go value of type map[string]interface {{}}")
    return _smp_map(doc, patch, mf.root_type(definition))


def _smp_map(orig: dict | None, patch: dict, t: mf.Type) -> dict:
    if _DIRECTIVE in patch:
        d = patch[_DIRECTIVE]
        if d == "replace":
            return mf.clean({k: v for k, v in patch.items() if k != _DIRECTIVE})
        if d == "delete":
            return {}
        raise _internal(f"unknown patch type: {_go_repr(d)} in map: {_go_repr(patch)}")
    out = dict(orig) if isinstance(orig, dict) else {}
    patch = dict(patch)
    if _RETAIN_KEYS in patch:
        retain = patch.pop(_RETAIN_KEYS)
        if not isinstance(retain, list):
            raise new_bad_request("invalid patch format of retainKeys")
        keep = {k for k in retain if isinstance(k, str)}
        for k, v in patch.items():
            if v is None or k.startswith((_DELETE_PRIMITIVE, _SET_ORDER)):
                continue
            if k not in keep:
                raise new_bad_request("invalid patch format of retainKeys")
        out = {k: v for k, v in out.items() if k in keep}
    for key in [k for k in patch if k.startswith(_SET_ORDER)]:
        _smp_set_element_order(out, patch, key, t)
    for key in [k for k in patch if k.startswith(_DELETE_PRIMITIVE)]:
        name = key[len(_DELETE_PRIMITIVE):]
        dv = patch.pop(key)
        ov = out.get(name)
        if isinstance(ov, list) and isinstance(dv, list):
            drop = {_hkey(x) for x in dv}
            out[name] = [x for x in ov if _hkey(x) not in drop]
    for k, pv in patch.items():
        if pv is None:
            out.pop(k, None)
            continue
        ct = t.child(k)[0]
        ov = out.get(k)
        if isinstance(ov, dict) and isinstance(pv, dict):
            out[k] = mf.clean(pv) if "replace" in ct.patch_strategies else _smp_map(ov, pv, ct)
        elif isinstance(ov, list) and isinstance(pv, list):
            out[k] = _smp_list(ov, pv, ct) if "merge" in ct.patch_strategies else _smp_new(pv, ct)
        elif ov is None and isinstance(pv, dict) and pv.get(_DIRECTIVE) == "delete":
            continue
        else:
            out[k] = _smp_new(pv, ct)
    return out


def _smp_new(pv: Any, t: mf.Type) -> Any:
    """A patch value for a field the original lacks: directives resolved, nulls dropped."""
    if isinstance(pv, dict):
        return mf.clean(pv) if "replace" in t.patch_strategies else _smp_map({}, pv, t)
    if isinstance(pv, list):
        if "merge" in t.patch_strategies:
            return _smp_list([], pv, t)
        return mf.clean(pv)
    return pv


def _hkey(v: Any) -> Any:
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS) if isinstance(v, (dict, list)) else (type(v) is bool, v)


def _elements_are_maps(orig: list, patch: list, t: mf.Type) -> bool:
    kinds = set()
    for v in (*orig, *patch):
        if isinstance(v, list):
            raise _invalid_request("lists of lists are not supported")
        kinds.add(isinstance(v, dict))
    if len(kinds) > 1:
        raise _internal(f"mismatched types for list {t.merge_key or ''}".rstrip())
    return kinds == {True}


def _smp_list_merge(orig: list, patch: list, t: mf.Type) -> tuple[list, list, list, str]:
    """mergeSlice without the ordering step: (merged, patch items, server order, merge key)."""
    if not orig and not patch:
        return [], [], orig, ""
    if not _elements_are_maps(orig, patch, t):
        seen: set = set()
        merged = []
        for v in (*orig, *patch):
            h = _hkey(v)
            if h not in seen:
                seen.add(h)
                merged.append(v)
        return merged, patch, orig, ""
    mk = t.merge_key
    if not mk:
        raise _internal("cannot merge lists without merge key")
    plain = []
    replace = False
    for v in patch:
        d = v.get(_DIRECTIVE, None) if _DIRECTIVE in v else None
        if _DIRECTIVE not in v:
            plain.append(v)
        elif d == "delete":
            if mk not in v:
                raise _internal(f"map: {_go_repr(v)} does not contain declared merge key: {mk}")
            target = _hkey(v[mk])
            orig = [o for o in orig if not (isinstance(o, dict) and mk in o and _hkey(o[mk]) == target)]
        elif d == "replace":
            replace = True
        elif d == "merge":
            raise _internal("merging lists cannot yet be specified in the patch")
        else:
            raise _internal(f"unknown patch type: {_go_repr(d)} in map: {_go_repr(v)}")
    if replace:
        items = [mf.clean(v) for v in plain]
        return items, [], items, mk
    merged = list(orig)
    pos = {_hkey(o.get(mk)): i for i, o in enumerate(merged) if isinstance(o, dict) and mk in o}
    et = t.elem()
    for v in plain:
        if mk not in v:
            raise _internal(f"map: {_go_repr(v)} does not contain declared merge key: {mk}")
        h = _hkey(v[mk])
        if h in pos:
            merged[pos[h]] = _smp_map(merged[pos[h]], v, et)
        else:
            pos[h] = len(merged)
            merged.append(_smp_map({}, v, et))
    return merged, plain, orig, mk


def _smp_list(orig: list, patch: list, t: mf.Type) -> list:
    merged, patch_items, server_order, mk = _smp_list_merge(orig, patch, t)
    return _normalize_order(merged, patch_items, server_order, mk)


def _ident(v: Any, mk: str) -> Any:
    return _hkey(v.get(mk)) if mk and isinstance(v, dict) else _hkey(v)


def _normalize_order(merged: list, order: list, server_order: list, mk: str) -> list:
    """normalizeElementOrder: patch items in `order`, server-only items in server order, interleaved."""
    order_idx: dict = {}
    for i, v in enumerate(order):
        order_idx.setdefault(_ident(v, mk), i)
    server_idx: dict = {}
    for i, v in enumerate(server_order):
        server_idx.setdefault(_ident(v, mk), i)
    in_patch = [v for v in merged if _ident(v, mk) in order_idx]
    server_only = [v for v in merged if _ident(v, mk) not in order_idx]
    in_patch.sort(key=lambda v: order_idx[_ident(v, mk)])
    big = len(server_order)
    server_only.sort(key=lambda v: server_idx.get(_ident(v, mk), big))
    out = []
    i = j = 0
    while i < len(server_only) or j < len(in_patch):
        if j >= len(in_patch):
            out.append(server_only[i])
            i += 1
        elif i >= len(server_only):
            out.append(in_patch[j])
            j += 1
        else:
            li = server_idx.get(_ident(server_only[i], mk))
            ri = server_idx.get(_ident(in_patch[j], mk))
            if li is not None and ri is not None and li < ri:
                out.append(server_only[i])
                i += 1
            else:
                out.append(in_patch[j])
                j += 1
    return out


def _smp_set_element_order(out: dict, patch: dict, key: str, t: mf.Type) -> None:
    """mergePatchIntoOriginal: merge the list named by `$setElementOrder/<name>` and order it."""
    order = patch.pop(key)
    name = key[len(_SET_ORDER):]
    if not isinstance(order, list):
        raise new_bad_request("invalid patch for $setElementOrder list")
    ov = out.get(name)
    has_patch = name in patch
    pv = patch.pop(name, None)
    if ov is None and not has_patch:
        return
    if has_patch and pv is None:
        out.pop(name, None)
        return
    ct = t.child(name)[0]
    ol = ov if isinstance(ov, list) else []
    pl = pv if isinstance(pv, list) else []
    if "merge" in ct.patch_strategies:
        merged, _, _, mk = _smp_list_merge(ol, pl, ct)
        if not mk and merged and isinstance(merged[0], dict):
            mk = ct.merge_key
    else:
        merged, mk = (mf.clean(pl) if has_patch else ol), ct.merge_key
    if mk and any(isinstance(v, dict) and mk not in v for v in order):
        raise new_bad_request("invalid patch for $setElementOrder list")
    out[name] = _normalize_order(merged, order, ol, mk)


# ---------------------------------------------------------------------------------------------
# Dispatch on Content-Type


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        return _PARSE_ERROR


_PARSE_ERROR = object()


def _internal_type_name(api_version: str, kind: str) -> str:
    group = api_version.split("/")[0] if "/" in api_version else "core"
    return f"*{group.split('.')[0]}.{kind}"


def patch(doc: dict, patch_body: bytes, content_type: str, definition: str, *,
          field_validation: str = "Strict") -> dict:
    """Apply a PATCH body of the given Content-Type to `doc` (which is not modified).

    `field_validation` is the request's fieldValidation (kubectl sends Strict), which only changes
    how undecodable bodies are worded, as upstream. Server-side apply bodies go to apply.py.
    """
    ctype = (content_type or "").split(";")[0].strip().lower()
    strict = field_validation in ("Strict", "Warn")
    prefix = "error decoding patch: " if strict else ""
    body = _parse(patch_body)
    if ctype == JSON_PATCH:
        if body is _PARSE_ERROR:
            raise new_bad_request(prefix + go_json_error(patch_body))
        if not isinstance(body, list):
            target = "[]handlers.jsonPatchOp" if strict else "jsonpatch.Patch"
            raise new_bad_request(f"{prefix}json: cannot unmarshal {_go_type(body)} into Go value of type {target}")
        result = apply_json_patch(doc, body)
        _check_type_meta(doc, result, json_patched=True)
    elif ctype == MERGE_PATCH:
        if body is _PARSE_ERROR:
            raise new_bad_request(prefix + go_json_error(patch_body) if strict else "Invalid JSON Patch")
        if strict and not isinstance(body, dict) and body is not None:
            raise new_bad_request(f"{prefix}json: cannot unmarshal {_go_type(body)} into Go value of type "
                                  "map[string]interface {}")
        result = apply_merge_patch(doc, body)
        _check_type_meta(doc, result, json_patched=True)
    elif ctype == STRATEGIC_MERGE_PATCH:
        if body is _PARSE_ERROR:
            raise new_bad_request(go_json_error(patch_body))
        result = apply_strategic_merge_patch(doc, body, definition)
        _check_type_meta(doc, result, json_patched=False)
    else:
        raise new_unsupported_media_type(content_type or "")
    return result


def _check_type_meta(before: dict, after: dict, json_patched: bool) -> None:
    """A patch may not turn the object into another kind.

    JSON and merge patches are decoded back into the kind's type, which upstream rejects as
    `"" is invalid: patch: Invalid value: ...`; a strategic merge patch converts from a map and
    keeps the original type, so a changed apiVersion/kind is simply ignored there.
    """
    same = after.get("apiVersion") == before.get("apiVersion") and after.get("kind") == before.get("kind")
    if same:
        return
    if not json_patched:
        for k in ("apiVersion", "kind"):
            if k in before:
                after[k] = before[k]
        return
    api_version, kind = str(before.get("apiVersion", "")), str(before.get("kind", ""))
    new_av, new_kind = after.get("apiVersion"), after.get("kind")
    patched = orjson.dumps(after).decode()
    if not new_kind:
        detail = f"Object 'Kind' is missing in '{patched}'"
    elif new_av != api_version:
        detail = f'no kind "{new_kind}" is registered for version "{new_av}"'
    else:
        gv = new_av if "/" in str(new_av) else "/" + str(new_av)
        detail = f"unable to decode {gv}, Kind={new_kind} into {_internal_type_name(api_version, kind)}"
    from kubelite.api.errors import invalid, new_invalid

    err = new_invalid("", "", "", [invalid("patch", patched, detail)])
    err.details = {"causes": err.details["causes"]}
    raise err
