"""Liveness, readiness and startup probes: one worker task per probe per running container, as
upstream's prober.worker. exec runs through CRI ExecSync; httpGet and tcpSocket go from the host
to the pod IP. Results are kept per (pod uid, container name, probe kind) for the current
container ID; a change wakes the pod's worker, whose sync acts on it (restart, readiness)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from typing import Any

import aiohttp
import grpc

from kubelite.runtime.cri import CRIError, RuntimeClient

log = logging.getLogger(__name__)

KINDS = ("startupProbe", "livenessProbe", "readinessProbe")
LABEL = {"startupProbe": "Startup", "livenessProbe": "Liveness", "readinessProbe": "Readiness"}
PROBE_USER_AGENT = "kube-probe/1.32"


class ProbeResult:
    __slots__ = ("container_id", "success", "message")

    def __init__(self, container_id: str, success: bool, message: str = ""):
        self.container_id, self.success, self.message = container_id, success, message


async def run_probe(runtime: RuntimeClient, probe: dict, container: dict, container_id: str,
                    pod_ip: str) -> tuple[bool, str]:
    """One probe attempt: (success, failure message as upstream prints it in the Unhealthy event)."""
    timeout = int(probe.get("timeoutSeconds") or 1)
    if probe.get("exec"):
        cmd = list(probe["exec"].get("command") or [])
        try:
            r = await runtime.exec_sync(container_id, cmd, timeout)
        except CRIError as e:
            if e.code is not None and e.code.name == "DEADLINE_EXCEEDED":
                # upstream's remote runtime: fmt.Errorf("command %q timed out", strings.Join(cmd, " "))
                return False, f"command {json.dumps(' '.join(cmd))} timed out"
            return False, str(e)
        if r.exit_code == 0:
            return True, ""
        # upstream reports the command's output only, empty when there is none ("Liveness probe failed: ")
        return False, (r.stdout + r.stderr).decode(errors="replace")
    if probe.get("httpGet"):
        h = probe["httpGet"]
        port = _port(h.get("port"), container)
        host = h.get("host") or pod_ip or "127.0.0.1"
        scheme = (h.get("scheme") or "HTTP").lower()
        path = h.get("path") or "/"
        if not path.startswith("/"):
            path = "/" + path
        url = f"{scheme}://{host}:{port}{path}"
        headers = {x.get("name"): x.get("value", "") for x in h.get("httpHeaders") or [] if x.get("name")}
        headers.setdefault("User-Agent", PROBE_USER_AGENT)
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s, \
                    s.get(url, headers=headers, ssl=False, allow_redirects=True) as resp:
                if 200 <= resp.status < 400:
                    return True, ""
                return False, f"HTTP probe failed with statuscode: {resp.status}"
        except TimeoutError:
            return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        except aiohttp.ClientError as e:
            return False, f'Get "{url}": {_http_error(e, host, port)}'
    if probe.get("tcpSocket"):
        t = probe["tcpSocket"]
        port = _port(t.get("port"), container)
        host = t.get("host") or pod_ip or "127.0.0.1"
        try:
            _r, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            w.close()
            return True, ""
        except TimeoutError:
            return False, f"dial tcp {host}:{port}: i/o timeout"
        except OSError as e:  # worded as Go's net.Dial error, as upstream's prober reports it
            reason = os.strerror(e.errno).lower() if e.errno else str(e)
            return False, f"dial tcp {host}:{port}: connect: {reason}"
    if probe.get("grpc"):
        g = probe["grpc"]
        return await grpc_probe(pod_ip or "127.0.0.1", int(g.get("port") or 0), g.get("service") or "", timeout)
    return True, ""


def _http_error(e: aiohttp.ClientError, host: str, port: int) -> str:
    """An HTTP probe's transport error worded as Go's net/http client words it (upstream's prober
    puts that text in the Unhealthy event), not as aiohttp does."""
    if isinstance(e, aiohttp.ClientConnectorError):
        oe = e.os_error
        reason = os.strerror(oe.errno).lower() if oe.errno else str(oe)
        return f"dial tcp {host}:{port}: connect: {reason}"
    if isinstance(e, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError)):
        return "EOF"  # the server closed the connection before a whole response
    return str(e)


# grpc.health.v1.Health/Check, encoded by hand: the request is one string field (service = 1), the
# response one enum field (status = 1); no generated stubs needed for two scalar fields.
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_health_request(service: str) -> bytes:
    data = service.encode()
    return b"\x0a" + _varint(len(data)) + data if data else b""


def decode_health_status(data: bytes) -> int:
    """The `status` field of a HealthCheckResponse (0, UNKNOWN, when absent); other fields skipped."""
    i, status = 0, 0
    while i < len(data):
        key, i = _read_varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(data, i)
            if field == 1:
                status = value
        elif wire == 2:
            length, i = _read_varint(data, i)
            i += length
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            break
    return status


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while i < len(data):
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return value, i


def go_duration(seconds: float) -> str:
    """time.Duration's String() for whole seconds, as upstream's messages print timeouts: 1s, 1m30s."""
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    return f"{m}m{sec}s" if m else f"{sec}s"


async def grpc_probe(host: str, port: int, service: str, timeout: float) -> tuple[bool, str]:
    """Upstream's grpc prober: dial (blocking, plain text) and call Health/Check within `timeout`;
    SERVING succeeds, anything else fails with upstream's message."""
    addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    channel = grpc.aio.insecure_channel(addr, options=[("grpc.primary_user_agent", PROBE_USER_AGENT),
                                                       ("grpc.enable_retries", 0)])
    try:
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout)
        except TimeoutError:
            return False, (f'timeout: failed to connect service "{addr}" within {go_duration(timeout)}: '
                           "context deadline exceeded")
        check = channel.unary_unary(HEALTH_CHECK, request_serializer=encode_health_request,
                                    response_deserializer=decode_health_status)
        try:
            status = await check(service, timeout=max(0.001, deadline - loop.time()))
        except grpc.aio.AioRpcError as e:
            code = e.code()
            if code == grpc.StatusCode.UNIMPLEMENTED:
                return False, ("error: this server does not implement the grpc health protocol "
                               f"(grpc.health.v1.Health): {e.details() or ''}")
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return False, f"timeout: health rpc did not complete within {go_duration(timeout)}"
            return False, f"error: health rpc probe failed: {CRIError('Check', code, e.details() or '')}"
        if status != 1:
            return False, f'service unhealthy (responded with "{SERVING_STATUS.get(status, str(status))}")'
        return True, ""
    finally:
        await channel.close()


