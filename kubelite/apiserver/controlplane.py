"""One control plane in one process, k3s-style: store, API server, and the in-process components.

`kubelite server` runs it in the foreground; tests may start it inside their own event loop.
Every component still talks to the API through the client, never to another's memory.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from aiohttp import web

from kubelite.api.registry import default_registry
from kubelite.apiserver.admission import default_plugins
from kubelite.apiserver.admission.service_allocation import ServiceAllocation
from kubelite.apiserver.app import COMPONENTS_STARTED, build_app
from kubelite.apiserver.bootstrap import bootstrap
from kubelite.apiserver.config import ServerConfig
from kubelite.apiserver.service import APIService
from kubelite.storage import open_store

log = logging.getLogger(__name__)


class ControlPlane:
    def __init__(self, config: ServerConfig):
        self.config = config
        self.store: Any = None
        self.service: APIService | None = None
        self._runner: web.AppRunner | None = None
        self.components: list[Any] = []
        self.access: Any = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.config.bind in ("0.0.0.0", "::", "") else self.config.bind
        return f"https://{host}:{self.config.port}"

    async def start(self) -> None:
        from kubelite.apiserver.access import AccessControl
        from kubelite.apiserver.pki import ensure_cluster_pki, pod_facing_address, ssl_server_context

        cfg = self.config
        os.makedirs(cfg.data_dir, exist_ok=True)
        pki = ensure_cluster_pki(cfg)
        os.makedirs(os.path.dirname(cfg.db_path), exist_ok=True)
        self.store = open_store(cfg.db_path, cfg.watch_history)
        await self.store.start()
        plugins = default_plugins(cfg)
        self.service = APIService(default_registry(), self.store, plugins)
        await self.service.start()
        allocation = next(p for p in plugins if isinstance(p, ServiceAllocation))
        with open(pki.ca_cert, "rb") as f:
            ca_pem = f.read()
        await bootstrap(self.service, cfg, self.url, ca_pem, allocation.kubernetes_service_ip())
        self.access = AccessControl(self.service, cfg)
        await self.access.start()
        app = build_app(self.service, middlewares=[self.access.middleware()])
        started = app[COMPONENTS_STARTED] = {"done": False}
        self.access.add_routes(app, self.url)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        tls = ssl_server_context(pki)
        await web.TCPSite(self._runner, cfg.bind, cfg.port, ssl_context=tls, backlog=1024).start()
        pod_facing = pod_facing_address(cfg)
        if pod_facing:
            try:
                await web.TCPSite(self._runner, pod_facing, cfg.port, ssl_context=tls, backlog=1024).start()
            except OSError as e:
                log.warning("pods cannot reach the API server: listening on %s:%d failed: %s", pod_facing, cfg.port, e)
        log.info("kubelite API server listening on %s", self.url)
        await self._start_components()
        started["done"] = True

    async def _start_components(self) -> None:
        """Controllers, scheduler and simulated nodes, each through the in-process client."""
        from kubelite.apiserver import components

        self.components = await components.start(self.service, self.config)

    async def stop(self) -> None:
        for comp in reversed(self.components):
            try:
                await comp.stop()
            except Exception:
                log.exception("stopping %r", comp)
        if self._runner is not None:
            await self._runner.cleanup()
        if self.access is not None:
            await self.access.stop()
        if self.service is not None:
            await self.service.stop()
        if self.store is not None:
            await self.store.close()
