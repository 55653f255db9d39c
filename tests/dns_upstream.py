"""A stand-in upstream resolver for tests: every A query is answered with 192.0.2.7.

Run inside a test's network namespace (`python tests/dns_upstream.py 127.0.0.1 5353`) so the
cluster DNS has somewhere to forward outside names without any traffic leaving the machine.
"""

from __future__ import annotations

import socket
import sys

import dns.message
import dns.rdatatype
import dns.rrset

ANSWER = "192.0.2.7"


def serve(host: str, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    while True:
        data, addr = sock.recvfrom(4096)
        try:
            query = dns.message.from_wire(data)
        except Exception:  # noqa: BLE001 - ignore garbage, as a resolver would
            continue
        resp = dns.message.make_response(query)
        question = query.question[0]
        if question.rdtype == dns.rdatatype.A:
            resp.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", ANSWER))
        sock.sendto(resp.to_wire(), addr)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
