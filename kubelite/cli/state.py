"""What `kubelite up` leaves in the data dir for `down`, `status` and `kubeconfig`: DIR/kubelite.pid (the
pid, as ServerConfig.pid_file says) and DIR/kubelite.json (pid, address, start time), plus the
helpers that tell whether that process still runs and answers /readyz."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import ssl
import time
from dataclasses import asdict, dataclass

STATE_FILE = "kubelite.json"
PID_FILE = "kubelite.pid"
LOG_FILE = "kubelite.log"
LOCK_FILE = "kubelite.lock"


@dataclass
class Instance:
    """One control plane process serving a data dir."""

    data_dir: str
    pid: int
    bind: str
    port: int
    started_at: float

    @property
    def url(self) -> str:
        return server_url(self.bind, self.port)

    @property
    def log_file(self) -> str:
        return os.path.join(self.data_dir, LOG_FILE)


def server_url(bind: str, port: int) -> str:
    """Where local clients reach a server bound to `bind`: loopback for the wildcard addresses."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(bind, bind)
    if ":" in host:
        host = f"[{host.strip('[]')}]"
    return f"https://{host}:{port}"


def read_instance(data_dir: str) -> Instance | None:
    """The recorded instance, whether or not its process still runs."""
    try:
        with open(os.path.join(data_dir, STATE_FILE)) as f:
            d = json.load(f)
        return Instance(data_dir=data_dir, pid=int(d["pid"]), bind=str(d["bind"]), port=int(d["port"]),
                        started_at=float(d["started_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:  # a pid file without state (written by something else): assume defaults for the address
        with open(os.path.join(data_dir, PID_FILE)) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return Instance(data_dir=data_dir, pid=pid, bind="127.0.0.1", port=6443, started_at=0.0)


def write_instance(inst: Instance) -> None:
    d = asdict(inst)
    d.pop("data_dir")
    _write_atomic(os.path.join(inst.data_dir, STATE_FILE), json.dumps(d) + "\n")
    _write_atomic(os.path.join(inst.data_dir, PID_FILE), f"{inst.pid}\n")


def clear_instance(data_dir: str, pid: int | None = None) -> None:
    """Remove the pid and state files (only if they still name `pid`, when given)."""
    if pid is not None:
        current = read_instance(data_dir)
        if current is not None and current.pid != pid:
            return
    for name in (PID_FILE, STATE_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(data_dir, name))


def running(inst: Instance | None) -> bool:
    return inst is not None and process_alive(inst.pid)


def process_alive(pid: int) -> bool:
    """True if `pid` runs `kubelite server` (not a zombie, not a recycled pid of another program)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        if stat[stat.rindex(b")") + 2:][:1] in (b"Z", b"X"):
            return False
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        return any(b"kubelite" in a for a in argv) and b"server" in argv
    except FileNotFoundError:
        return False
    except OSError:
        return True  # no /proc: trust kill(0)


def wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


class ReadyzProbe:
    """GET /readyz as the admin user, trusting only the cluster CA (built once the PKI exists)."""

    def __init__(self, data_dir: str, url: str):
        self.tls_dir = os.path.join(data_dir, "tls")
        self.url = url
        self._ctx: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext | None:
        if self._ctx is None:
            ca, crt, key = (os.path.join(self.tls_dir, n) for n in ("ca.crt", "admin.crt", "admin.key"))
            try:
                ctx = ssl.create_default_context(cafile=ca)
                ctx.load_cert_chain(crt, key)
            except (OSError, ssl.SSLError):
                return None  # not written yet (the server makes the PKI on its first start)
            self._ctx = ctx
        return self._ctx

    def check(self, timeout: float = 2.0) -> tuple[bool, str]:
        """(ready, what /readyz said or why it could not be asked)."""
        import http.client
        from urllib.parse import urlsplit

        ctx = self._context()
        if ctx is None:
            return False, "no admin certificate yet"
        u = urlsplit(self.url)
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=timeout)
        try:
            conn.request("GET", "/readyz")
            resp = conn.getresponse()
            body = resp.read().decode(errors="replace").strip()
            if resp.status == 200 and body == "ok":
                return True, "ok"
            return False, f"HTTP {resp.status}: {body[:200]}"
        except ssl.SSLCertVerificationError as e:
            self._ctx = None  # the PKI may have been regenerated: reload it next time
            return False, f"TLS: {e.verify_message}"
        except (OSError, http.client.HTTPException) as e:
            return False, str(e) or type(e).__name__
        finally:
            conn.close()


@contextlib.contextmanager
def locked(data_dir: str):
    """Serializes `up`/`down` on one data dir (two concurrent `up`s start one server)."""
    fd = os.open(os.path.join(data_dir, LOCK_FILE), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


LOG_MARK = "---- kubelite up "


def log_tail(path: str, lines: int = 30) -> str:
    """The last `lines` lines of the log written since the last `kubelite up` started a server."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    found = data.rfind(LOG_MARK)
    if found >= 0:
        data = data[found:]
    return "\n".join(data.splitlines()[-lines:])


def format_duration(seconds: float) -> str:
    s = int(max(0, seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [f"{d}d"] * bool(d) + [f"{h}h"] * bool(h) + [f"{m}m"] * bool(m) + [f"{s}s"]
    return "".join(parts[:2])


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
