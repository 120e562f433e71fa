"""The kubelet's HTTPS API (port 10250): container logs, exec, attach and port-forward, for the API
server only.

TLS with a serving certificate from the cluster CA; clients must present a certificate signed by
the same CA (the API server's kubelet-client certificate), as `--client-ca-file` does upstream.
Exec and attach are WebSockets (channel.k8s.io v5/v4 framing) bridged to the runtime's streaming
URL from CRI Exec/Attach over SPDY (kubelite/kubelet/remotecommand.py). Port-forward is served here (kubelite/kubelet/portforward.py), not by the runtime.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import ssl
import time
from typing import Any

import aiohttp
from aiohttp import web

from kubelite.kubelet.logs import LogOptions, stream_log
from kubelite.kubelet.netns import netns_path_from_info, open_connection
from kubelite.kubelet.portforward import WS_TUNNEL_PROTOCOL, PortForwardSession
from kubelite.kubelet.remotecommand import bridge
from kubelite.runtime.cri import CRIError, RuntimeClient, pb

log = logging.getLogger(__name__)

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                  "channel.k8s.io")


def ensure_serving_cert(tls_dir: str, out_dir: str, node_name: str, ips: list[str]) -> tuple[str, str]:
    """kubelet.crt/key in out_dir, issued by the cluster CA for the node's names and addresses."""
    from kubelite.apiserver.pki import PKI, issue_serving_cert

    cert, key = os.path.join(out_dir, "kubelet.crt"), os.path.join(out_dir, "kubelet.key")
    sans_file = os.path.join(out_dir, "kubelet.sans")
    sans = sorted({node_name, "localhost", "127.0.0.1", *[i for i in ips if i]})
    try:
        with open(sans_file) as f:
            if f.read() == ",".join(sans) and os.path.exists(cert) and os.path.exists(key):
                return cert, key
    except OSError:
        pass
    os.makedirs(out_dir, mode=0o700, exist_ok=True)
    cert_pem, key_pem = issue_serving_cert(PKI(tls_dir), f"system:node:{node_name}", sans)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    with open(cert, "wb") as f:
        f.write(cert_pem)
    with open(sans_file, "w") as f:
        f.write(",".join(sans))
    return cert, key


