"""The iptables proxier: applies `rules.restore_text` with `iptables-restore --noflush`.

The first sync, every sync after a failure and one every `full_sync_interval` are full: the
jump rules from the built-in chains are checked, the existing per-service chains are read
with `iptables-save` and every chain is rewritten (stale ones deleted). Other syncs are
partial: only the chains of service ports that differ from the last applied state are
rewritten (upstream's partial sync); the small top-level chains are always rewritten.
After a successful sync, conntrack entries of removed UDP endpoints are deleted.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from dataclasses import dataclass, field

from .model import NodeConfig, ServicePort, changed_keys, stale_udp_flows
from .rules import JUMPS, SERVICE_CHAIN_PREFIXES, build, restore_text, service_chains_in

log = logging.getLogger("kybernetes.proxy.iptables")


async def run_cmd(argv: list[str], stdin: str | None = None, timeout: float = 30.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin is not None else None), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"{argv[0]} timed out"
    return proc.returncode or 0, out.decode(errors="replace")


@dataclass
class SyncStats:
    syncs: int = 0
    full_syncs: int = 0
    last_duration: float = 0.0
    last_rules: int = 0
    last_written: list[str] = field(default_factory=list)
    last_deleted: list[str] = field(default_factory=list)
    conntrack_deletes: int = 0


class IptablesProxier:
    def __init__(self, node: NodeConfig, run=run_cmd, full_sync_interval: float = 300.0):
        self.node = node
        self.run = run
        self.full_sync_interval = full_sync_interval
        self.applied: dict[str, ServicePort] | None = None
        self.existing: set[str] = set()
        self.last_full = 0.0
        self.stats = SyncStats()

    def set_node(self, node: NodeConfig) -> None:
        """The node changed (its address): every chain may differ, so the next sync is a full one."""
        if node != self.node:
            self.node = node
            self.last_full = float("-inf")

    async def _ensure_jumps(self) -> None:
        for table, chain, rule in JUMPS:
            target = rule.rsplit("-j ", 1)[1]
            await self.run(["iptables", "-w", "5", "-t", table, "-N", target])  # fails when it exists: fine
            args = shlex.split(rule)
            code, _ = await self.run(["iptables", "-w", "5", "-t", table, "-C", chain, *args])
            if code != 0:
                code, out = await self.run(["iptables", "-w", "5", "-t", table, "-I", chain, "1", *args])
                if code != 0:
                    raise RuntimeError(f"iptables -t {table} -I {chain} failed: {out.strip()}")

    async def sync(self, ports: dict[str, ServicePort]) -> bool:
        """Program `ports`; returns whether anything was written."""
        started = time.monotonic()
        full = self.applied is None or started - self.last_full > self.full_sync_interval
        changed = None
        if full:
            await self._ensure_jumps()
            code, out = await self.run(["iptables-save", "-t", "nat"])
            if code != 0:
                raise RuntimeError(f"iptables-save failed: {out.strip()}")
            self.existing = service_chains_in(out)
        else:
            changed = changed_keys(self.applied, ports)
            if not changed:
                return False
        rs = build(ports, self.node)
        inp = restore_text(rs, changed, self.existing)
        code, out = await self.run(["iptables-restore", "-w", "5", "--noflush"], inp.text)
        if code != 0:
            self.applied = None  # the next sync is a full one
            raise RuntimeError(f"iptables-restore failed: {out.strip()}")
        self.existing = {n for n in rs.nat if n.startswith(SERVICE_CHAIN_PREFIXES)}
        for args in stale_udp_flows(self.applied or {}, ports):
            code, _ = await self.run(["conntrack", *args])
            self.stats.conntrack_deletes += 1  # conntrack exits 1 when nothing matched: not an error
        self.applied = dict(ports)
        st = self.stats
        st.syncs += 1
        if full:
            st.full_syncs += 1
            self.last_full = started
        st.last_duration, st.last_rules = time.monotonic() - started, inp.rules
        st.last_written, st.last_deleted = inp.written_chains, inp.deleted_chains
        log.debug("%s sync: %d rules, %d service chains written, %d deleted in %.1f ms", "full" if full else "partial",
                  inp.rules, len(inp.written_chains), len(inp.deleted_chains), st.last_duration * 1000)
        return True
