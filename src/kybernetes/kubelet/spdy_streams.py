"""Exec and attach to the runtime's streaming server over SPDY/3.1, for the client's WebSocket.

The `v4.channel.k8s.io` WebSocket protocol cannot end stdin on its own; SPDY can: every
stream (error, stdin, stdout, stderr, resize) half-closes with FIN. So the kubelet talks to
containerd's streaming server as kubectl's SPDY client does (upstream remotecommand):
`POST` the URL CRI returned with `Upgrade: SPDY/3.1` and `X-Stream-Protocol-Version:
v4.channel.k8s.io`, expect 101, then open the streams with header `streamType` (error first,
then stdin, stdout, stderr, resize as asked). The server writes one JSON Status on the error
stream when the process ends (Success, or Failure with reason NonZeroExitCode).

The client side is the WebSocket channel protocol: 0 stdin, 1 stdout, 2 stderr, 3 status,
4 resize, and with `v5.channel.k8s.io` the close channel `[255, 0]` that ends stdin — which
here becomes FIN on the stdin stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from ..client import channels, spdy

PROTOCOL = "v4.channel.k8s.io"
CONNECT_TIMEOUT = 10.0


class UpgradeError(Exception):
    pass


class Connection:
    """A client SPDY session on a connection upgraded from HTTP/1.1."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.session = spdy.Session(self._write, server=False)
        self.pump = asyncio.create_task(self._pump())

    async def _write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def _pump(self) -> None:
        try:
            while data := await self.reader.read(65536):
                await self.session.feed(data)
        except (ConnectionError, spdy.ProtocolError):
            pass
        finally:
            self.session.connection_lost()

    async def close(self) -> None:
        self.session.connection_lost()
        self.pump.cancel()
        with contextlib.suppress(BaseException):
            await self.pump
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def connect(url: str, protocol: str = PROTOCOL) -> Connection:
    parts = urlsplit(url)
    tls = None
    if parts.scheme == "https":
        tls = ssl.create_default_context()
        tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    port = parts.port or (443 if tls else 80)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port, ssl=tls),
                                                CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise UpgradeError(f"connecting to {parts.netloc}: {e}") from None
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        writer.write((f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: Upgrade\r\n"
                      f"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\nContent-Length: 0\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
        status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if status_line.split()[1:2] != ["101"]:
            body = await asyncio.wait_for(reader.read(4096), 2)
            raise UpgradeError(f"{status_line}: {body.decode(errors='replace').strip()}")
    except (OSError, TimeoutError, asyncio.IncompleteReadError, IndexError) as e:
        writer.close()
        raise UpgradeError(f"upgrading to SPDY: {e!r}") from None
    except BaseException:
        writer.close()
        raise
    return Connection(reader, writer)


async def relay(request: web.Request, url: str, proto: str, stdin: bool, stdout: bool, stderr: bool,
                tty: bool) -> web.WebSocketResponse:
    """Connect to the runtime first (a failure raises before the client gets its 101), then relay."""
    conn = await connect(url)
    try:
        session = conn.session
        streams = {"error": await session.open_stream({"streamType": "error"})}
        await streams["error"].close()
        for kind, wanted in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr and not tty), ("resize", tty)):
            if wanted:
                streams[kind] = await session.open_stream({"streamType": kind})
        ws = web.WebSocketResponse(protocols=(proto,), max_msg_size=0, autoping=True)
        await ws.prepare(request)
        await _run(ws, streams, proto)
        return ws
    finally:
        await conn.close()


async def _run(ws: web.WebSocketResponse, streams: dict[str, spdy.Stream], proto: str) -> None:
    async def client_to_runtime() -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
                continue
            channel, payload = msg.data[0], msg.data[1:]
            target = {channels.STDIN: "stdin", channels.RESIZE: "resize"}.get(channel)
            if target in streams and payload:
                with contextlib.suppress(ConnectionError):
                    await streams[target].write(payload)
            elif channel == channels.CLOSE and proto == channels.V5 and payload[:1] == bytes([channels.STDIN]):
                if "stdin" in streams:
                    with contextlib.suppress(ConnectionError):
                        await streams["stdin"].close()
        for stream in streams.values():  # the client went away: stop the session
            with contextlib.suppress(Exception):
                await stream.reset()

    async def output(kind: str, channel: int) -> None:
        stream = streams[kind]
        while chunk := await stream.read():
            await ws.send_bytes(bytes([channel]) + chunk)

    reader = asyncio.create_task(client_to_runtime())
    try:
        outputs = [output(k, c) for k, c in (("stdout", channels.STDOUT), ("stderr", channels.STDERR)) if k in streams]
        await asyncio.gather(*outputs)
        status = await asyncio.wait_for(streams["error"].read_all(), 30)
        if status:
            await ws.send_bytes(bytes([channels.STATUS]) + status)
    except (ConnectionError, TimeoutError):
        pass
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
        await ws.close()
