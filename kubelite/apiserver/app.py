"""Assembles the aiohttp application: health, discovery, OpenAPI and the generic resource handler."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from kubelite.api import errors
from kubelite.apiserver.handlers import ResourceHandler, status_response
from kubelite.apiserver.service import APIService

log = logging.getLogger(__name__)

COMPONENTS_STARTED = web.AppKey("components_started", dict)  # {"done": bool}: mutable after start-up


async def _health(request: web.Request) -> web.Response:
    name = request.path.strip("/").split("/")[0]
    if name == "readyz" and not request.app.get(COMPONENTS_STARTED, {"done": True})["done"]:
        # as upstream's post-start hooks: not ready until the node and controllers are up, so that
        # `kubelite up` returns with `kubectl get nodes` already answering
        body = "[+]ping ok\n[-]poststarthook/kubelite-components failed: not finished\nreadyz check failed\n"
        return web.Response(status=500, text=body)
    if "verbose" in request.query:
        checks = ["ping", "log", "etcd", "poststarthook/start-kube-apiserver-admission-initializer"]
        body = "".join(f"[+]{c} ok\n" for c in checks) + f"{name} check passed\n"
        return web.Response(text=body)
    return web.Response(text="ok")


def build_app(service: APIService, middlewares: Sequence[Any] = ()) -> web.Application:
    """middlewares run inside the error handler, e.g. authentication and authorization."""

    @web.middleware
    async def api_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        try:
            return await handler(request)
        except errors.StatusError as e:
            return status_response(e)
        except web.HTTPException as e:
            if e.status == 404:
                return status_response(errors.StatusError(404, "NotFound", "the server could not find the requested resource"))
            if e.status == 405:
                return status_response(errors.new_method_not_allowed())
            raise
        except Exception as e:  # an unexpected failure answers 500 and never leaves a half-done write
            log.exception("internal error serving %s %s", request.method, request.path)
            return status_response(errors.new_internal(str(e)))

    app = web.Application(middlewares=[api_errors, *middlewares], client_max_size=64 * 1024 * 1024)
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, _health)
        app.router.add_get(path + "/{check:.*}", _health)

    from kubelite.api.openapi import OpenAPIService
    from kubelite.apiserver.discovery import add_discovery_routes

    add_discovery_routes(app, service.registry)
    OpenAPIService(service.registry).add_routes(app)
    handler = ResourceHandler(service)
    for prefix in ("/api/", "/apis/"):
        app.router.add_route("*", prefix + "{tail:.+}", handler.__call__)  # a coroutine function, as aiohttp wants
    return app
