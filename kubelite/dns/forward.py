"""Forwarding of names outside the cluster zone to upstream resolvers (CoreDNS's forward plugin).

Upstreams are tried in turn, each with a timeout, over UDP (TCP when the client asked over TCP);
the caller answers SERVFAIL when none responds. Each forwarded query gets a fresh random ID and
the response is checked against it, so a late or spoofed answer is never passed on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct

log = logging.getLogger(__name__)

Upstream = tuple[str, int]


def parse_target(target: str) -> list[Upstream]:
    """A Corefile forward target: `/etc/resolv.conf` (its nameservers), `IP`, `IP:port`, `dns://IP:port`."""
    target = target.removeprefix("dns://")
    if target.startswith("/"):
        return resolv_conf_nameservers(target)
    if target.startswith("["):  # [v6]:port
        host, _, port = target[1:].partition("]:")
        return [(host, int(port or 53))]
    if target.count(":") == 1:
        host, port = target.split(":")
        return [(host, int(port))]
    return [(target, 53)]


def resolv_conf_nameservers(path: str = "/etc/resolv.conf") -> list[Upstream]:
    out: list[Upstream] = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append((parts[1].split("%")[0], 53))
    except OSError as e:
        log.warning("dns: cannot read %s: %s", path, e)
    return out


class _OneShot(asyncio.DatagramProtocol):
    def __init__(self, qid: bytes):
        self.qid = qid
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if data[:2] == self.qid and not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


class Forwarder:
    def __init__(self, upstreams: list[Upstream], timeout: float = 2.0, max_concurrent: int = 1000):
        self.upstreams = upstreams
        self.timeout = timeout
        self.max_concurrent = max_concurrent
        self._inflight = 0

    async def query(self, packet: bytes, tcp: bool = False) -> bytes | None:
        """The upstream's response to `packet` (with the client's ID put back), or None."""
        if not self.upstreams or self._inflight >= self.max_concurrent or len(packet) < 12:
            return None
        self._inflight += 1
        try:
            for upstream in self.upstreams:
                qid = os.urandom(2)
                out = qid + packet[2:]
                try:
                    if tcp:
                        resp = await asyncio.wait_for(self._tcp(upstream, out), self.timeout)
                    else:
                        resp = await self._udp(upstream, out, qid)
                except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                    log.debug("dns: upstream %s:%d failed: %r", upstream[0], upstream[1], e)
                    continue
                if resp is not None and len(resp) >= 12 and resp[:2] == qid:
                    return packet[:2] + resp[2:]
            return None
        finally:
            self._inflight -= 1

    async def _udp(self, upstream: Upstream, packet: bytes, qid: bytes) -> bytes | None:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(lambda: _OneShot(qid), remote_addr=upstream)
        try:
            transport.sendto(packet)
            return await asyncio.wait_for(proto.done, self.timeout)
        finally:
            transport.close()

    async def _tcp(self, upstream: Upstream, packet: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*upstream)
        try:
            writer.write(struct.pack("!H", len(packet)) + packet)
            await writer.drain()
            (n,) = struct.unpack("!H", await reader.readexactly(2))
            return await reader.readexactly(n)
        finally:
            writer.close()
