"""Bridge a channel.k8s.io WebSocket (kubectl exec/attach/cp, v4/v5) to the runtime's streaming
server over SPDY, the protocol upstream's kubelet uses with CRI runtimes.

Why not WebSocket to containerd too: containerd's streaming server speaks at most
v4.channel.k8s.io, which has no way to close stdin alone; v5's CLOSE frame (channel 255) must
become a half-close, which SPDY has (a FIN on the stdin stream). Without it `kubectl cp` into a
pod and `echo x | kubectl exec -i ... cat` never end.

Streams follow client-go's v4 protocol: error, then stdin/stdout/stderr as requested, then resize
when a TTY is used; each carries a `streamType` header.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from kubelite.kubelet import spdy

log = logging.getLogger(__name__)

STREAM_PROTOCOL = "v4.channel.k8s.io"
CHANNEL = {"stdin": 0, "stdout": 1, "stderr": 2, "error": 3, "resize": 4}
CLOSE_CHANNEL = 255
READ_CHUNK = 64 * 1024


class UpgradeError(Exception):
    """The runtime refused the SPDY upgrade."""


async def _upgrade(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    u = urlsplit(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(u.hostname, port, ssl=(u.scheme == "https") or None), 10)
    path = u.path + (f"?{u.query}" if u.query else "")
    writer.write((f"POST {path} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                  f"X-Stream-Protocol-Version: {STREAM_PROTOCOL}\r\nContent-Length: 0\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    if " 101 " not in status + " ":
        body = b""
        with contextlib.suppress(Exception):
            body = await asyncio.wait_for(reader.read(4096), 2)
        writer.close()
        raise UpgradeError(f"{status}: {body.decode(errors='replace').strip()}")
    return reader, writer


async def bridge(client_ws: web.WebSocketResponse, runtime_url: str, *, stdin: bool, stdout: bool, stderr: bool,
                 tty: bool) -> None:
    """Serve one exec/attach session: `client_ws` is already prepared (channel.k8s.io framing)."""
    try:
        reader, writer = await _upgrade(runtime_url)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, UpgradeError) as e:
        await client_ws.send_bytes(bytes([CHANNEL["error"]]) + _failure(f"unable to upgrade connection: {e}"))
        return
    codec = spdy.Codec()
    kinds = ["error"] + [k for k, on in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr and not tty),
                                          ("resize", tty)) if on]
    ids = {kind: 1 + 2 * i for i, kind in enumerate(kinds)}
    by_id = {v: k for k, v in ids.items()}
    writer.write(b"".join(codec.syn_stream(ids[k], {"streamType": k}) for k in kinds))
    await writer.drain()
    open_out = {k for k in kinds if k in ("error", "stdout", "stderr")}

    async def down() -> None:  # runtime -> caller
        while open_out:
            chunk = await reader.read(READ_CHUNK)
            if not chunk:
                return
            for f in codec.feed(chunk):
                kind = by_id.get(f.stream_id, "")
                if f.type == 0 and kind in open_out:
                    if f.data:
                        await client_ws.send_bytes(bytes([CHANNEL[kind]]) + f.data)
                    if f.fin:
                        open_out.discard(kind)
                elif f.type == spdy.RST_STREAM:
                    open_out.discard(kind)
                elif f.type == spdy.PING:
                    writer.write(codec.ping(f.value))
                elif f.type == spdy.GOAWAY:
                    return

    async def up() -> None:  # caller -> runtime
        async for msg in client_ws:
            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR):
                    break
                continue
            channel, payload = msg.data[0], msg.data[1:]
            if channel == CLOSE_CHANNEL:
                if payload[:1] == bytes([CHANNEL["stdin"]]) and "stdin" in ids:
                    writer.write(codec.data(ids["stdin"], b"", fin=True))
            elif channel == CHANNEL["stdin"] and "stdin" in ids and payload:
                writer.write(codec.data(ids["stdin"], payload))
            elif channel == CHANNEL["resize"] and "resize" in ids and payload:
                writer.write(codec.data(ids["resize"], payload))
            await writer.drain()

    t_down, t_up = asyncio.ensure_future(down()), asyncio.ensure_future(up())
    try:
        await asyncio.wait({t_down, t_up}, return_when=asyncio.FIRST_COMPLETED)
        if t_up.done() and not t_down.done():
            # the caller went away: end the session so the runtime stops the streams (stdin closes)
            with contextlib.suppress(Exception):
                writer.write(codec.goaway(0))
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(t_down), 5)
    except spdy.ProtocolError as e:
        log.info("exec/attach stream: %s", e)
    finally:
        for t in (t_down, t_up):
            t.cancel()
            with contextlib.suppress(BaseException):
                await t
        writer.close()


def _failure(message: str) -> bytes:
    import orjson

    return orjson.dumps({"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
                         "code": 500})
