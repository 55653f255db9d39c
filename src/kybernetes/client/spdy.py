"""SPDY/3.1: frames, compressed header blocks and an asyncio session (the parts Kubernetes streaming uses).

Wire facts (SPDY draft 3.1): a control frame starts with the control bit and version 3, then a
16-bit type, 8-bit flags and a 24-bit length; a data frame with a 31-bit stream id, 8-bit flags
and a 24-bit length. SYN_STREAM, SYN_REPLY and HEADERS carry a name/value block (32-bit count,
then 32-bit length-prefixed names and values, several values of one name joined by NUL),
zlib-compressed with the SPDY/3 dictionary in one compression context per direction for the
whole session and flushed with a sync flush after every block. Streams a client opens have
odd ids, a server's even ids; PINGs follow the same parity and are echoed by the other side.

The session takes bytes from any transport (`feed`) and writes through an async callable, so
the same code serves a WebSocket tunnel (`SPDY/3.1+portforward.k8s.io`) and a raw upgraded
connection. Flow control windows are not enforced in either direction, as moby/spdystream
(the Go implementation kubectl and the kubelet use) does not enforce them either.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

VERSION = 3
DATA, SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 0, 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL, INTERNAL_ERROR = 1, 2, 3, 4, 5, 6
MAX_DATA = 32 * 1024  # bytes per DATA frame we send


def _dictionary() -> bytes:
    words = ["options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
             "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
             "content-base", "content-encoding", "content-language", "content-length", "content-location",
             "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
             "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
             "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
             "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
             "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
             "public", "set-cookie", "keep-alive", "origin"]
    head = b"".join(struct.pack("!I", len(w)) + w.encode() for w in words)
    tail = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
            "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
            "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
            "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
            "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
            "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    return head + tail.encode()


DICTIONARY = _dictionary()


class ProtocolError(Exception):
    pass


@dataclass
class Frame:
    type: int  # DATA (0) or a control frame type
    flags: int
    payload: bytes
    stream_id: int = 0  # DATA frames, and control frames that name a stream

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


_STREAM_FRAMES = (SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE)


class FrameReader:
    """Splits a byte stream into frames (bytes may arrive in any chunking)."""

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        out = []
        while len(buf) >= 8:
            length = int.from_bytes(buf[5:8], "big")
            if len(buf) < 8 + length:
                break
            first, flags = int.from_bytes(buf[0:4], "big"), buf[4]
            payload = bytes(buf[8:8 + length])
            del buf[:8 + length]
            if first & 0x80000000:
                version, ftype = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"unsupported SPDY version {version}")
                sid = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF if ftype in _STREAM_FRAMES else 0
                out.append(Frame(ftype, flags, payload, sid))
            else:
                out.append(Frame(DATA, flags, payload, first & 0x7FFFFFFF))
        return out


def control_frame(ftype: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("!HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    return struct.pack("!II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


class HeaderCodec:
    """The two zlib contexts of one session: ours for blocks we send, the peer's for blocks we read."""

    def __init__(self):
        self._out = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                     DICTIONARY)
        self._in = zlib.decompressobj(zdict=DICTIONARY)

    def encode(self, headers: dict[str, str | list[str]]) -> bytes:
        parts = [struct.pack("!I", len(headers))]
        for name, value in headers.items():
            n = name.lower().encode()
            v = ("\x00".join(value) if isinstance(value, list) else str(value)).encode()
            parts += [struct.pack("!I", len(n)), n, struct.pack("!I", len(v)), v]
        return self._out.compress(b"".join(parts)) + self._out.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> dict[str, list[str]]:
        try:
            raw = self._in.decompress(block)
        except zlib.error as e:
            raise ProtocolError(f"bad header block: {e}") from None
        try:
            (count,), pos, out = struct.unpack_from("!I", raw), 4, {}
            for _ in range(count):
                (ln,) = struct.unpack_from("!I", raw, pos)
                name = raw[pos + 4:pos + 4 + ln].decode()
                pos += 4 + ln
                (lv,) = struct.unpack_from("!I", raw, pos)
                value = raw[pos + 4:pos + 4 + lv].decode()
                pos += 4 + lv
                out.setdefault(name, []).extend(value.split("\x00"))
            return out
        except (struct.error, UnicodeDecodeError) as e:
            raise ProtocolError(f"bad header block: {e}") from None


