"""The SPDY/3.1 session (`kybernetes.client.spdy`): two sessions wired back to back, no network."""

from __future__ import annotations

import asyncio
import struct
import zlib

from kybernetes.client import spdy


def test_dictionary_and_header_blocks():
    assert len(spdy.DICTIONARY) == 1423 and spdy.DICTIONARY.endswith(b"enq=0.")
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2  # the dictionary id in every SPDY/3 header stream
    ours, theirs = spdy.HeaderCodec(), spdy.HeaderCodec()
    first = ours.encode({"streamType": "error", "port": "80", "requestID": "0"})
    second = ours.encode({"streamType": "data", "port": "80", "requestID": "0", "x": ["a", "b"]})
    assert first[2:6] == bytes.fromhex("e3c6a7c2")
    assert theirs.decode(first) == {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}
    assert theirs.decode(second)["x"] == ["a", "b"]


def test_frames_split_anywhere():
    frames = spdy.data_frame(3, b"hello") + spdy.control_frame(spdy.PING, 0, struct.pack("!I", 7))
    frames += spdy.data_frame(3, b"", fin=True)
    reader = spdy.FrameReader()
    got = [f for i in range(len(frames)) for f in reader.feed(frames[i:i + 1])]
    assert [(f.type, f.stream_id, f.payload, f.fin) for f in got] == [
        (spdy.DATA, 3, b"hello", False), (spdy.PING, 0, struct.pack("!I", 7), False), (spdy.DATA, 3, b"", True)]


def test_sessions_back_to_back():
    async def main():
        sent = {"client": [], "server": []}
        client = server = None

        async def to_server(data: bytes):
            sent["client"].append(data)
            await server.feed(data)

        async def to_client(data: bytes):
            sent["server"].append(data)
            await client.feed(data)

        client, server = spdy.Session(to_server, server=False), spdy.Session(to_client, server=True)
        error = await client.open_stream({"streamType": "error", "port": "80", "requestID": "0"})
        data = await client.open_stream({"streamType": "data", "port": "80", "requestID": "0"})
        assert (error.id, data.id) == (1, 3)
        s_error, s_data = await server.incoming.get(), await server.incoming.get()
        assert (s_error.header("streamType"), s_data.header("requestID")) == ("error", "0")
        await server.reply(s_error)
        await server.reply(s_data)
        await asyncio.wait_for(data.replied.wait(), 1)
        await data.write(b"x" * 100_000)
        await data.close()
        assert await s_data.read_all() == b"x" * 100_000
        await s_data.write(b"answer")
        await s_data.close()
        assert await data.read_all() == b"answer"
        await client.send(spdy.control_frame(spdy.PING, 0, struct.pack("!I", 1)))
        assert sent["server"][-1] == spdy.control_frame(spdy.PING, 0, struct.pack("!I", 1))  # echoed
        await error.reset()
        assert s_error.was_reset and await s_error.read() == b""
        await client.close()
        assert await server.incoming.get() is None

    asyncio.run(main())
