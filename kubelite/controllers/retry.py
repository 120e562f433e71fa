"""How a sync treats the API's ordinary refusals (upstream controllers requeue these quietly)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from kubelite.api.errors import StatusError

log = logging.getLogger(__name__)

CONFLICT_RETRY_SECONDS = 0.1


def quiet_conflicts(sync: Callable[[str], Awaitable[float | None]]) -> Callable[[str], Awaitable[float | None]]:
    """A write that lost a race (409) is retried shortly from the fresher cache; an object deleted
    under the sync (404 on our own write) needs nothing more. Anything else goes to the
    rate-limited requeue of the worker loop."""
    @functools.wraps(sync)
    async def wrapped(key: str) -> float | None:
        try:
            return await sync(key)
        except StatusError as e:
            if e.code == 409 and e.reason == "Conflict":
                log.debug("%s: conflict syncing %s: %s", sync.__qualname__, key, e.message)
                return CONFLICT_RETRY_SECONDS
            if e.code == 404 and e.reason == "NotFound":
                log.debug("%s: %s vanished while syncing: %s", sync.__qualname__, key, e.message)
                return CONFLICT_RETRY_SECONDS
            raise
    return wrapped
