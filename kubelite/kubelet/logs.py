"""Container logs in the CRI format (`<RFC3339Nano> <stdout|stderr> <F|P> <text>`), read back the
way `kubectl logs` asks: tail, since, timestamps, limitBytes, follow until the container stops."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since_time: float | None = None  # unix seconds
    timestamps: bool = False
    limit_bytes: int | None = None


def _parse_ts(ts: bytes) -> float:
    s = ts.decode()
    if s.endswith("Z"):
        s = s[:-1]
    base, _, frac = s.partition(".")
    t = datetime.fromisoformat(base + "+00:00").timestamp()
    return t + (float("0." + frac) if frac else 0.0)


def parse_lines(data: bytes, final: bool = False) -> tuple[list[tuple[bytes, bytes, bytes]], bytes]:
    """Complete log lines as (timestamp, stream, content with newline); partial (P) records are joined.
    Returns the lines and the unconsumed tail of `data` (an incomplete last record)."""
    out: list[tuple[bytes, bytes, bytes]] = []
    pending: dict[bytes, tuple[bytes, bytes]] = {}
    start = 0
    while True:
        nl = data.find(b"\n", start)
        if nl < 0:
            break
        rec = data[start:nl]
        start = nl + 1
        parts = rec.split(b" ", 3)
        if len(parts) < 4:
            if len(parts) == 3:
                parts.append(b"")
            else:
                continue
        ts, stream, tag, content = parts
        ts0, buf = pending.pop(stream, (ts, b""))
        if tag.startswith(b"P"):
            pending[stream] = (ts0, buf + content)
            continue
        out.append((ts0, stream, buf + content + b"\n"))
    if final:  # the writer is done: an unfinished line is shown as it is, without a newline
        out.extend((ts, stream, buf) for stream, (ts, buf) in pending.items())
        return out, b""
    # unfinished partial lines are handed back, re-serialized, to be completed by later data
    rest = b"".join(ts + b" " + stream + b" P " + buf + b"\n" for stream, (ts, buf) in pending.items())
    return out, rest + data[start:]


def render(line: tuple[bytes, bytes, bytes], timestamps: bool) -> bytes:
    ts, _stream, content = line
    return ts + b" " + content if timestamps else content


async def stream_log(path: str, write: Callable[[bytes], Awaitable[None]], opts: LogOptions,
                     running: Callable[[], Awaitable[bool]], poll: float = 0.1) -> None:
    """Write the selected lines of the log at `path`; with follow, keep writing until the container
    has stopped and the file has no more data."""
    written = 0

    async def emit(lines: list[tuple[bytes, bytes, bytes]]) -> bool:
        nonlocal written
        for ln in lines:
            if opts.since_time is not None and _parse_ts(ln[0]) < opts.since_time:
                continue
            data = render(ln, opts.timestamps)
            if opts.limit_bytes is not None:
                room = opts.limit_bytes - written
                if room <= 0:
                    return False
                data = data[:room]
            await write(data)
            written += len(data)
        return True

    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        data = f.read()
        lines, rest = parse_lines(data, final=not opts.follow)
        if opts.tail_lines is not None:
            lines = lines[-opts.tail_lines:] if opts.tail_lines > 0 else []
        if not await emit(lines) or not opts.follow:
            return
        last_check = 0.0
        loop = asyncio.get_running_loop()
        while True:
            chunk = f.read()
            if chunk:
                lines, rest = parse_lines(rest + chunk)
                if not await emit(lines):
                    return
                continue
            now = loop.time()
            if now - last_check >= 1.0:
                last_check = now
                if not await running():
                    lines, rest = parse_lines(rest + f.read(), final=True)
                    await emit(lines)
                    return
            if not os.path.exists(path):
                return
            await asyncio.sleep(poll)
