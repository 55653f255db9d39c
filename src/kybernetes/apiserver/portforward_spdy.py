"""kubectl's port-forward: SPDY/3.1 streams, tunnelled in a WebSocket, relayed to the kubelet.

kubectl 1.32 asks for a WebSocket with subprotocol `SPDY/3.1+portforward.k8s.io` (KEP-4006):
every binary message carries the next bytes of a SPDY/3.1 session in which kubectl is the
client. For each local connection it opens two streams with headers `streamType` (`error`,
then `data`), `port` and `requestID`; the server replies to each (SYN_REPLY) and, once both
streams of a request ID are there, connects them to that port of the pod. What the pod
sends goes out on the data stream; a failure is written as text on the error stream, which
kubectl prints as "an error occurred forwarding L -> R: ...". Both streams end with FIN.

Here each pair becomes one `v4.channel.k8s.io` port-forward WebSocket to the kubelet
(`?ports=P`: channel 0 data, channel 1 errors, the first message of each channel is the
port, two bytes little-endian). That protocol has no half-close, so the FIN kubectl sends
on the data stream when its local client stops writing is not passed on; the pod's side
ends the connection as with a plain request-response protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from ..client import spdy

log = logging.getLogger(__name__)

PROTOCOL = "SPDY/3.1+portforward.k8s.io"
PAIR_TIMEOUT = 30.0  # upstream's stream creation timeout for the second stream of a pair

Opener = Callable[[int], Awaitable[aiohttp.ClientWebSocketResponse]]


class Pair:
    def __init__(self, request_id: str):
        self.request_id = request_id
        self.data: spdy.Stream | None = None
        self.error: spdy.Stream | None = None
        self.complete = asyncio.Event()

    def add(self, stream: spdy.Stream) -> str:
        kind = stream.header("streamType")
        if kind not in ("data", "error"):
            return f"invalid stream type {kind!r}"
        if getattr(self, kind) is not None:
            return f"duplicate {kind} stream for request {self.request_id}"
        setattr(self, kind, stream)
        if self.data is not None and self.error is not None:
            self.complete.set()
        return ""


class Forwarder:
    """Serves the streams of one SPDY session: pairs them and relays each pair through `open_port`."""

    def __init__(self, session: spdy.Session, open_port: Opener, pod: str):
        self.session, self.open_port, self.pod = session, open_port, pod
        self.pairs: dict[str, Pair] = {}
        self.tasks: set[asyncio.Task] = set()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self) -> None:
        try:
            while (stream := await self.session.incoming.get()) is not None:
                await self.session.reply(stream)
                request_id = stream.header("requestID") or str(stream.id)
                pair = self.pairs.get(request_id)
                if pair is None:
                    pair = self.pairs[request_id] = Pair(request_id)
                    self._spawn(self._serve(pair))
                problem = pair.add(stream)
                if problem:
                    log.info("port-forward %s: %s", self.pod, problem)
                    await stream.reset(spdy.PROTOCOL_ERROR)
        finally:
            for task in list(self.tasks):
                task.cancel()
            for task in list(self.tasks):
                with contextlib.suppress(BaseException):
                    await task

    async def _serve(self, pair: Pair) -> None:
        try:
            await asyncio.wait_for(pair.complete.wait(), PAIR_TIMEOUT)
        except TimeoutError:
            for s in (pair.data, pair.error):
                if s is not None:
                    with contextlib.suppress(Exception):
                        await s.reset()
            return
        finally:
            self.pairs.pop(pair.request_id, None)
        data, error = pair.data, pair.error
        try:
            port_text = data.header("port") or error.header("port")
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                await self._fail(error, f'unable to parse "{port_text}" as a port')
                return
            port = int(port_text)
            try:
                upstream = await self.open_port(port)
            except Exception as e:  # noqa: BLE001 - the refusal goes to kubectl on the error stream
                await self._fail(error, f"error forwarding port {port} to pod {self.pod}: {e}")
                return
            try:
                await self._relay(upstream, data, error)
            finally:
                await upstream.close()
        except (ConnectionError, aiohttp.ClientError):
            pass
        finally:
            for s in (data, error):
                with contextlib.suppress(Exception):
                    await s.close()
                self.session.forget(s)

    @staticmethod
    async def _fail(error: spdy.Stream, message: str) -> None:
        with contextlib.suppress(Exception):
            await error.write(message.encode())

    @staticmethod
    async def _relay(upstream: aiohttp.ClientWebSocketResponse, data: spdy.Stream, error: spdy.Stream) -> None:
        async def client_to_pod() -> None:
            while chunk := await data.read():
                await upstream.send_bytes(b"\x00" + chunk)
            if data.was_reset:  # kubectl gave up on this connection
                await upstream.close()

        async def pod_to_client() -> None:
            seen_port = set()
            async for msg in upstream:
                if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
                    continue
                channel, payload = msg.data[0], msg.data[1:]
                if channel not in seen_port:  # the first message of each channel starts with the port
                    seen_port.add(channel)
                    payload = payload[2:]
                if not payload:
                    continue
                if channel == 0:
                    await data.write(payload)
                elif channel == 1:
                    await error.write(payload)

        writer = asyncio.create_task(client_to_pod())
        try:
            await pod_to_client()
        finally:
            writer.cancel()
            with contextlib.suppress(BaseException):
                await writer


def wants_tunnel(offered: list[str]) -> bool:
    return PROTOCOL in offered


async def serve_tunnel(request: web.Request, open_port: Opener, pod: str) -> web.WebSocketResponse:
    """Accept the WebSocket, run a server-side SPDY session inside it until either side ends it."""
    ws = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=0, autoping=True)
    await ws.prepare(request)
    session = spdy.Session(ws.send_bytes, server=True)
    forwarder = asyncio.create_task(Forwarder(session, open_port, pod).run())
    try:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await session.feed(msg.data)
            elif msg.type != aiohttp.WSMsgType.TEXT:
                break
            if forwarder.done():
                break
    except spdy.ProtocolError as e:
        log.info("port-forward %s: %s", pod, e)
        await session.close(1)
    except ConnectionError:
        pass
    finally:
        session.connection_lost()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(forwarder, 5)
        await ws.close()
    return ws
