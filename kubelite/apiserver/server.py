"""`kubelite server`: run one control plane in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

import uvloop

from kubelite.apiserver.config import ServerConfig

log = logging.getLogger(__name__)


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
    # what start-up built (registry, schemas, caches) lives as long as the process: keep it out of
    # the collector's full passes, which otherwise pause every request in proportion to it
    gc.collect()
    gc.freeze()
    await stop.wait()
    log.info("shutting down")
    await plane.stop()
