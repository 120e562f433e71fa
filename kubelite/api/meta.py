"""Small helpers on object metadata shared by the server and the components."""

from __future__ import annotations

import functools
import os
import random
import time
from datetime import UTC, datetime
from typing import Any

import orjson

Obj = dict[str, Any]

# upstream's utilrand alphabet for generateName suffixes: no vowels, no confusable characters
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339(t: float | None = None) -> str:
    """metav1.Time as it goes on the wire: second precision, UTC, `Z`."""
    return _rfc3339_second(int(time.time() if t is None else t))


@functools.lru_cache(maxsize=8)
def _rfc3339_second(second: int) -> str:
    # every write in the same second stamps the same string: format it once
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339_micro(t: float | None = None) -> str:
    """metav1.MicroTime (events.k8s.io eventTime, Lease renewTime)."""
    return datetime.fromtimestamp(time.time() if t is None else t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


_UUID_V4_CLEAR = 0xF000 << 64 | 0xC000 << 48  # the version and variant bits
_UUID_V4_SET = 0x4000 << 64 | 0x8000 << 48  # version 4, RFC 4122 variant


def new_uid() -> str:
    """A random (version 4) UUID, as upstream's uuid.NewRandom: 16 bytes from the OS's CSPRNG, formatted
    directly (str(uuid.uuid4()) builds a UUID object first, at twice the cost, on every create)."""
    n = int.from_bytes(os.urandom(16), "big") & ~_UUID_V4_CLEAR | _UUID_V4_SET
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def generate_name(prefix: str) -> str:
    # upstream draws the suffix from math/rand, not a cryptographic source
    return prefix + "".join(random.choices(_GENERATE_ALPHABET, k=5))


def deep_copy(obj: Any) -> Any:
    """Copy a JSON value; orjson round-trips are faster than copy.deepcopy for plain dicts."""
    return orjson.loads(orjson.dumps(obj))


def meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


def resource_version(obj: Obj) -> int:
    rv = (obj.get("metadata") or {}).get("resourceVersion") or "0"
    try:
        return int(rv)
    except ValueError:
        return 0


def is_status_condition_true(obj: Obj, ctype: str) -> bool:
    """apimachinery's meta.IsStatusConditionTrue, on an object's status.conditions."""
    return any(c.get("type") == ctype and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def set_status_condition(conditions: list[Obj], cond: Obj) -> bool:
    """apimachinery's meta.SetStatusCondition: put `cond` (type, status, reason, message) into
    `conditions`, moving lastTransitionTime only when the status flips. True when anything changed."""
    for c in conditions:
        if c.get("type") == cond["type"]:
            before = dict(c)
            if c.get("status") != cond["status"]:
                c["lastTransitionTime"] = cond.get("lastTransitionTime") or now_rfc3339()
            c.update({k: v for k, v in cond.items() if k != "lastTransitionTime"})
            return c != before
    conditions.append({**cond, "lastTransitionTime": cond.get("lastTransitionTime") or now_rfc3339()})
    return True
