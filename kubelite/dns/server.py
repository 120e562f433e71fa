"""The asyncio DNS server: UDP and TCP on one address, cluster answers from memory, others forwarded.

Cluster-zone answers are computed synchronously from the watch-fed cache (no I/O), and packed
answers are memoised by the query's bytes after its ID, so a repeated query costs one dict lookup.
A change in the cluster (the records' generation moves) drops only the answers computed from what
changed (a service, an address: `Answer.deps`), so in a busy cluster, where some EndpointSlice
changes every few milliseconds, the memo keeps answering the rest. Only forwarding and CNAME
chasing go async. UDP answers larger than the client's buffer (512, or its EDNS size) come back truncated
(TC) so the client retries over TCP.

A query that misses the memo is read and answered without dnslib's object model when it is an
ordinary one (one IN question of plain labels, at most an OPT): `parse_plain_query` and
`_pack_plain` produce the same bytes as the general path at about half its cost.

The UDP socket's buffers are raised (`UDP_BUFFER`): a burst that arrives while the process waits
for a CPU, or while the event loop finishes an API request, queues instead of being dropped (a
dropped query costs the client a retry seconds later). UDP stays on the event loop: a thread of
its own would need the GIL for every packet and, beside a busy loop, get it only every switch
interval (5 ms), which measured no better.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import struct
from collections.abc import Callable
from typing import Any

from dnslib import EDNS0, OPCODE, QTYPE, RCODE, DNSError, DNSRecord
from dnslib.label import DNSBuffer

from kubelite.dns.forward import Forwarder
from kubelite.dns.resolver import Answer, KubernetesResolver

log = logging.getLogger(__name__)

DepKey = tuple[str, ...]

CACHE_MAX = 50_000
EDNS_SIZE = 1232
TCP_IDLE = 10.0
UDP_BUFFER = 4 << 20  # bytes: about 5,000 queries, a second's worth at the target rate


_LABEL = re.compile(rb"[A-Za-z0-9_*-]{1,63}")
_REPLY_CLEAR = 0x8000 | 0x0400 | 0x0200 | 0x0080 | 0x000F  # QR, AA, TC, RA, RCODE


def parse_plain_query(data: bytes) -> tuple[str, int, int, int | None] | None:
    """(qname, qtype, question end, EDNS UDP size or None) of an ordinary query (one IN question
    of plain hostname labels, at most an OPT record besides), read without building dnslib objects;
    None for anything else, which takes the general path."""
    n = len(data)
    if n < 17 or data[2] & 0xF8:  # QR or a non-QUERY opcode
        return None
    qd, an, ns, ar = struct.unpack_from("!HHHH", data, 4)
    if qd != 1 or an or ns or ar > 1:
        return None
    i, labels = 12, []
    while True:
        ln = data[i]
        if ln == 0:
            i += 1
            break
        label = data[i + 1:i + 1 + ln]
        if ln > 63 or not _LABEL.fullmatch(label):
            return None
        labels.append(label)
        i += 1 + ln
        if i >= n:
            return None
    if not labels or i + 4 > n:
        return None
    qtype, qclass = struct.unpack_from("!HH", data, i)
    qend = i + 4
    if qclass != 1:
        return None
    udp = None
    if ar:
        if qend + 11 > n or data[qend] != 0:
            return None
        rtype, udp, _, rdlen = struct.unpack_from("!HHIH", data, qend + 1)
        if rtype != QTYPE.OPT or qend + 11 + rdlen != n:
            return None
    elif qend != n:
        return None
    return b".".join(labels).decode() + ".", qtype, qend, udp


def _header_only(data: bytes, rcode: int) -> bytes | None:
    """A reply echoing the query's ID and question with an error code, for packets we cannot parse."""
    if len(data) < 12:
        return None
    flags = 0x8000 | (data[2] & 0x79) << 8 | rcode  # QR, opcode and RD copied
    return data[:2] + struct.pack("!HHHHH", flags, 0, 0, 0, 0)


