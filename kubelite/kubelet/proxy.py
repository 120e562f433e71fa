"""The API server's side of pods/log, exec, attach and portforward: validate as upstream's pod REST does, find the
pod's node, and stream from that node's kubelet over HTTPS with the API server's kubelet-client
certificate (the real apiserver -> kubelet path, even for the in-process kubelet).

Routing (kubelite/apiserver/handlers.py, before the `if method == "GET":` dispatch):
    if res.plural == "pods" and not res.group and t.subresource in ("log", "exec", "attach", "portforward"):
        from kubelite.kubelet import proxy
        return await proxy.handle(svc, request, t.namespace, t.name, t.subresource)

kubectl exec (1.32) opens a WebSocket (v5.channel.k8s.io) with GET; we accept it here and relay
frames to the kubelet's WebSocket, which relays them to containerd's streaming server. A plain
(SPDY) POST gets 400 "Upgrade request required"-style errors, so kubectl keeps to WebSocket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import ssl
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from kubelite.api import errors

log = logging.getLogger(__name__)

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                  "channel.k8s.io")
CLIENT_CN = "kube-apiserver-kubelet-client"


class KubeletClient:
    """How the API server reaches kubelets: the cluster CA and a client certificate it issues once."""

    def __init__(self, tls_dir: str):
        self.tls_dir = tls_dir
        self._ssl: ssl.SSLContext | None = None

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            from kubelite.apiserver.pki import PKI, issue_client_cert

            cert = os.path.join(self.tls_dir, "kubelet-client.crt")
            key = os.path.join(self.tls_dir, "kubelet-client.key")
            if not (os.path.exists(cert) and os.path.exists(key)):
                cert_pem, key_pem = issue_client_cert(PKI(self.tls_dir), CLIENT_CN, ["system:masters"])
                fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(key_pem)
                with open(cert, "wb") as f:
                    f.write(cert_pem)
            ctx = ssl.create_default_context(cafile=os.path.join(self.tls_dir, "ca.crt"))
            ctx.load_cert_chain(cert, key)
            self._ssl = ctx
        return self._ssl


def _client(service: Any) -> KubeletClient:
    kc = getattr(service, "kubelet_client", None)
    if kc is None:
        raise errors.StatusError(503, "ServiceUnavailable", "the API server has no kubelet client configured")
    return kc


async def _pod(service: Any, namespace: str, name: str) -> dict:
    res = service.registry.get("", "v1", "pods")
    return await service.get(res, namespace, name)


def _container_name(pod: dict, requested: str, what: str = "") -> str:
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    all_names = [c["name"] for c in (spec.get("containers") or [])] + \
        [c["name"] for c in (spec.get("initContainers") or [])] + \
        [c["name"] for c in (spec.get("ephemeralContainers") or [])]
    if not requested:
        containers = spec.get("containers") or []
        if len(containers) == 1:
            return containers[0]["name"]
        names = " ".join(c["name"] for c in containers)
        init = " ".join(c["name"] for c in spec.get("initContainers") or [])
        msg = f"a container name must be specified for pod {name}, choose one of: [{names}]"
        if init:
            msg += f" or one of the init containers: [{init}]"
        raise errors.new_bad_request(msg)
    if requested not in all_names:
        raise errors.new_bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _status_of(pod: dict, container: str) -> dict | None:
    st = pod.get("status") or {}
    for s in (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []) + \
            (st.get("ephemeralContainerStatuses") or []):
        if s.get("name") == container:
            return s
    return None


def _node_address(node: dict) -> tuple[str, int]:
    st = node.get("status") or {}
    addrs = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    host = addrs.get("InternalIP") or addrs.get("ExternalIP") or addrs.get("Hostname") or node["metadata"]["name"]
    port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250
    return host, int(port)


SIMULATED_LABEL = "kubelite.io/simulated"


async def _node_of(service: Any, pod: dict) -> dict:
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.new_bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")
    res = service.registry.get("", "v1", "nodes")
    return await service.get(res, None, node_name)


def _simulated(node: dict) -> bool:
    """Simulated nodes have no kubelet to dial: their containers print nothing and run nothing."""
    return (node["metadata"].get("labels") or {}).get(SIMULATED_LABEL) == "true"


async def _kubelet_base(service: Any, pod: dict) -> str:
    node = await _node_of(service, pod)
    if _simulated(node):
        raise errors.new_bad_request(
            f"pod {pod['metadata']['name']} runs on simulated node {node['metadata']['name']}: it has no containers "
            "to attach to or execute in")
    return kubelet_url(node)


def kubelet_url(node: dict) -> str:
    """https://HOST:PORT of a node's kubelet (its InternalIP and daemonEndpoints port)."""
    host, port = _node_address(node)
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{port}"


