"""The components `kubelite server` runs beside the API server, each on the in-process client."""

from __future__ import annotations

import logging
from typing import Any

from kubelite.apiserver.config import ServerConfig

log = logging.getLogger(__name__)


async def start(service: Any, config: ServerConfig) -> list[Any]:
    """Start what the config asks for; each returned object has `async stop()`."""
    started: list[Any] = []
    if config.controllers:
        from kubelite.client.client import Client
        from kubelite.controllers.manager import ControllerManager

        manager = ControllerManager(Client.in_process(service), config, registry=service.registry)
        await manager.start()
        started.append(manager)
    return started
