"""Keys kept sorted per resource prefix, so a LIST is two bisects and a slice, never a scan or a sort.

Keys look like `/registry/core/pods/<ns>/<name>`: the part up to the plural (`/registry/core/pods/`) is
the resource prefix. Every prefix the API server lists is that resource prefix or one below it
(a namespace), so one bucket answers it; shorter prefixes (whole-store dumps) merge the buckets.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right, insort

_SHORT = ""  # bucket of keys with fewer than four '/' (not shaped like /registry/<group>/<plural>/...)


def resource_prefix(key: str) -> str:
    """The key up to and including its fourth '/', e.g. `/registry/core/pods/`; "" if it has fewer."""
    i = -1
    for _ in range(4):
        i = key.find("/", i + 1)
        if i < 0:
            return _SHORT
    return key[: i + 1]


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string that starts with prefix."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class KeyIndex:
    """Sorted key lists, one per resource prefix."""

    def __init__(self) -> None:
        self._buckets: dict[str, list[str]] = {}

    def add(self, key: str) -> None:
        """Insert a key that is not present yet."""
        insort(self._buckets.setdefault(resource_prefix(key), []), key)

    def remove(self, key: str) -> None:
        bucket = resource_prefix(key)
        keys = self._buckets.get(bucket)
        if not keys:
            return
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            del keys[i]
            if not keys:
                del self._buckets[bucket]

    def range(self, prefix: str, start_after: str = "", limit: int = 0) -> tuple[list[str], bool]:
        """Keys starting with prefix and greater than start_after, in order, at most limit (0: all).

        Returns (keys, whether more keys remain after the last one returned).
        """
        keys, lo, hi = self._bounds(prefix, start_after)
        if limit and hi - lo > limit:
            return keys[lo : lo + limit], True
        return keys[lo:hi], False

    def count(self, prefix: str, start_after: str = "") -> int:
        """How many keys range() would return without a limit."""
        _, lo, hi = self._bounds(prefix, start_after)
        return max(0, hi - lo)

    def _bounds(self, prefix: str, start_after: str) -> tuple[list[str], int, int]:
        bucket = resource_prefix(prefix)
        if bucket:
            keys = self._buckets.get(bucket, [])
        else:
            # Shorter than a resource prefix: every bucket below it, plus matching short keys.
            # Buckets are sorted lists of disjoint prefixes, so a merge keeps key order.
            lists = [v for b, v in self._buckets.items() if b and b.startswith(prefix)]
            lists.append([k for k in self._buckets.get(_SHORT, ()) if k.startswith(prefix)])
            keys = list(heapq.merge(*lists))
        lo = bisect_left(keys, prefix) if prefix else 0
        hi = bisect_left(keys, prefix_end(prefix)) if prefix else len(keys)
        if start_after:
            lo = max(lo, bisect_right(keys, start_after))
        return keys, lo, hi
