"""`kubelite server`: run one control plane in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

import uvloop

from kubelite.apiserver.config import ServerConfig

log = logging.getLogger(__name__)


# Collector thresholds for a server whose every write leaves a new long-lived object (the stored
# object, its watch event): with the defaults (700, 10, 10) the older generations were re-scanned
# so often that collection was a quarter of a pod status update's CPU; these make it a tenth of that.
# Cyclic garbage still goes, at most a few million allocations later.
GC_THRESHOLDS = (2000, 20, 100)


def tune_gc() -> None:
    """Once start-up is done: what it built (registry, schemas, caches) lives as long as the process,
    so it leaves the collector's passes for good (gc.freeze), and the thresholds above apply."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(config: ServerConfig) -> None:
    # uvloop: the event loop and its TLS transport in C; the server spends most of a request in them
    uvloop.run(_serve(config))


async def _serve(config: ServerConfig) -> None:
    from kubelite.apiserver.controlplane import ControlPlane

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    plane = ControlPlane(config)
    await plane.start()
    tune_gc()
    await stop.wait()
    log.info("shutting down")
    await plane.stop()
