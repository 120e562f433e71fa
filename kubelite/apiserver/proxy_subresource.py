"""pods/proxy, services/proxy and nodes/proxy: upstream's ProxyREST (ResourceLocation + the
upgrade-aware HTTP proxy) for every HTTP method.

`/api/v1/namespaces/NS/pods/[SCHEME:]NAME[:PORT]/proxy/PATH` reaches the pod's IP (port defaulting
to its first container port), `.../services/[SCHEME:]NAME[:PORT]/proxy/PATH` one ready endpoint of
the service port named or numbered PORT, and `/api/v1/nodes/NAME[:PORT]/proxy/PATH` the node's kubelet
over TLS with the API server's kubelet-client certificate. A GET or HEAD of `.../proxy` with no path
is redirected (301) to `.../proxy/`, as upstream's UpgradeAwareHandler does.
"""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from kubelite.api import errors

# hop-by-hop headers (RFC 7230 6.1) and what the API server consumed itself
_DROP_REQUEST = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                 "transfer-encoding", "upgrade", "host", "authorization", "content-length",
                 "impersonate-user", "impersonate-group", "impersonate-uid"}
_DROP_RESPONSE = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                  "transfer-encoding", "upgrade", "content-length", "content-encoding"}


def split_scheme_name_port(id_: str) -> tuple[str, str, str]:
    """net.SplitSchemeNamePort: `name`, `name:port` or `scheme:name:port` (scheme http, https or empty)."""
    parts = id_.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
        if scheme not in ("", "http", "https"):
            raise errors.new_bad_request(f"invalid request {id_!r}")
    else:
        raise errors.new_bad_request(f"invalid request {id_!r}")
    if not name:
        raise errors.new_bad_request(f"invalid request {id_!r}")
    return scheme, name, port


def proxy_path(request_path: str, plural: str, raw_name: str) -> str:
    """What follows `<plural>/<raw name>/proxy` in the request path ('' when nothing does)."""
    marker = f"/{plural}/{raw_name}/proxy"
    i = request_path.find(marker)
    return request_path[i + len(marker):] if i >= 0 else ""


async def handle(service: Any, request: web.Request, res: Any, namespace: str | None,
                 raw_name: str) -> web.StreamResponse:
    """Proxy one request to the pod, service or node named by the URL."""
    scheme, name, port = split_scheme_name_port(raw_name)
    path = proxy_path(request.raw_path.split("?", 1)[0], res.plural, quote(raw_name, safe=":@"))
    if not path and request.method in ("GET", "HEAD"):
        # upstream redirects a directory-less location so relative links resolve below .../proxy/
        target = request.raw_path.split("?", 1)[0] + "/"
        if request.query_string:
            target += "?" + request.query_string
        return web.Response(status=301, headers={"Location": target},
                            text=f'<a href="{target}">Moved Permanently</a>.\n\n', content_type="text/html")
    ssl_ctx: Any = None
    if res.plural == "pods":
        host, port = await _pod_location(service, res, namespace, name, port)
    elif res.plural == "services":
        host, port = await _service_location(service, res, namespace, name, port)
    else:
        host, port, ssl_ctx = await _node_location(service, res, name, port)
        scheme = "https"
    scheme = scheme or "http"
    if scheme == "https" and ssl_ctx is None:
        ssl_ctx = False  # upstream's proxy transport does not verify backends' certificates
    if ":" in host:
        host = f"[{host}]"
    url = f"{scheme}://{host}:{port}{path or '/'}"
    if request.query_string:
        url += "?" + request.query_string
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_REQUEST}
    body = await request.read() if request.can_read_body else None
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        try:
            upstream = await session.request(request.method, url, headers=headers, data=body, ssl=ssl_ctx,
                                             allow_redirects=False)
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            # upstream's proxy error responder: 503 with the dial error
            raise errors.StatusError(503, "ServiceUnavailable", f"error trying to reach service: {e}") from None
        async with upstream:
            resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for k, v in upstream.headers.items():
                if k.lower() not in _DROP_RESPONSE:
                    resp.headers.add(k, v)
            if request.method == "HEAD":
                if "Content-Length" in upstream.headers:
                    resp.headers["Content-Length"] = upstream.headers["Content-Length"]
                await resp.prepare(request)
                return resp
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
            except (ConnectionResetError, aiohttp.ClientError):
                pass
            return resp


async def _pod_location(service: Any, res: Any, namespace: str | None, name: str, port: str) -> tuple[str, str]:
    pod = await service.get(res, namespace, name)
    if not port:
        # the first declared container port, as upstream's pod ResourceLocation picks
        for c in (pod.get("spec") or {}).get("containers") or []:
            if c.get("ports"):
                port = str(c["ports"][0].get("containerPort"))
                break
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise errors.new_bad_request("address not allowed")
    return ip, port or "80"


async def _service_location(service: Any, res: Any, namespace: str | None, name: str,
                            port: str) -> tuple[str, str]:
    svc = await service.get(res, namespace, name)
    spec = svc.get("spec") or {}
    port_name = port
    found = False
    for p in spec.get("ports") or []:
        if p.get("name", "") == port or (port.isdigit() and str(p.get("port")) == port) or \
                (not port and len(spec.get("ports") or []) == 1):
            port_name, found = p.get("name", ""), True
            break
    if not found:
        raise errors.new_bad_request(f"no service port {port!r} found for service {name!r}")
    if spec.get("type") == "ExternalName":
        return spec.get("externalName") or "", port or "80"
    ep_res = service.registry.get("", "v1", "endpoints")
    try:
        eps = await service.get(ep_res, namespace, name)
    except errors.StatusError as e:
        if e.code != 404:
            raise
        eps = {}
    choices: list[tuple[str, int]] = []
    for subset in eps.get("subsets") or []:
        for p in subset.get("ports") or []:
            if (p.get("name") or "") != port_name:
                continue
            choices += [(a["ip"], p["port"]) for a in subset.get("addresses") or [] if a.get("ip")]
    if not choices:
        raise errors.StatusError(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
    ip, p = random.choice(choices)
    return ip, str(p)


async def _node_location(service: Any, res: Any, name: str, port: str) -> tuple[str, str, Any]:
    from kubelite.kubelet.proxy import _client, _node_address, _simulated

    node = await service.get(res, None, name)
    if _simulated(node):
        raise errors.new_bad_request(f"node {name} is simulated: it has no kubelet to proxy to")
    host, kubelet_port = _node_address(node)
    return host, port or str(kubelet_port), _client(service).ssl_context()
