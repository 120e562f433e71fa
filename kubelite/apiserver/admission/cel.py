"""CEL for admission: compiling and evaluating the expressions of matchConditions and ValidatingAdmissionPolicy.

cel-python (`celpy`) parses and evaluates; this module adds what the API server puts around it: the
variables an expression may name (object, oldObject, request, params, namespaceObject, variables,
authorizer), compile errors worded as upstream's validation (`compilation failed: ERROR: <input>:1:2:
Syntax error: ...`), a cache of compiled programs (a parse costs ~20 ms, an evaluation well under 1 ms),
and evaluation errors as plain messages.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import celpy
from celpy import celtypes
from celpy.celparser import CELParseError

Obj = dict[str, Any]

# what upstream declares for each kind of expression
WEBHOOK_VARS = frozenset({"object", "oldObject", "request", "authorizer"})
POLICY_VARS = frozenset({"object", "oldObject", "request", "params", "namespaceObject", "variables", "authorizer"})
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_CACHE_SIZE = 512


class CompileError(ValueError):
    """The expression does not compile; str() is upstream's field detail (`compilation failed: ...`)."""


class EvalError(Exception):
    """The expression failed at run time (no such key, type mismatch, ...)."""


class Program:
    """A compiled expression, evaluated against plain JSON values."""

    def __init__(self, expression: str, runner: Any):
        self.expression = expression
        self._runner = runner

    def evaluate(self, activation: Obj) -> Any:
        """The result as a plain Python value; raises EvalError."""
        try:
            result = self._runner.evaluate(activation)
        except celpy.CELEvalError as e:
            raise EvalError(_eval_message(e)) from None
        except (TypeError, ValueError, KeyError, ZeroDivisionError) as e:
            raise EvalError(str(e)) from None
        if isinstance(result, celpy.CELEvalError):
            raise EvalError(_eval_message(result))
        return _to_python(result)


_env = celpy.Environment()
_programs: OrderedDict[tuple[str, frozenset[str]], Program] = OrderedDict()


def compile_expression(expression: str, declared: Iterable[str] = POLICY_VARS) -> Program:
    """Compile (or reuse) `expression`; names outside `declared` are undeclared references, as upstream's."""
    names = frozenset(declared)
    key = (expression, names)
    prog = _programs.get(key)
    if prog is not None:
        _programs.move_to_end(key)
        return prog
    try:
        ast = _env.compile(expression)
    except CELParseError as e:
        raise CompileError(_syntax_message(expression, e)) from None
    except Exception as e:  # noqa: BLE001 - the parser's own failures are the expression's fault
        raise CompileError(f"compilation failed: ERROR: <input>:1:1: {e}") from None
    undeclared = _undeclared(ast, names)
    if undeclared:
        name, line, col = undeclared
        raise CompileError(f"compilation failed: ERROR: <input>:{line}:{col}: undeclared reference to '{name}' "
                           f"(in container '')\n{_pointer(expression, line, col)}")
    prog = Program(expression, _env.program(ast))
    _programs[key] = prog
    if len(_programs) > _CACHE_SIZE:
        _programs.popitem(last=False)
    return prog


def activation(obj: Obj | None = None, old: Obj | None = None, request: Obj | None = None, *,
               params: Any = None, namespace_object: Obj | None = None,
               variables: Callable[[str], Any] | None = None, authorizer: Any = None) -> Obj:
    """The variables an admission expression sees, converted once to CEL values."""
    # upstream's `request` carries the attributes, not the objects again (and converting them twice costs)
    attrs = {k: v for k, v in (request or {}).items() if k not in ("object", "oldObject")}
    act: Obj = {"object": _cel(obj), "oldObject": _cel(old), "request": _cel(attrs),
                "params": _cel(params), "namespaceObject": _cel(namespace_object)}
    if variables is not None:
        act["variables"] = _LazyVariables(variables)
    if authorizer is not None:
        act["authorizer"] = authorizer
    return act


def to_cel(value: Any) -> Any:
    """A plain JSON value as a CEL value (for values computed outside CEL, e.g. composited variables)."""
    return _cel(value)


# ------------------------------------------------------------------ internals
def _cel(value: Any) -> Any:
    return celtypes.NullType() if value is None else celpy.json_to_cel(value)


class _LazyVariables(celtypes.MapType):
    """`variables.x` is evaluated on first use, as upstream's composited variables are."""

    def __init__(self, resolve: Callable[[str], Any]):
        super().__init__({})
        self._resolve = resolve

    def __getitem__(self, key: Any) -> Any:
        name = str(key)
        if not super().__contains__(celtypes.StringType(name)):
            super().__setitem__(celtypes.StringType(name), self._resolve(name))
        return super().__getitem__(celtypes.StringType(name))

    def __contains__(self, key: Any) -> bool:
        try:
            self[key]
        except (KeyError, EvalError):
            return False
        return True


def _to_python(value: Any) -> Any:
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.NullType) or value is None:
        return None
    if isinstance(value, celtypes.MapType):
        return {str(k): _to_python(v) for k, v in value.items()}
    if isinstance(value, celtypes.ListType):
        return [_to_python(v) for v in value]
    return value


def _eval_message(e: Any) -> str:
    args = getattr(e, "args", ())
    msg = str(args[0]) if args else str(e)
    if msg.startswith("no such member in mapping: "):
        return "no such key: " + msg.removeprefix("no such member in mapping: ").strip("'")
    return msg.replace("Token('RULE', 'addition_add')", "'_+_'")


def _syntax_message(expression: str, e: CELParseError) -> str:
    line = int(getattr(e, "line", 1) or 1)
    col = int(getattr(e, "column", 1) or 1)
    cause = e.__cause__ or e.__context__
    token = getattr(cause, "token", None)
    if token is not None:
        shown = "<EOF>" if token.type == "$END" else str(token)
        detail = f"Syntax error: mismatched input '{shown}'"
        expected = sorted(getattr(cause, "expected", None) or ())
        if expected:
            detail += " expecting {" + ", ".join(expected) + "}"
    else:
        char = getattr(cause, "char", "") or ""
        detail = f"Syntax error: token recognition error at: '{char}'"
    return f"compilation failed: ERROR: <input>:{line}:{col}: {detail}\n{_pointer(expression, line, col)}"


def _pointer(expression: str, line: int, col: int) -> str:
    lines = expression.splitlines() or [""]
    text = lines[min(line, len(lines)) - 1]
    return f" | {text}\n | {'.' * max(col - 1, 0)}^"


def _undeclared(ast: Any, declared: frozenset[str]) -> tuple[str, int, int] | None:
    """The first identifier that is neither declared nor bound by a macro (`x` in `all(x, ...)`)."""
    bound: set[str] = set()
    for node in ast.iter_subtrees():
        if node.data == "member_dot_arg" and len(node.children) >= 3:
            method, args = node.children[1], node.children[2]
            if str(method) in _MACROS and getattr(args, "children", None):
                first = args.children[0]
                for sub in first.iter_subtrees():
                    if sub.data == "ident" and sub.children:
                        bound.add(str(sub.children[0]))
                        break
    for node in ast.iter_subtrees_topdown():
        if node.data == "ident" and node.children:
            tok = node.children[0]
            name = str(tok)
            if name not in declared and name not in bound:
                return name, int(getattr(tok, "line", 1) or 1), int(getattr(tok, "column", 1) or 1)
    return None
