"""Child components of `kyb server`: each its own process (its own core), restarted if it dies.

The controller manager and the scheduler are API clients; running them beside the API
server in separate processes lets each use a core of its own instead of sharing one
event loop (measured in BENCHMARKS.md). A child is killed with its parent (PR_SET_PDEATHSIG,
SIGKILL: a parent that died abnormally gets no graceful shutdown of its children either),
so a killed server leaves no orphans behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import sys

log = logging.getLogger("kybernetes.supervisor")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


async def supervise(name: str, argv: list[str], stop: asyncio.Event) -> None:
    """Run `kyb <argv>` until `stop`; restart it with backoff when it exits on its own."""
    backoff = 1.0
    while not stop.is_set():
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "kybernetes.cli.main", *argv,
                                                    preexec_fn=_die_with_parent)
        log.info("started %s (pid %d)", name, proc.pid)
        waiter = asyncio.ensure_future(proc.wait())
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper in done:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(waiter, 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            return
        stopper.cancel()
        log.warning("%s exited with code %s; restarting in %.0fs", name, proc.returncode, backoff)
        try:
            await asyncio.wait_for(stop.wait(), backoff)
        except TimeoutError:
            pass
        backoff = min(backoff * 2, 30.0)
