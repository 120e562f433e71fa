"""A stopped container's termination message, read by the kubelet as upstream's
kuberuntime getTerminationMessage does: the file the container wrote at terminationMessagePath
(through the host file the kubelet mounted there), else, with FallbackToLogsOnError and a
failed exit, the tail of its log (last 80 lines, at most 2 KiB)."""

from __future__ import annotations

import os

from kubelite.kubelet.logs import parse_lines
from kubelite.runtime.cri import pb

A_TERMINATION_PATH = "io.kubernetes.container.terminationMessagePath"
A_TERMINATION_POLICY = "io.kubernetes.container.terminationMessagePolicy"
MAX_FILE_BYTES = 4096
MAX_LOG_LINES = 80
MAX_LOG_BYTES = 2048


def _read_tail(path: str, limit: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - limit))
        return f.read()


def message(cs: pb.ContainerStatus) -> str:
    """The message for an exited container; '' when it has none."""
    path = cs.annotations.get(A_TERMINATION_PATH, "")
    host = next((m.host_path for m in cs.mounts if path and m.container_path == path), "")
    if host:
        try:
            data = _read_tail(host, MAX_FILE_BYTES) if os.path.getsize(host) > MAX_FILE_BYTES else open(
                host, "rb").read()
        except OSError:
            data = b""
        if data:
            return data.decode(errors="replace")
    if cs.annotations.get(A_TERMINATION_POLICY) != "FallbackToLogsOnError" or cs.exit_code == 0 or not cs.log_path:
        return ""
    try:
        raw = _read_tail(cs.log_path, 64 * 1024)
    except OSError:
        return ""
    nl = raw.find(b"\n")
    if len(raw) == 64 * 1024 and nl >= 0:  # drop a record cut by the seek
        raw = raw[nl + 1:]
    lines, _ = parse_lines(raw, final=True)
    text = b"".join(content for _ts, _stream, content in lines[-MAX_LOG_LINES:])
    return text[-MAX_LOG_BYTES:].decode(errors="replace")
