"""SPDY/3 framing, the multiplexing under kubectl port-forward.

kubectl 1.32 speaks `portforward.k8s.io` over SPDY/3.1 (moby/spdystream, frame version 3): either
tunnelled in WebSocket binary messages (subprotocol `SPDY/3.1+portforward.k8s.io`, its first
choice) or after a plain HTTP upgrade. This module only turns bytes into frames and back; it knows
nothing of WebSockets or ports. Header blocks are zlib-compressed with one shared context per
direction, primed with the SPDY/3 dictionary (draft-mbelshe-httpbis-spdy-00 section 2.6.10.1).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01

RST_PROTOCOL_ERROR = 1
RST_INVALID_STREAM = 2
RST_REFUSED_STREAM = 3
RST_CANCEL = 5
RST_INTERNAL_ERROR = 6

MAX_DATA = 0xFFFFFF

# The spec's dictionary: HTTP words as 4-byte length-prefixed strings, then one run of common text.
_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date etag "
    "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
    "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
    "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate "
    "method get status"
).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,"
    "deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class ProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3: the connection cannot continue."""


@dataclass
class Frame:
    """One frame: `type` 0 is a data frame; control frames keep their type-specific fields."""

    type: int
    flags: int = 0
    stream_id: int = 0
    data: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    value: int = 0  # RST_STREAM / GOAWAY status, PING id, WINDOW_UPDATE delta

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


class Codec:
    """Frame parser and writer for one connection (the zlib contexts live as long as it does)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(level=9, zdict=DICTIONARY)

    # ---- reading ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Frame]:
        """Add received bytes; return every frame now complete."""
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            length = int.from_bytes(self._buf[5:8], "big")
            if len(self._buf) < 8 + length:
                break
            head, body = bytes(self._buf[:8]), bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            frames.append(self._parse(head, body))
        return frames

    def _parse(self, head: bytes, body: bytes) -> Frame:
        word, flags = struct.unpack(">I", head[:4])[0], head[4]
        if not word & 0x80000000:
            return Frame(0, flags, word & 0x7FFFFFFF, body)
        version, ftype = (word >> 16) & 0x7FFF, word & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        if ftype == SYN_STREAM:
            sid = struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF
            return Frame(ftype, flags, sid, headers=self._headers(body[10:]))
        if ftype in (SYN_REPLY, HEADERS):
            sid = struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF
            return Frame(ftype, flags, sid, headers=self._headers(body[4:]))
        if ftype in (RST_STREAM, WINDOW_UPDATE):
            sid, value = struct.unpack(">II", body[:8])
            return Frame(ftype, flags, sid & 0x7FFFFFFF, value=value)
        if ftype == PING:
            return Frame(ftype, flags, value=struct.unpack(">I", body[:4])[0])
        if ftype == GOAWAY:
            last, status = struct.unpack(">II", body[:8])
            return Frame(ftype, flags, last & 0x7FFFFFFF, value=status)
        return Frame(ftype, flags, data=body)  # SETTINGS and anything newer: ignored by the caller

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as e:
            raise ProtocolError(f"header block: {e}") from None
        (count,), pos, out = struct.unpack_from(">I", raw), 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", raw, pos)
            name = raw[pos + 4:pos + 4 + n].decode("latin-1").lower()
            pos += 4 + n
            (n,) = struct.unpack_from(">I", raw, pos)
            out[name] = raw[pos + 4:pos + 4 + n].decode("latin-1").split("\x00")[0]
            pos += 4 + n
        return out

    # ---- writing ------------------------------------------------------------------------------

    @staticmethod
    def _control(ftype: int, flags: int, body: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(body)) + body

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for k, v in headers.items():
            kb, vb = k.lower().encode(), v.encode()
            raw += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        body = struct.pack(">I", stream_id) + self._block(headers or {})
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, body)

    def syn_stream(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
        body = struct.pack(">IIBB", stream_id, 0, 0, 0) + self._block(headers)
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0, body)

    def rst_stream(self, stream_id: int, status: int = RST_CANCEL) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream_id: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream_id, status))

    @staticmethod
    def data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        out = b""
        for i in range(0, max(len(data), 1), MAX_DATA):
            chunk = data[i:i + MAX_DATA]
            last = i + MAX_DATA >= len(data)
            out += struct.pack(">II", stream_id, ((FLAG_FIN if fin and last else 0) << 24) | len(chunk)) + chunk
        return out
