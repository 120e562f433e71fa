"""The small JSONPath subset CRDs use for printer columns and scale paths: `.spec.x`, `.a[0].b`, `.a['b.c']`."""

from __future__ import annotations

import re
from typing import Any

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]|\[\*\]")

_MISSING = object()


def parse(path: str) -> list[str | int]:
    """Steps of a path; ValueError when it is outside the supported subset."""
    p = path.strip()
    if p.startswith("{") and p.endswith("}"):
        p = p[1:-1]
    if p.startswith("$"):
        p = p[1:]
    steps: list[str | int] = []
    pos = 0
    while pos < len(p):
        m = _STEP.match(p, pos)
        if m is None:
            raise ValueError(f"unsupported JSONPath {path!r}")
        if m.group(0) == "[*]":
            steps.append("*")
        elif m.group(2) is not None:
            steps.append(int(m.group(2)))
        else:
            steps.append(next(g for g in (m.group(1), m.group(3), m.group(4)) if g is not None))
        pos = m.end()
    return steps


def find(obj: Any, path: str) -> Any:
    """The value at `path`, or None when absent (a `[*]` step yields the list of matches)."""
    try:
        steps = parse(path)
    except ValueError:
        return None
    found = _walk(obj, steps)
    return None if found is _MISSING else found


def _walk(cur: Any, steps: list[str | int]) -> Any:
    for i, step in enumerate(steps):
        if step == "*":
            if not isinstance(cur, list):
                return _MISSING
            out = [_walk(v, steps[i + 1:]) for v in cur]
            return [v for v in out if v is not _MISSING]
        if isinstance(step, int):
            if not isinstance(cur, list) or step >= len(cur):
                return _MISSING
            cur = cur[step]
        else:
            if not isinstance(cur, dict) or step not in cur:
                return _MISSING
            cur = cur[step]
    return cur