def _port(port: Any, container: dict) -> int:
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p.get("containerPort"))
    try:
        return int(port)
    except (TypeError, ValueError):
        return 0


class ProbeManager:
    def __init__(self, runtime: RuntimeClient, recorder: Any, on_change: Callable[[str], None]):
        self.runtime = runtime
        self.recorder = recorder
        self.on_change = on_change
        self.results: dict[tuple[str, str, str], ProbeResult] = {}
        self._workers: dict[tuple[str, str, str], tuple[str, asyncio.Task]] = {}

    def result(self, uid: str, container: str, kind: str, container_id: str) -> bool | None:
        r = self.results.get((uid, container, kind))
        if r is None or r.container_id != container_id:
            return None
        return r.success

    def ensure(self, pod: dict, running: dict[str, str], pod_ip: str) -> None:
        """Probe workers for exactly the running containers (name -> container ID) that have probes."""
        uid = pod["metadata"]["uid"]
        want = set()
        for c in (pod.get("spec") or {}).get("containers") or []:
            cid = running.get(c.get("name", ""))
            if not cid:
                continue
            for kind in KINDS:
                if c.get(kind):
                    key = (uid, c["name"], kind)
                    want.add(key)
                    cur = self._workers.get(key)
                    if cur is None or cur[0] != cid:
                        if cur is not None:
                            cur[1].cancel()
                        task = asyncio.get_running_loop().create_task(self._worker(pod, c, kind, cid, pod_ip))
                        self._workers[key] = (cid, task)
        for key in [k for k in self._workers if k[0] == uid and k not in want]:
            self._workers.pop(key)[1].cancel()

    def stop_pod(self, uid: str) -> None:
        for key in [k for k in self._workers if k[0] == uid]:
            self._workers.pop(key)[1].cancel()
        for key in [k for k in self.results if k[0] == uid]:
            del self.results[key]

    async def stop(self) -> None:
        tasks = [t for _cid, t in self._workers.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()

    async def _worker(self, pod: dict, container: dict, kind: str, cid: str, pod_ip: str) -> None:
        uid, name = pod["metadata"]["uid"], container["name"]
        probe = container[kind]
        period = max(1, int(probe.get("periodSeconds") or 10))
        success_threshold = max(1, int(probe.get("successThreshold") or 1))
        failure_threshold = max(1, int(probe.get("failureThreshold") or 3))
        key = (uid, name, kind)
        # initial results as upstream: liveness assumed healthy, readiness and startup not yet
        self._set(key, ProbeResult(cid, kind == "livenessProbe"))
        await asyncio.sleep(int(probe.get("initialDelaySeconds") or 0))
        successes = failures = 0
        ref = {**_ref(pod), "fieldPath": f"spec.containers{{{name}}}"}
        while True:
            if kind != "startupProbe":
                started = self.result(uid, name, "startupProbe", cid)
                if container.get("startupProbe") and not started:
                    await asyncio.sleep(period)
                    continue
            elif self.result(uid, name, kind, cid):
                return  # startup probes stop once they succeed
            try:
                ok, message = await run_probe(self.runtime, probe, container, cid, pod_ip)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a probe error counts as a failure
                ok, message = False, str(e)
            if ok:
                successes, failures = successes + 1, 0
                if successes >= success_threshold:
                    self._set(key, ProbeResult(cid, True))
            else:
                failures, successes = failures + 1, 0
                self.recorder.event(ref, "Warning", "Unhealthy", f"{LABEL[kind]} probe failed: {message}")
                if failures >= failure_threshold:
                    self._set(key, ProbeResult(cid, False, message))
                    if kind == "livenessProbe" or kind == "startupProbe":
                        return  # the container is about to be killed; its successor gets a new worker
            await asyncio.sleep(period)

    def _set(self, key: tuple[str, str, str], result: ProbeResult) -> None:
        old = self.results.get(key)
        self.results[key] = result
        if old is None or old.success != result.success or old.container_id != result.container_id:
            self.on_change(key[0])


def _ref(pod: dict) -> dict:
    meta = pod.get("metadata") or {}
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                                                           "uid": meta.get("uid")}}