class Stream:
    def __init__(self, session: Session, stream_id: int, headers: dict[str, list[str]]):
        self.session, self.id, self.headers = session, stream_id, headers
        self.replied = asyncio.Event()
        self.reply_headers: dict[str, list[str]] = {}
        self.remote_closed = False  # FIN or RST from the peer
        self.local_closed = False  # we sent FIN or RST
        self.was_reset = False
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower()) or [""]
        return values[0]

    async def read(self) -> bytes:
        """The next chunk of data; b"" once the peer finished (FIN), reset the stream or went away."""
        if self.remote_closed and self._chunks.empty():
            return b""
        chunk = await self._chunks.get()
        if not chunk:
            self._chunks.put_nowait(b"")  # later reads see the end too
        return chunk

    async def read_all(self) -> bytes:
        out = bytearray()
        while chunk := await self.read():
            out += chunk
        return bytes(out)

    async def write(self, data: bytes) -> None:
        if self.local_closed or self.was_reset:
            raise ConnectionResetError(f"SPDY stream {self.id} is closed")
        for i in range(0, len(data), MAX_DATA):
            await self.session.send(data_frame(self.id, data[i:i + MAX_DATA]))

    async def close(self) -> None:
        """Half-close: an empty DATA frame with FIN."""
        if not self.local_closed and not self.was_reset:
            self.local_closed = True
            await self.session.send(data_frame(self.id, b"", fin=True))

    async def reset(self, status: int = CANCEL) -> None:
        if not self.was_reset:
            self.local_closed = True
            self._end(reset=True)
            await self.session.send(control_frame(RST_STREAM, 0, struct.pack("!II", self.id, status)))

    def _push(self, data: bytes) -> None:
        if data and not self.remote_closed:
            self._chunks.put_nowait(data)

    def _end(self, reset: bool = False) -> None:
        if reset:
            self.was_reset = True
        if not self.remote_closed:
            self.remote_closed = True
            self._chunks.put_nowait(b"")
        self.replied.set()


class Session:
    """One SPDY/3.1 session over any byte transport: `feed` what arrives, `write` is how to send."""

    def __init__(self, write: Callable[[bytes], Awaitable[None]], server: bool = True):
        self._write = write
        self._lock = asyncio.Lock()
        self._codec = HeaderCodec()
        self._reader = FrameReader()
        self.server = server
        self.streams: dict[int, Stream] = {}
        self.incoming: asyncio.Queue[Stream | None] = asyncio.Queue()  # streams the peer opened; None at the end
        self._next_id = 2 if server else 1
        self._last_peer_id = 0
        self.closed = False

    async def send(self, frame: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("SPDY session is closed")
        async with self._lock:
            await self._write(frame)

    async def _send_headers(self, ftype: int, flags: int, prefix: bytes, headers: dict) -> None:
        if self.closed:
            raise ConnectionResetError("SPDY session is closed")
        async with self._lock:  # compress in the order the blocks go out: one zlib context for the session
            await self._write(control_frame(ftype, flags, prefix + self._codec.encode(headers)))

    async def open_stream(self, headers: dict[str, str], fin: bool = False) -> Stream:
        sid, self._next_id = self._next_id, self._next_id + 2
        stream = self.streams[sid] = Stream(self, sid, {k: [v] for k, v in headers.items()})
        stream.local_closed = fin
        await self._send_headers(SYN_STREAM, FLAG_FIN if fin else 0, struct.pack("!IIH", sid, 0, 0), headers)
        return stream

    async def reply(self, stream: Stream, headers: dict | None = None, fin: bool = False) -> None:
        stream.replied.set()
        stream.local_closed = stream.local_closed or fin
        await self._send_headers(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack("!I", stream.id), headers or {})

    async def feed(self, data: bytes) -> None:
        for frame in self._reader.feed(data):
            await self._handle(frame)

    async def _handle(self, f: Frame) -> None:
        stream = self.streams.get(f.stream_id)
        if f.type == DATA:
            if stream is not None:
                stream._push(f.payload)
                if f.fin:
                    stream._end()
        elif f.type == SYN_STREAM:
            headers = self._codec.decode(f.payload[10:])
            if f.stream_id in self.streams or f.stream_id <= self._last_peer_id:
                await self.send(control_frame(RST_STREAM, 0, struct.pack("!II", f.stream_id, PROTOCOL_ERROR)))
                return
            self._last_peer_id = f.stream_id
            stream = self.streams[f.stream_id] = Stream(self, f.stream_id, headers)
            if f.fin:
                stream._end()
            self.incoming.put_nowait(stream)
        elif f.type in (SYN_REPLY, HEADERS):
            headers = self._codec.decode(f.payload[4:])  # always: the zlib context must see every block
            if stream is not None:
                stream.reply_headers.update(headers)
                stream.replied.set()
                if f.fin:
                    stream._end()
        elif f.type == RST_STREAM:
            if stream is not None:
                stream.local_closed = True
                stream._end(reset=True)
                self.streams.pop(f.stream_id, None)
        elif f.type == PING:
            (ping_id,) = struct.unpack_from("!I", f.payload)
            if ping_id % 2 != (0 if self.server else 1):  # the peer's ping: echo it
                await self.send(control_frame(PING, 0, f.payload[:4]))
        elif f.type == GOAWAY:
            self.incoming.put_nowait(None)
        # SETTINGS and WINDOW_UPDATE: nothing to do (no flow control enforced, see the module docstring)

    def forget(self, stream: Stream) -> None:
        self.streams.pop(stream.id, None)

    async def close(self, status: int = 0) -> None:
        """GOAWAY (when still possible), then end every stream."""
        if not self.closed:
            try:
                await self.send(control_frame(GOAWAY, 0, struct.pack("!II", self._last_peer_id, status)))
            except Exception:  # noqa: BLE001 - the transport may be gone already
                pass
        self.connection_lost()

    def connection_lost(self) -> None:
        self.closed = True
        for stream in list(self.streams.values()):
            stream.local_closed = True
            stream._end()
        self.incoming.put_nowait(None)