class KubeletServer:
    def __init__(self, kubelet: Any, runtime: RuntimeClient, *, bind: str, port: int, cert: str, key: str, ca: str):
        self.kubelet = kubelet
        self.runtime = runtime
        self.bind, self.port = bind, port
        self.cert, self.key, self.ca = cert, key, ca
        self._runner: web.AppRunner | None = None
        self.log_root = "/var/log"

    async def start(self) -> int:
        app = web.Application()
        app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        app.router.add_route("*", "/exec/{namespace}/{pod}/{container}", self.exec)
        app.router.add_route("*", "/attach/{namespace}/{pod}/{container}", self.attach)
        app.router.add_route("*", "/portForward/{namespace}/{pod}", self.port_forward)
        app.router.add_get("/pods", self.pods)
        app.router.add_get("/logs", self.node_logs)
        app.router.add_get("/logs/{path:.*}", self.node_logs)
        from kubelite.kubelet import stats  # the resource metrics endpoint (metrics server's scrape target)

        resource_stats = stats.ResourceStats(self.runtime)
        app.router.add_get("/metrics/resource", lambda r: stats.handle(resource_stats, r))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        ctx.load_verify_locations(cafile=self.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port, ssl_context=ctx)
        await site.start()
        sock = site._server.sockets[0] if site._server and site._server.sockets else None  # type: ignore[union-attr]
        if sock is not None:
            self.port = sock.getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def node_logs(self, request: web.Request) -> web.StreamResponse:
        """The kubelet's /logs/: the node's /var/log served as a file server (a directory is an HTML
        listing, as Go's http.FileServer writes it), which `nodes/NAME/proxy/logs/` reaches."""
        if request.path == "/logs":
            return web.Response(status=301, headers={"Location": "/logs/"})
        root = os.path.realpath(self.log_root)
        target = os.path.realpath(os.path.join(root, request.match_info.get("path", "")))
        if target != root and not target.startswith(root + os.sep):
            raise web.HTTPNotFound(text="404 page not found")
        if os.path.isdir(target):
            names = await asyncio.to_thread(_listing, target)
            body = "<pre>\n" + "".join(f'<a href="{html.escape(n)}">{html.escape(n)}</a>\n' for n in names) + \
                "</pre>\n"
            return web.Response(text=body, content_type="text/html")
        if not os.path.isfile(target):
            raise web.HTTPNotFound(text="404 page not found")
        return web.FileResponse(target)

    async def pods(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                                  "items": self.kubelet.pods()})

    async def _container(self, namespace: str, pod_name: str, container: str, previous: bool = False
                         ) -> pb.ContainerStatus:
        pod = self.kubelet.get_pod(namespace, pod_name)
        if pod is None:
            raise web.HTTPNotFound(text=f'pod "{pod_name}" not found')
        uid = pod["metadata"]["uid"]
        found = await self.runtime.list_containers({"io.kubernetes.pod.uid": uid,
                                                    "io.kubernetes.container.name": container})
        found.sort(key=lambda c: (c.metadata.attempt, c.created_at), reverse=True)
        idx = 1 if previous else 0
        if len(found) <= idx:
            if previous:
                raise web.HTTPBadRequest(text=f'previous terminated container "{container}" in pod "{pod_name}" '
                                              f"not found")
            raise web.HTTPBadRequest(text=f'container "{container}" in pod "{pod_name}" is waiting to start: '
                                          f"ContainerCreating")
        return await self.runtime.container_status(found[idx].id)

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        m, q = request.match_info, request.query
        cs = await self._container(m["namespace"], m["pod"], m["container"], q.get("previous") in ("true", "1"))
        opts = LogOptions(follow=q.get("follow") in ("true", "1"), timestamps=q.get("timestamps") in ("true", "1"))
        if q.get("tailLines"):
            opts.tail_lines = int(q["tailLines"])
        if q.get("limitBytes"):
            opts.limit_bytes = int(q["limitBytes"])
        if q.get("sinceSeconds"):
            opts.since_time = time.time() - int(q["sinceSeconds"])
        elif q.get("sinceTime"):
            from datetime import datetime

            opts.since_time = datetime.fromisoformat(q["sinceTime"].replace("Z", "+00:00")).timestamp()
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        cid = cs.id

        async def running() -> bool:
            try:
                return (await self.runtime.container_status(cid)).state == pb.CONTAINER_RUNNING
            except CRIError:
                return False

        try:
            await stream_log(cs.log_path, resp.write, opts, running)
        except (ConnectionResetError, asyncio.CancelledError):
            return resp
        await resp.write_eof()
        return resp

    async def exec(self, request: web.Request) -> web.StreamResponse:
        m, q = request.match_info, request.query
        cs = await self._container(m["namespace"], m["pod"], m["container"])
        if cs.state != pb.CONTAINER_RUNNING:
            raise web.HTTPBadRequest(text=f"container {m['container']} is not running")
        cmd = q.getall("command", [])
        if not cmd:
            raise web.HTTPBadRequest(text="you must specify at least 1 command")

        def flag(name: str, default: bool = False) -> bool:
            v = q.get(name)
            return default if v is None else v in ("true", "1")

        tty = flag("tty")
        streams = {"stdin": flag("stdin"), "stdout": flag("stdout", True), "stderr": flag("stderr", not tty) and not tty}
        url = await self.runtime.exec(cs.id, cmd, tty=tty, **streams)
        return await _relay_to(request, url, tty=tty, **streams)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """CRI Attach: the container's own stdio (created with stdin/tty from the pod spec)."""
        m, q = request.match_info, request.query
        cs = await self._container(m["namespace"], m["pod"], m["container"])
        if cs.state != pb.CONTAINER_RUNNING:
            raise web.HTTPBadRequest(text=f"container {m['container']} is not running")

        def flag(name: str, default: bool = False) -> bool:
            v = q.get(name)
            return default if v is None else v in ("true", "1")

        tty = flag("tty")
        streams = {"stdin": flag("stdin"), "stdout": flag("stdout", True), "stderr": flag("stderr", not tty) and not tty}
        url = await self.runtime.attach(cs.id, tty=tty, **streams)
        return await _relay_to(request, url, tty=tty, **streams)

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        """portforward.k8s.io (SPDY/3) tunnelled in WebSocket binary messages, as kubectl 1.32 dials it."""
        m = request.match_info
        pod = self.kubelet.get_pod(m["namespace"], m["pod"])
        if pod is None:
            raise web.HTTPNotFound(text=f'pod "{m["pod"]}" not found')
        netns, host = await self._pod_network(pod)
        ws = web.WebSocketResponse(protocols=(WS_TUNNEL_PROTOCOL,), max_msg_size=0, autoping=True)
        if not ws.can_prepare(request).ok:
            raise web.HTTPBadRequest(text="Upgrade request required")
        await ws.prepare(request)

        async def incoming():  # the tunnelled SPDY byte stream
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    yield msg.data
                elif msg.type != aiohttp.WSMsgType.TEXT:
                    break

        session = PortForwardSession(ws.send_bytes, lambda port: open_connection(netns, host, port),
                                     f"{m['pod']}_{m['namespace']}, uid {pod['metadata']['uid']}")
        await session.serve(incoming())
        await ws.close()
        return ws

    async def _pod_network(self, pod: dict) -> tuple[str, str]:
        """(netns path, address) to dial a pod's ports from: its loopback inside its namespace."""
        if (pod.get("spec") or {}).get("hostNetwork"):
            return "", "127.0.0.1"
        sandboxes = await self.runtime.list_pod_sandbox({"io.kubernetes.pod.uid": pod["metadata"]["uid"]},
                                                        state=pb.SANDBOX_READY)
        if not sandboxes:
            raise web.HTTPBadRequest(text=f"pod {pod['metadata']['name']} has no running sandbox")
        sandboxes.sort(key=lambda s: s.created_at, reverse=True)
        status, info = await self.runtime.pod_sandbox_status_verbose(sandboxes[0].id)
        path = netns_path_from_info(info)
        if path:
            return path, "127.0.0.1"
        return "", status.network.ip  # no namespace path from this runtime: the pod IP on the bridge


async def _relay_to(request: web.Request, runtime_url: str, *, stdin: bool, stdout: bool, stderr: bool,
                    tty: bool) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, max_msg_size=0, autoping=True)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="Upgrade request required")
    await ws.prepare(request)
    await bridge(ws, runtime_url, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
    await ws.close()
    return ws


def _listing(directory: str) -> list[str]:
    out = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        out.append(entry.name + ("/" if entry.is_dir() else ""))
    return out
