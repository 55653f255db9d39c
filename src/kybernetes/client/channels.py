"""Kubernetes channel WebSocket protocols (exec, attach, port-forward) and a frame relay.

Every binary message starts with a channel byte. For exec and attach: 0 stdin, 1 stdout,
2 stderr, 3 status (a JSON `Status` written once at the end), 4 resize (`{"Width","Height"}`)
and, in `v5.channel.k8s.io` only, 255 close (`[255, channel]`: the client closed that
stream, used for stdin EOF). `v4.channel.k8s.io` is v5 without the close channel. For
port-forward (v4): channel 2i carries data of the i-th port and 2i+1 its errors, and the
first frame on each channel is the port number, two bytes little-endian.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import web

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V1 = "channel.k8s.io"
EXEC_PROTOCOLS = (V5, V4, V1)
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def offered_protocols(request: web.Request) -> list[str]:
    raw = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def is_websocket(request: web.Request) -> bool:
    return (request.headers.get("Upgrade", "").lower() == "websocket"
            and "upgrade" in request.headers.get("Connection", "").lower())


def choose(offered: list[str], supported=EXEC_PROTOCOLS) -> str | None:
    for p in offered:
        if p in supported:
            return p
    return None


async def relay(downstream: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse,
                upstream_has_close: bool = True, on_close_channel=None) -> None:
    """Copy frames both ways until the upstream side ends, then close the downstream side.

    With `upstream_has_close` False (upstream speaks v4), `[255, n]` frames of the client
    are not forwarded; `on_close_channel(n)` is called instead, if given.
    """

    async def down_to_up() -> None:
        async for msg in downstream:
            if msg.type == aiohttp.WSMsgType.BINARY:
                data = msg.data
                if data[:1] == bytes([CLOSE]) and not upstream_has_close:
                    if on_close_channel is not None:
                        await on_close_channel(data[1] if len(data) > 1 else 0)
                    continue
                await upstream.send_bytes(data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await upstream.send_str(msg.data)
            else:
                break
        await upstream.close()  # the client went away: end the upstream session too

    async def up_to_down() -> None:
        async for msg in upstream:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await downstream.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await downstream.send_str(msg.data)
            else:
                break

    reader = asyncio.create_task(down_to_up())
    try:
        await up_to_down()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        with contextlib.suppress(Exception):
            await upstream.close()
        with contextlib.suppress(Exception):
            await downstream.close()
