"""The load generator of benchmarks/service.py, run inside a pod's or a node's network namespace.

Standard library only (dnspython only to check one DNS answer), bounded in count and in time, and
it stops by itself. Prints one JSON object (or, for `probe`, one JSON line per new body) on stdout.

    service_load.py http HOST PORT --conc 8 --count 20000 --seconds 3
        HTTP/1.0 GETs, one connection per request (as `wget` or `nc` would), `conc` at a time:
        requests/s and latency p50/p99 of the ones that succeeded, and the SYNs this namespace
        retransmitted meanwhile (a refused 4-tuple costs a 1 s retransmit).
    service_load.py probe HOST PORT --seconds 30 --bodies 2
        One GET after another; prints {"t": time.monotonic(), "body": ...} the first time each
        body is seen, until `bodies` distinct bodies were seen or time is up.
    service_load.py dns SERVER NAME --count 100000 --seconds 5 --window 32
        UDP A queries for NAME with up to `window` outstanding: answers/s, and how many were lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import select
import socket
import struct
import sys
import time

REQUEST = b"GET / HTTP/1.0\r\n\r\n"


async def _get(loop: asyncio.AbstractEventLoop, host: str, port: int, timeout: float) -> bytes:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, REQUEST)
            chunks = []
            while data := await loop.sock_recv(sock, 65536):
                chunks.append(data)
        return b"".join(chunks)
    finally:
        sock.close()


def _syn_retrans() -> int:
    """TcpExt TCPSynRetrans of this network namespace (/proc/net follows the reader's namespace)."""
    try:
        lines = [line.split() for line in open("/proc/net/netstat") if line.startswith("TcpExt:")]
        return int(dict(zip(lines[0], lines[1], strict=True)).get("TCPSynRetrans", 0))
    except (OSError, IndexError, ValueError):
        return -1


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def http(host: str, port: int, conc: int, count: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    issued = 0
    retrans0 = _syn_retrans()
    t0 = time.monotonic()
    deadline = t0 + seconds

    async def worker() -> None:
        nonlocal errors, issued
        while issued < count and time.monotonic() < deadline:
            issued += 1
            start = time.perf_counter()
            try:
                reply = await _get(loop, host, port, 2.0)
                ok = reply.startswith(b"HTTP/1.") and reply[9:12] == b"200"
            except (OSError, TimeoutError):
                ok = False
            if ok:
                latencies.append(time.perf_counter() - start)
            else:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(conc)))
    elapsed = time.monotonic() - t0
    latencies.sort()
    return {"requests": len(latencies), "errors": errors, "elapsed_s": round(elapsed, 3),
            "rps": round(len(latencies) / elapsed, 1), "p50_ms": round(_percentile(latencies, 0.50) * 1e3, 3),
            "p99_ms": round(_percentile(latencies, 0.99) * 1e3, 3), "syn_retrans": _syn_retrans() - retrans0}


async def probe(host: str, port: int, seconds: float, bodies: int) -> dict:
    loop = asyncio.get_running_loop()
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    requests = errors = 0
    while len(seen) < bodies and time.monotonic() < deadline:
        requests += 1
        try:
            reply = await _get(loop, host, port, 0.5)
        except (OSError, TimeoutError):
            errors += 1
            await asyncio.sleep(0.002)
            continue
        t = time.monotonic()
        body = reply.partition(b"\r\n\r\n")[2].decode(errors="replace").strip()
        if not reply[9:12] == b"200" or not body:
            errors += 1
            continue
        if body not in seen:
            seen.add(body)
            print(json.dumps({"t": t, "body": body}), flush=True)
    return {"requests": requests, "errors": errors, "bodies": sorted(seen)}


def dns_load(server: str, name: str, count: int, seconds: float, window: int) -> dict:
    import dns.message
    import dns.rcode

    template = bytearray(dns.message.make_query(name, "A").to_wire())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((server, 53))
    sock.setblocking(False)
    sent = answered = bad = 0
    outstanding: set[int] = set()
    first: bytes | None = None
    t0 = time.monotonic()
    deadline = t0 + seconds
    while answered + bad < count and time.monotonic() < deadline:
        while len(outstanding) < window and sent < count:
            qid = sent & 0xFFFF
            struct.pack_into("!H", template, 0, qid)
            try:
                sock.send(template)
            except BlockingIOError:
                break
            outstanding.add(qid)
            sent += 1
        ready, _, _ = select.select([sock], [], [], 0.2)
        if not ready:  # lost (or the server is stuck): forget what is in flight, send more
            outstanding.clear()
            continue
        while True:
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                break
            qid = struct.unpack_from("!H", data, 0)[0]
            if qid not in outstanding:
                continue
            outstanding.discard(qid)
            # header: rcode in the low 4 bits of byte 3, ANCOUNT in bytes 6-7
            if data[3] & 0x0F == dns.rcode.NOERROR and struct.unpack_from("!H", data, 6)[0] > 0:
                answered += 1
                if first is None:
                    first = data
            else:
                bad += 1
    elapsed = time.monotonic() - t0
    answer = [str(rr) for rr in dns.message.from_wire(first).answer] if first else []
    return {"sent": sent, "answered": answered, "bad": bad, "lost": sent - answered - bad,
            "elapsed_s": round(elapsed, 3), "qps": round(answered / elapsed, 1), "answer": answer}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("http", "probe", "dns"))
    ap.add_argument("host")
    ap.add_argument("arg")
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--bodies", type=int, default=2)
    ap.add_argument("--window", type=int, default=32)
    a = ap.parse_args()
    if a.mode == "http":
        out = asyncio.run(http(a.host, int(a.arg), a.conc, a.count, a.seconds))
    elif a.mode == "probe":
        out = asyncio.run(probe(a.host, int(a.arg), a.seconds, a.bodies))
    else:
        out = dns_load(a.host, a.arg, a.count, a.seconds, a.window)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
