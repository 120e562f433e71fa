"""The kubelet's side of `portforward.k8s.io` (kubectl port-forward), over SPDY/3.

As upstream's kubelet streaming server: the client opens two streams per local connection, an
`error` stream and a `data` stream sharing a `requestID` and naming the pod `port`. Once both are
there we dial the port inside the pod's network namespace and copy bytes both ways; a failure is
written as text on the error stream. Closing the data stream (FIN) from the client half-closes the
pod connection; when the pod side ends we FIN both streams, which is what kubectl waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from kubelite.kubelet import spdy

log = logging.getLogger(__name__)

PROTOCOL = "portforward.k8s.io"
WS_TUNNEL_PROTOCOL = "SPDY/3.1+" + PROTOCOL  # client-go's tunnelling dialer prefixes the SPDY protocol
READ_CHUNK = 32 * 1024
PAIR_TIMEOUT = 30.0  # upstream's streamCreationTimeout

Dial = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@dataclass
class _Stream:
    id: int
    headers: dict[str, str]
    inbox: asyncio.Queue = field(default_factory=asyncio.Queue)  # bytes; None at the client's FIN


class PortForwardSession:
    """One client connection: frames in from `recv`, frames out through `send`, ports via `dial`."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], dial: Dial, pod_desc: str):
        self._send_raw = send
        self._dial = dial
        self._pod_desc = pod_desc  # "NAME, uid UID", as upstream's error text names the pod
        self._codec = spdy.Codec()
        self._lock = asyncio.Lock()
        self._streams: dict[int, _Stream] = {}
        self._pending: dict[str, dict[str, _Stream]] = {}
        self._tasks: dict[int, asyncio.Task] = {}
        self._last_stream = 0

    async def _send(self, build: Callable[[], bytes]) -> None:
        # frames are built under the lock: header compression state must follow the wire order
        async with self._lock:
            await self._send_raw(build())

    async def serve(self, incoming: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in incoming:
                for frame in self._codec.feed(chunk):
                    if not await self._on_frame(frame):
                        return
        except spdy.ProtocolError as e:
            log.info("port-forward: %s", e)
            with contextlib.suppress(Exception):
                await self._send(lambda: self._codec.goaway(self._last_stream, 1))
        finally:
            for t in list(self._tasks.values()):
                t.cancel()
            for t in list(self._tasks.values()):
                with contextlib.suppress(BaseException):
                    await t

    async def _on_frame(self, f: spdy.Frame) -> bool:
        if f.type == 0:
            st = self._streams.get(f.stream_id)
            if st is not None:
                if f.data:
                    st.inbox.put_nowait(f.data)
                if f.fin:
                    st.inbox.put_nowait(None)
        elif f.type == spdy.SYN_STREAM:
            await self._on_syn(f)
        elif f.type == spdy.RST_STREAM:
            st = self._streams.pop(f.stream_id, None)
            task = self._tasks.get(f.stream_id)
            if task is not None:
                task.cancel()
            elif st is not None:
                st.inbox.put_nowait(None)
        elif f.type == spdy.PING:
            await self._send(lambda: self._codec.ping(f.value))
        elif f.type == spdy.GOAWAY:
            return False
        return True

    async def _on_syn(self, f: spdy.Frame) -> None:
        self._last_stream = max(self._last_stream, f.stream_id)
        st = _Stream(f.stream_id, f.headers)
        self._streams[f.stream_id] = st
        await self._send(lambda: self._codec.syn_reply(f.stream_id))
        kind = f.headers.get("streamtype", "")
        request_id = f.headers.get("requestid") or str(f.stream_id if kind == "error" else f.stream_id - 2)
        if kind not in ("error", "data"):
            await self._send(lambda: self._codec.rst_stream(f.stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        pair = self._pending.setdefault(request_id, {})
        pair[kind] = st
        if "error" in pair and "data" in pair:
            del self._pending[request_id]
            task = asyncio.ensure_future(self._forward(pair["data"], pair["error"]))
            self._tasks[pair["data"].id] = task
            task.add_done_callback(lambda _t, sid=pair["data"].id: self._tasks.pop(sid, None))

    async def _forward(self, data: _Stream, error: _Stream) -> None:
        port_text = data.headers.get("port", "")
        try:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            await self._fail(data, error, f'invalid port header "{port_text}"')
            return
        try:
            reader, writer = await self._dial(port)
        except OSError as e:
            await self._fail(data, error, f"error forwarding port {port} to pod {self._pod_desc}: "
                                          f"{e.strerror or e}")
            return

        async def upstream() -> None:  # client -> pod
            while (chunk := await data.inbox.get()) is not None:
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        up = asyncio.ensure_future(upstream())
        try:
            while chunk := await reader.read(READ_CHUNK):
                await self._send(lambda c=chunk: self._codec.data(data.id, c))
        except (ConnectionError, OSError):
            pass
        finally:
            up.cancel()
            with contextlib.suppress(BaseException):
                await up
            writer.close()
            self._streams.pop(data.id, None)
            self._streams.pop(error.id, None)
        with contextlib.suppress(Exception):
            await self._send(lambda: self._codec.data(data.id, b"", fin=True) + self._codec.data(error.id, b"", fin=True))

    async def _fail(self, data: _Stream, error: _Stream, message: str) -> None:
        log.info("port-forward: %s", message)
        self._streams.pop(data.id, None)
        self._streams.pop(error.id, None)
        with contextlib.suppress(Exception):
            await self._send(lambda: self._codec.data(error.id, message.encode(), fin=True)
                             + self._codec.data(data.id, b"", fin=True))