async def handle(service: Any, request: web.Request, namespace: str, name: str, subresource: str) -> web.StreamResponse:
    if subresource == "log":
        return await pod_log(service, request, namespace, name)
    if subresource == "attach":
        return await pod_attach(service, request, namespace, name)
    if subresource == "portforward":
        return await pod_portforward(service, request, namespace, name)
    return await pod_exec(service, request, namespace, name)


async def pod_log(service: Any, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
    """GET pods/{name}/log: upstream's LogREST (container defaulting and status checks) + kubelet proxy."""
    q = request.query
    pod = await _pod(service, namespace, name)
    container = _container_name(pod, q.get("container", ""))
    previous = q.get("previous") in ("true", "1")
    cs = _status_of(pod, container)
    if cs is not None:
        state, last = cs.get("state") or {}, cs.get("lastState") or {}
        if previous:
            if "terminated" not in last and not (cs.get("restartCount") or 0):
                raise errors.new_bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        elif "waiting" in state and "terminated" not in last and not cs.get("containerID"):
            reason = state["waiting"].get("reason") or ""
            msg = f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"):
                msg = (f'container "{container}" in pod "{name}" is waiting to start: trying and failing to pull '
                       f"image")
            raise errors.new_bad_request(msg)
    elif not previous:
        raise errors.new_bad_request(f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating')
    if _simulated(await _node_of(service, pod)):
        return web.Response(text="", content_type="text/plain")
    params = {k: q[k] for k in ("follow", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "previous",
                                "limitBytes") if k in q}
    url = f"{await _kubelet_base(service, pod)}/containerLogs/{namespace}/{name}/{container}"
    if params:
        url += "?" + urlencode(params)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
    try:
        upstream = await session.get(url, ssl=_client(service).ssl_context())
    except aiohttp.ClientError as e:
        await session.close()
        raise errors.StatusError(500, "InternalError", f"Get \"{url}\": {e}") from None
    try:
        if upstream.status != 200:
            text = (await upstream.text()).strip()
            if upstream.status == 400:
                raise errors.new_bad_request(text)
            if upstream.status == 404:
                raise errors.StatusError(404, "NotFound", text)
            raise errors.StatusError(upstream.status, "InternalError", text)
        ws = web.WebSocketResponse(protocols=LOG_WS_PROTOCOLS, max_msg_size=0)
        if ws.can_prepare(request).ok:
            return await _log_websocket(request, ws, upstream)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain", "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp
    finally:
        upstream.release()
        await session.close()


LOG_WS_PROTOCOLS = ("binary.k8s.io", "base64.binary.k8s.io")


async def _log_websocket(request: web.Request, ws: web.WebSocketResponse,
                         upstream: aiohttp.ClientResponse) -> web.WebSocketResponse:
    """A log read over a WebSocket, as upstream's StreamObject does with wsstream.NewReader: each
    chunk is one binary message, or base64 text under base64.binary.k8s.io; the end closes it."""
    await ws.prepare(request)
    b64 = ws.ws_protocol == "base64.binary.k8s.io"
    try:
        async for chunk in upstream.content.iter_any():
            if ws.closed:
                break
            if b64:
                await ws.send_str(base64.b64encode(chunk).decode())
            else:
                await ws.send_bytes(chunk)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    await ws.close()
    return ws


async def pod_exec(service: Any, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
    """GET pods/{name}/exec as a WebSocket (channel.k8s.io framing), relayed to the node's kubelet."""
    q = request.query
    pod = await _pod(service, namespace, name)
    container = _container_name(pod, q.get("container", ""))
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        raise errors.new_bad_request(f"cannot exec into a container in a completed pod; current phase is "
                                     f"{pod['status']['phase']}")
    cs = _status_of(pod, container)
    if cs is None:
        raise errors.new_bad_request(f"container {container} is not valid for pod {name}")
    if "running" not in (cs.get("state") or {}):
        return _kubelet_error(f'container not found ("{container}")')
    if not q.getall("command", []):
        raise errors.new_bad_request("you must specify at least 1 command")
    params = [(k, v) for k, v in q.items() if k in ("command", "stdin", "stdout", "stderr", "tty")]
    return await _relay_ws(service, request, pod, f"/exec/{namespace}/{name}/{container}?{urlencode(params)}",
                           EXEC_PROTOCOLS)


async def pod_attach(service: Any, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
    """GET pods/{name}/attach: upstream's AttachREST (streamLocation) + the kubelet's CRI Attach."""
    q = request.query
    pod = await _pod(service, namespace, name)
    container = _container_name(pod, q.get("container", ""))
    cs = _status_of(pod, container)
    if cs is None or not cs.get("containerID"):
        return _kubelet_error(f"container {container} not found in pod {name}_{namespace}")
    if "running" not in (cs.get("state") or {}):
        raise errors.new_bad_request(f"unable to upgrade connection: container {container} is not running")
    params = [(k, v) for k, v in q.items() if k in ("stdin", "stdout", "stderr", "tty")]
    return await _relay_ws(service, request, pod, f"/attach/{namespace}/{name}/{container}?{urlencode(params)}",
                           EXEC_PROTOCOLS)


def _kubelet_error(message: str) -> web.Response:
    """The kubelet's own refusal (streaming.WriteError: plain text, 500), which upstream's API server
    echoes as is: not being a Status, kubectl prints it as "error: unable to upgrade connection: ..."."""
    return web.Response(status=500, text=message, content_type="text/plain")


async def pod_portforward(service: Any, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
    """GET pods/{name}/portforward: SPDY tunnelled in a WebSocket (kubectl 1.32's first choice), relayed
    byte for byte to the kubelet, which speaks portforward.k8s.io itself."""
    from kubelite.kubelet.portforward import WS_TUNNEL_PROTOCOL

    pod = await _pod(service, namespace, name)
    return await _relay_ws(service, request, pod, f"/portForward/{namespace}/{name}", (WS_TUNNEL_PROTOCOL,))


async def _relay_ws(service: Any, request: web.Request, pod: dict, path: str,
                    protocols: tuple[str, ...]) -> web.StreamResponse:
    """Accept the caller's WebSocket and pump frames to the same path on the pod's kubelet."""
    # the node first: kubectl retries a failed WebSocket upgrade with SPDY, and shows that answer
    url = f"{await _kubelet_base(service, pod)}{path}".replace("https://", "wss://", 1)
    ws = web.WebSocketResponse(protocols=protocols, max_msg_size=0, autoping=True)
    if not ws.can_prepare(request).ok:
        raise errors.new_bad_request("Upgrade request required")
    session = aiohttp.ClientSession()
    try:
        try:
            upstream = await session.ws_connect(url, protocols=protocols, ssl=_client(service).ssl_context(),
                                                max_msg_size=0)
        except aiohttp.WSServerHandshakeError as e:
            raise errors.new_bad_request(f"unable to upgrade connection: {e.message}") from None
        except aiohttp.ClientError as e:
            raise errors.StatusError(500, "InternalError", f"unable to upgrade connection: {e}") from None
        await ws.prepare(request)
        async with upstream:
            await _pump(ws, upstream)
        await ws.close()
        return ws
    finally:
        await session.close()


async def _pump(client_ws: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    async def down() -> None:
        async for msg in upstream:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await client_ws.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await client_ws.send_str(msg.data)
            else:
                break

    async def up() -> None:
        async for msg in client_ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await upstream.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await upstream.send_str(msg.data)
            else:
                break

    t_down, t_up = asyncio.ensure_future(down()), asyncio.ensure_future(up())
    await asyncio.wait({t_down, t_up}, return_when=asyncio.FIRST_COMPLETED)
    if not t_down.done():
        await upstream.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(t_down, 5)
    t_up.cancel()
    with contextlib.suppress(BaseException):
        await t_up
