"""The DNS server: UDP and TCP on one address, the cluster zone answered, the rest forwarded."""

from __future__ import annotations

import asyncio
import logging
import struct

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .records import ClusterRecords, Record

log = logging.getLogger("kybernetes.dns")
UDP_LIMIT = 512
FORWARD_TIMEOUT = 2.0
CACHE_LIMIT = 4096


def _rrset(r: Record) -> dns.rrset.RRset:
    if r.type == "SRV":
        prio, weight, port, target = r.value
        text = f"{prio} {weight} {port} {target}"
    elif r.type == "SOA":
        mname, rname, serial, refresh, retry, expire, minimum = r.value
        text = f"{mname} {rname} {serial} {refresh} {retry} {expire} {minimum}"
    else:
        text = str(r.value)
    rdtype = dns.rdatatype.from_text(r.type)
    return dns.rrset.from_rdata(r.name, r.ttl, dns.rdata.from_text(dns.rdataclass.IN, rdtype, text))


def upstream_resolvers(resolv_conf: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """The host's nameservers, as the forward plugin reads them (loopback ones kept as they are)."""
    out = []
    try:
        with open(resolv_conf) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append((parts[1], 53))
    except OSError:
        pass
    return out


class DNSServer:
    def __init__(self, records: ClusterRecords, upstreams: list[tuple[str, int]]):
        self.records = records
        self.upstreams = upstreams
        self._transports: list = []
        self._tcp: asyncio.base_events.Server | None = None
        self.queries = 0
        # In-zone answers by query wire without its ID: building one with dnspython costs ~100 us,
        # which capped the server near 5,000 queries/s. Emptied on every Service/EndpointSlice event.
        self._answers: dict[bytes, bytes] = {}

    def invalidate(self, *_) -> None:
        """The records changed (informer handler): forget every cached answer."""
        self._answers.clear()

    def cached(self, wire: bytes) -> bytes | None:
        """The answer to `wire` if an identical query (but for its ID) was answered from the zone."""
        rest = self._answers.get(wire[2:])
        if rest is None:
            return None
        self.queries += 1
        return wire[:2] + rest

    # --- answering ---------------------------------------------------------------------------
    async def handle(self, wire: bytes) -> bytes | None:
        if (answer := self.cached(wire)) is not None:
            return answer
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - a malformed packet gets no answer, as real servers do
            return None
        self.queries += 1
        if len(query.question) != 1:
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.FORMERR)
            return resp.to_wire()
        question = query.question[0]
        name = question.name.to_text()
        if self.records.in_zone(name):
            answer = self._answer(query, name, dns.rdatatype.to_text(question.rdtype)).to_wire()
            if len(self._answers) >= CACHE_LIMIT:
                self._answers.clear()
            self._answers[wire[2:]] = answer[2:]
            return answer
        return await self.forward(query, wire)

    def _answer(self, query: dns.message.Message, name: str, qtype: str) -> dns.message.Message:
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.AA
        result = self.records.lookup(name, qtype)
        if result.rcode == "NXDOMAIN":
            resp.set_rcode(dns.rcode.NXDOMAIN)
        for r in result.records:
            resp.answer.append(_rrset(r))
        if not result.records:
            resp.authority.append(_rrset(self.records.soa()))
        for r in self.records.additional_for(result.records):
            resp.additional.append(_rrset(r))
        return resp

    async def forward(self, query: dns.message.Message, wire: bytes) -> bytes:
        for host, port in self.upstreams:
            try:
                return await self._ask_udp(host, port, wire)
            except (TimeoutError, OSError) as e:
                log.debug("upstream %s:%s failed: %s", host, port, e)
        resp = dns.message.make_response(query)
        resp.set_rcode(dns.rcode.SERVFAIL)
        return resp.to_wire()

    async def _ask_udp(self, host: str, port: int, wire: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bytes] = loop.create_future()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                if not done.done():
                    done.set_result(data)

            def error_received(self, exc):
                if not done.done():
                    done.set_exception(exc)

        transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=(host, port))
        try:
            transport.sendto(wire)
            answer = await asyncio.wait_for(done, FORWARD_TIMEOUT)
        finally:
            transport.close()
        if dns.message.from_wire(answer).flags & dns.flags.TC:
            return await self._ask_tcp(host, port, wire)
        return answer

    async def _ask_tcp(self, host: str, port: int, wire: bytes) -> bytes:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), FORWARD_TIMEOUT)
        try:
            writer.write(struct.pack("!H", len(wire)) + wire)
            size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), FORWARD_TIMEOUT))[0]
            return await asyncio.wait_for(reader.readexactly(size), FORWARD_TIMEOUT)
        finally:
            writer.close()

    # --- transports ------------------------------------------------------------------------------
    async def start(self, host: str, port: int) -> int:
        """Listen on UDP and TCP; returns the port (useful when `port` is 0)."""
        loop = asyncio.get_running_loop()
        server = self

        async def tcp_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    answer = await server.handle(await reader.readexactly(size))
                    if answer is None:
                        break
                    writer.write(struct.pack("!H", len(answer)) + answer)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self._tcp = await asyncio.start_server(tcp_client, host, port)
        port = self._tcp.sockets[0].getsockname()[1]

        class UDP(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                answer = server.cached(data)
                if answer is None:
                    loop.create_task(self.reply(data, addr))
                else:  # no task for what is already known
                    self.transport.sendto(answer if len(answer) <= UDP_LIMIT else server.truncate(data, answer), addr)

            async def reply(self, data, addr):
                answer = await server.handle(data)
                if answer is None:
                    return
                if len(answer) > UDP_LIMIT:
                    answer = server.truncate(data, answer)
                self.transport.sendto(answer, addr)

        transport, _ = await loop.create_datagram_endpoint(UDP, local_addr=(host, port))
        self._transports.append(transport)
        return port

    @staticmethod
    def truncate(query_wire: bytes, answer: bytes) -> bytes:
        """Too big for UDP: an empty answer with TC set, so the client retries over TCP."""
        resp = dns.message.from_wire(answer)
        resp.answer, resp.additional, resp.authority = [], [], []
        resp.flags |= dns.flags.TC
        return resp.to_wire()

    async def stop(self) -> None:
        for t in self._transports:
            t.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
