"""Running iptables, iptables-restore and conntrack without blocking the event loop.

A sync is one `iptables-restore --noflush` transaction: the kernel sees the whole new ruleset at
once (no window where half the services are missing) and the host's other chains are untouched.
Hooks into the built-in chains are ensured separately, once, with `-C`/`-I`, as upstream does.
`netns` runs everything inside a named network namespace (the bench uses a private one).
"""

from __future__ import annotations

import asyncio
import logging
import shutil

from kubelite.proxy.rules import Jump, Names

log = logging.getLogger(__name__)


class IPTablesError(RuntimeError):
    pass


async def run(argv: list[str], input: str | None = None, attempts: int = 3,
              discard_stdout: bool = False) -> tuple[int, str, str]:
    """Run a command to completion. A child killed by a signal before it did anything (seen here as
    SIGSEGV between fork and exec in a server whose gRPC threads skip fork handlers, or as a closed
    stdin pipe) is run again: every command we run is idempotent or all-or-nothing."""
    for attempt in range(attempts):
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL if discard_stdout else asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await proc.communicate(input.encode() if input is not None else None)
        except (RuntimeError, BrokenPipeError, ConnectionResetError) as e:  # the child is gone already
            await proc.wait()
            if attempt + 1 < attempts:
                log.warning("%s: the child went away (%s, exit %s); running it again", argv[0], e, proc.returncode)
                continue
            raise IPTablesError(f"{argv[0]}: {e} (exit {proc.returncode})") from e
        rc = proc.returncode or 0
        if rc < 0 and attempt + 1 < attempts:
            log.warning("%s was killed by signal %d; running it again", argv[0], -rc)
            continue
        return rc, (out or b"").decode(errors="replace"), err.decode(errors="replace")
    raise AssertionError("unreachable")


# iptables-nft (1.8.x) records every chain a restore command names, and each jump target, in a
# sorted linked list (to fetch only those chains from the kernel): one insertion per rule, each a
# linear scan, so a restore costs rules x chains string compares: 10 s of CPU for 32,000 rules over
# 11,000 chains. One command that names no chain makes it fetch the whole table instead and skip
# the list; the only such command that changes nothing is a listing (`-S`), whose output we drop.
# It reads and prints the table's rules, so it is worth it only when many chains are written.
WHOLE_TABLE_FROM = 1000  # chains declared in one restore


def _with_listing(text: str) -> str:
    """`-S` as the first command of each table in a restore input."""
    for table in ("filter", "nat", "mangle", "raw", "security"):
        head = f"*{table}\n"
        if text.startswith(head):
            text = head + "-S\n" + text[len(head):]
        text = text.replace(f"\n{head}", f"\n{head}-S\n")
    return text


class IPTables:
    def __init__(self, netns: str = "", backend: str = ""):
        self.prefix = ["ip", "netns", "exec", netns] if netns else []
        suffix = f"-{backend}" if backend else ""
        self.iptables, self.restore_cmd, self.save_cmd = (f"iptables{suffix}", f"iptables{suffix}-restore",
                                                          f"iptables{suffix}-save")
        self.nft_backend: bool | None = {"nft": True, "legacy": False}.get(backend)  # None: ask `iptables -V`

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("iptables") and shutil.which("iptables-restore"))

    async def is_nft(self) -> bool:
        """Whether the iptables commands are the nf_tables flavour (`iptables v1.8.9 (nf_tables)`)."""
        if self.nft_backend is None:
            rc, out, _ = await run([self.iptables, "-V"])
            self.nft_backend = rc == 0 and "nf_tables" in out
        return self.nft_backend

    async def restore(self, text: str) -> None:
        """Apply a ruleset; on failure nothing changed (restore is all or nothing per table)."""
        many = text.count("\n:") >= WHOLE_TABLE_FROM
        if many and await self.is_nft():
            text = _with_listing(text)
        rc, _, err = await run([*self.prefix, self.restore_cmd, "-w", "5", "--noflush"], text,
                               discard_stdout=many)
        if rc != 0:
            raise IPTablesError(f"iptables-restore failed ({rc}): {err.strip()}")

    async def chains(self, table: str, names: Names) -> set[str]:
        """Chains of ours present in `table` (from iptables-save)."""
        rc, out, err = await run([*self.prefix, self.save_cmd, "-t", table])
        if rc != 0:
            raise IPTablesError(f"iptables-save -t {table} failed: {err.strip()}")
        own = f"{names.prefix}-"
        return {line[1:].split(" ", 1)[0] for line in out.splitlines()
                if line.startswith(":" + own)}

    async def ensure_jump(self, j: Jump) -> bool:
        """Prepend the rule unless present (before the CNI's masquerade and accept rules, which would
        otherwise end the chain first). True when it was added."""
        base = [*self.prefix, self.iptables, "-w", "5", "-t", j.table]
        rc, _, _ = await run([*base, "-C", j.chain, *j.args])
        if rc == 0:
            return False
        rc, _, err = await run([*base, "-I", j.chain, "1", *j.args])
        if rc != 0:
            raise IPTablesError(f"cannot hook {j.table}/{j.chain}: {err.strip()}")
        return True

    async def delete_jump(self, j: Jump) -> None:
        base = [*self.prefix, self.iptables, "-w", "5", "-t", j.table]
        for _ in range(10):  # every copy, should a crash have left duplicates
            rc, _, _ = await run([*base, "-D", j.chain, *j.args])
            if rc != 0:  # (a killed child is retried by `run`; this is "no such rule")
                return

    async def remove_all(self, names: Names, jumps: list[Jump]) -> None:
        """Unhook, then flush and delete every chain of ours in one transaction per table."""
        for j in jumps:
            await self.delete_jump(j)
        lines: list[str] = []
        for table in ("filter", "nat"):
            chains = sorted(await self.chains(table, names))
            if chains:
                lines += [f"*{table}", *(f":{c} - [0:0]" for c in chains), *(f"-X {c}" for c in chains), "COMMIT"]
        if lines:
            await self.restore("\n".join(lines) + "\n")


class Conntrack:
    """Deletes conntrack entries that would keep UDP clients talking to endpoints that are gone
    (TCP needs nothing: the dead endpoint resets or times out). A no-op without the tool."""

    def __init__(self, netns: str = ""):
        self.prefix = ["ip", "netns", "exec", netns] if netns else []
        self.tool = shutil.which("conntrack")

    async def _delete(self, *filters: str) -> None:
        if not self.tool:
            return
        rc, _, err = await run([*self.prefix, self.tool, "-D", "-p", "udp", *filters])
        if rc not in (0, 1):  # 1: nothing matched
            log.debug("conntrack -D %s: %s", " ".join(filters), err.strip())

    async def clear_service(self, ip: str) -> None:
        """A UDP service that had no endpoints: its clients' flows were REJECTed; let them retry."""
        await self._delete("--orig-dst", ip)

    async def clear_endpoint(self, service_ip: str, endpoint_ip: str) -> None:
        await self._delete("--orig-dst", service_ip, "--dst-nat", endpoint_ip)

    async def clear_node_port(self, port: int, endpoint_ip: str) -> None:
        await self._delete("--dport", str(port), "--dst-nat", endpoint_ip)