class DNSServer:
    def __init__(self, resolver: KubernetesResolver, forwarder: Forwarder, generation: Callable[[], int],
                 changes: Callable[[], set[DepKey] | None] | None = None):
        """`changes` says what changed since it was last called (None: anything); without it, any
        change of `generation` empties the memo."""
        self.resolver = resolver
        self.forwarder = forwarder
        self._generation = generation
        self._changes = changes
        self._cache_gen = -1
        self._cache: dict[bool, dict[bytes, bytes]] = {False: {}, True: {}}
        self._by_dep: dict[DepKey, set[tuple[bool, bytes]]] = {}  # change key -> memo entries built from it
        self._anything: set[tuple[bool, bytes]] = set()  # entries that depend on any change
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self.address: tuple[str, int] | None = None

    # ---------------------------------------------------------------- lifecycle
    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind UDP first (port 0 picks one), then TCP on the same port; with port 0, a TCP port
        already taken by someone else means trying another UDP port."""
        loop = asyncio.get_running_loop()
        for attempt in range(20):
            transport, _ = await loop.create_datagram_endpoint(lambda: _UDPProtocol(self), local_addr=(host, port))
            _grow_buffers(transport.get_extra_info("socket"))
            bound = transport.get_extra_info("sockname")
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, bound[0], bound[1], reuse_address=True)
            except OSError:
                transport.close()
                if port != 0 or attempt == 19:
                    raise
                continue
            self._udp = transport
            self.address = (bound[0], bound[1])
            return self.address
        raise AssertionError("unreachable")

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def invalidate(self) -> None:
        self._cache[False].clear()
        self._cache[True].clear()
        self._by_dep.clear()
        self._anything.clear()

    def _forget(self, changed: set[DepKey] | None) -> None:
        """Drop the memoised answers that `changed` may affect."""
        if changed is None:
            self.invalidate()
            return
        for entries in (self._anything, *(self._by_dep.pop(k, ()) for k in changed)):
            for tcp, key in entries:
                self._cache[tcp].pop(key, None)
        self._anything.clear()

    def _remember(self, tcp: bool, key: bytes, out: bytes, deps: set[DepKey] | None) -> None:
        cache = self._cache[tcp]
        if len(cache) >= CACHE_MAX:
            self.invalidate()
        cache[key] = out
        if deps is None:
            self._anything.add((tcp, key))
        else:
            for d in deps:
                self._by_dep.setdefault(d, set()).add((tcp, key))

    # ---------------------------------------------------------------- query handling
    def answer_now(self, data: bytes, tcp: bool) -> bytes | DNSRecord | None:
        """The packed answer if it needs no I/O; else the parsed request for `answer_later`; None to drop."""
        gen = self._generation()
        if gen != self._cache_gen:
            changed = self._changes() if self._changes is not None else None
            self._forget(changed if self._cache_gen >= 0 else None)
            self._cache_gen = gen
        cache = self._cache[tcp]
        hit = cache.get(data[2:])
        if hit is not None:
            return data[:2] + hit
        plain = parse_plain_query(data)
        if plain is not None:
            qname, qtype, qend, udp = plain
            ans = self.resolver.resolve(qname, qtype)
            if not (ans.forward or ans.chase):
                out = self._pack_plain(data, qname, qtype, qend, udp, ans, tcp)
                if ans.cacheable:
                    self._remember(tcp, data[2:], out[2:], ans.deps)
                return out
        try:
            request = DNSRecord.parse(data)
        except (DNSError, Exception):
            return _header_only(data, RCODE.FORMERR)
        if request.header.qr:
            return None
        if request.header.opcode != OPCODE.QUERY:
            return _header_only(data, RCODE.NOTIMP)
        if len(request.questions) != 1:
            return _header_only(data, RCODE.FORMERR)
        q = request.questions[0]
        ans = self.resolver.resolve(str(q.qname), q.qtype)
        if ans.forward or ans.chase:
            return request
        out = self._pack(request, ans, tcp)
        if ans.cacheable:
            self._remember(tcp, data[2:], out[2:], ans.deps)
        return out

    async def answer_later(self, data: bytes, request: DNSRecord, tcp: bool) -> bytes:
        q = request.questions[0]
        ans = self.resolver.resolve(str(q.qname), q.qtype)
        if ans.forward:
            resp = await self.forwarder.query(data, tcp)
            if resp is not None:
                return resp
            return self._pack(request, Answer(rcode=RCODE.SERVFAIL), tcp, authoritative=False)
        if ans.chase:
            resp = await self.forwarder.query(DNSRecord.question(ans.chase, QTYPE[q.qtype]).pack(), tcp)
            if resp is not None:
                try:
                    upstream = DNSRecord.parse(resp)
                    if upstream.header.rcode == RCODE.NOERROR:
                        ans.answers += upstream.rr
                except DNSError:
                    pass
        return self._pack(request, ans, tcp)

    @staticmethod
    def _pack_plain(data: bytes, qname: str, qtype: int, qend: int, udp: int | None, ans: Answer,
                    tcp: bool) -> bytes:
        """The reply `_pack` would give, written straight into dnslib's buffer (its name
        compression, its record encoders) without building the request and reply objects."""
        flags = ((data[2] << 8 | data[3]) & ~_REPLY_CLEAR) | 0x8000 | 0x0400 | ans.rcode
        additional = ans.additional + ([EDNS0(udp_len=EDNS_SIZE)] if udp is not None else [])
        buf = DNSBuffer()
        buf.append(data[:2])
        buf.pack("!HHHHH", flags, 1, len(ans.answers), len(ans.authority), len(additional))
        buf.encode_name(qname)
        buf.pack("!HH", qtype, 1)
        for section in (ans.answers, ans.authority, additional):
            for rr in section:
                rr.pack(buf)
        out = bytes(buf.data)
        limit = 65535 if tcp else max(512, min(udp, 65535)) if udp is not None else 512
        if len(out) > limit:
            head = struct.pack("!HHHHH", flags | 0x0200, 1, 0, 0, 1 if udp is not None else 0)
            out = data[:2] + head + data[12:qend]
            if udp is not None:
                opt = DNSBuffer()
                EDNS0(udp_len=EDNS_SIZE).pack(opt)
                out += bytes(opt.data)
        return out

    def _pack(self, request: DNSRecord, ans: Answer, tcp: bool, authoritative: bool = True) -> bytes:
        reply = request.reply(ra=0, aa=1 if authoritative else 0)
        reply.header.rcode = ans.rcode
        for rr in ans.answers:
            reply.add_answer(rr)
        for rr in ans.authority:
            reply.add_auth(rr)
        for rr in ans.additional:
            reply.add_ar(rr)
        opt = next((rr for rr in request.ar if rr.rtype == QTYPE.OPT), None)
        if opt is not None:
            reply.add_ar(EDNS0(udp_len=EDNS_SIZE))
        out = reply.pack()
        limit = 65535 if tcp else max(512, min(opt.rclass, 65535)) if opt is not None else 512
        if len(out) > limit:
            trunc = request.reply(ra=0, aa=1 if authoritative else 0)
            trunc.header.tc = 1
            trunc.header.rcode = ans.rcode
            if opt is not None:
                trunc.add_ar(EDNS0(udp_len=EDNS_SIZE))
            out = trunc.pack()
        return out

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    (n,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), TCP_IDLE))
                    data = await asyncio.wait_for(reader.readexactly(n), TCP_IDLE)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    return
                out = self.answer_now(data, tcp=True)
                if isinstance(out, DNSRecord):
                    out = await self.answer_later(data, out, tcp=True)
                if out is None:
                    continue
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except Exception:
            log.exception("dns: tcp connection failed")
        finally:
            writer.close()


def _grow_buffers(sock: socket.socket | None) -> None:
    """Receive and send buffers of `UDP_BUFFER` bytes: SO_*BUFFORCE as root, else the plain options
    (which the kernel caps at net.core.rmem_max / wmem_max)."""
    if sock is None:
        return
    for forced, plain in ((getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF),
                          (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF)):
        for opt in (forced, plain):
            if opt is None:
                continue
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, UDP_BUFFER)
                break


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer):
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            out = self.server.answer_now(data, tcp=False)
        except Exception:
            log.exception("dns: query failed")
            out = _header_only(data, RCODE.SERVFAIL)
        if isinstance(out, DNSRecord):
            self.server.spawn(self._later(data, out, addr))
        elif out is not None and self.transport is not None:
            self.transport.sendto(out, addr)

    async def _later(self, data: bytes, request: DNSRecord, addr: tuple[str, int]) -> None:
        try:
            out = await self.server.answer_later(data, request, tcp=False)
        except Exception:
            log.exception("dns: query failed")
            out = _header_only(data, RCODE.SERVFAIL)
        if out is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("dns: udp error %r", exc)
