"""Open TCP connections from inside a pod's network namespace (for port-forward).

Upstream port-forward reaches `localhost:PORT` as seen by the pod, so servers bound to the pod's
loopback are reachable too. A socket belongs to the namespace it was created in: a short-lived
thread enters the namespace with setns(2), creates the socket, and leaves; the connect and all I/O
then happen on the event loop. The thread is never reused, so a failed return cannot leak the
pod's namespace into other work.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import json
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT = 10.0


def netns_path_from_info(info: dict[str, str]) -> str:
    """The network namespace path in a verbose PodSandboxStatus `info` (containerd's layout)."""
    try:
        data = json.loads(info.get("info") or "{}")
    except ValueError:
        return ""
    for ns in (((data.get("runtimeSpec") or {}).get("linux") or {}).get("namespaces") or []):
        if ns.get("type") == "network" and ns.get("path"):
            return ns["path"]
    pid = data.get("pid")
    return f"/proc/{pid}/ns/net" if pid else ""


def _socket_in(path: str) -> socket.socket:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    host = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(target, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns {path}: {os.strerror(err)}")
            try:
                return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                if libc.setns(host, CLONE_NEWNET) != 0:  # this thread dies next anyway
                    pass
        finally:
            os.close(target)
    finally:
        os.close(host)


async def _make_socket(path: str) -> socket.socket:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[socket.socket] = loop.create_future()

    def run() -> None:
        try:
            s = _socket_in(path)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting coroutine
            loop.call_soon_threadsafe(lambda err=e: fut.done() or fut.set_exception(err))
        else:
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(s))

    threading.Thread(target=run, name="netns-dial", daemon=True).start()
    return await fut


async def open_connection(netns: str, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to host:port from the namespace at `netns` ("" means the host's own).

    Failures are OSErrors worded as Go's net.Dial, as the runtime's error text reads upstream."""
    try:
        if not netns:
            return await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
        sock = await _make_socket(netns)
        try:
            sock.setblocking(False)
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), CONNECT_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)
    except TimeoutError:
        raise OSError(f"dial tcp4 {host}:{port}: i/o timeout") from None
    except OSError as e:
        reason = os.strerror(e.errno).lower() if e.errno else str(e)
        raise OSError(e.errno, f"dial tcp4 {host}:{port}: connect: {reason}") from None
