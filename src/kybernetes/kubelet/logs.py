"""CRI container log files: writing them (sim runtime) and reading them for `/containerLogs`.

A CRI log file holds one entry per line: `<RFC3339Nano time> <stdout|stderr> <P|F> <text>`.
`P` marks a partial line (the runtime split a long line); the following entries up to the
next `F` continue it. Readers join partial entries back into one line, as the kubelet does.

`LogOptions` mirrors upstream's PodLogOptions as the kubelet applies them: `tailLines` counts
whole lines, `sinceSeconds`/`sinceTime` filter on the entry's time, `timestamps` prefixes
each line with its time (nine fraction digits), `limitBytes` caps the output and `follow`
keeps reading until the container is no longer running.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ..api.meta import parse_time


@dataclass
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since: float | None = None  # epoch seconds
    timestamps: bool = False
    limit_bytes: int | None = None


class LogError(ValueError):
    """Bad log options; the message is the answer."""


def _int(query, key: str, minimum: int) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise LogError(f"invalid {key} {raw!r}: must be an integer") from None
    if value < minimum:
        raise LogError(f"{key} must be {'greater than or equal to' if minimum == 0 else 'greater than'} "
                       f"{minimum - 1 if minimum else 0}")
    return value


def options_from_query(query, now: float | None = None) -> LogOptions:
    def flag(key: str) -> bool:
        return (query.get(key) or "").lower() in ("1", "true", "t", "yes")

    opts = LogOptions(follow=flag("follow"), timestamps=flag("timestamps"))
    opts.tail_lines = _int(query, "tailLines", 0)
    opts.limit_bytes = _int(query, "limitBytes", 1)
    seconds = _int(query, "sinceSeconds", 1)
    since_time = query.get("sinceTime")
    if seconds is not None and since_time:
        raise LogError("at most one of sinceTime or sinceSeconds may be specified")
    if seconds is not None:
        opts.since = (now if now is not None else datetime.datetime.now(datetime.UTC).timestamp()) - seconds
    elif since_time:
        parsed = parse_time(since_time)
        if parsed is None:
            raise LogError(f"invalid sinceTime {since_time!r}")
        opts.since = parsed.timestamp()
    return opts


# --- the format -------------------------------------------------------------------------------------
def format_time(t: float | datetime.datetime) -> str:
    """RFC3339 with nine fraction digits in UTC, as CRI runtimes write and the kubelet prints."""
    if not isinstance(t, datetime.datetime):
        t = datetime.datetime.fromtimestamp(t, datetime.UTC)
    t = t.astimezone(datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{t.microsecond:06d}000Z"


def entry(stream: str, text: str, t: float, partial: bool = False) -> bytes:
    return f"{format_time(t)} {stream} {'P' if partial else 'F'} {text}\n".encode()


def parse_entry(line: bytes) -> tuple[str, str, bool, bytes] | None:
    """(timestamp, stream, partial, text) of one file line, None for a malformed one."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    ts, stream, tag = parts[0], parts[1], parts[2]
    text = parts[3] if len(parts) > 3 else b""
    return ts.decode(errors="replace"), stream.decode(errors="replace"), tag.startswith(b"P"), text


def _epoch(ts: str) -> float:
    try:
        date, _, frac = ts.rstrip("Z").partition(".")
        base = datetime.datetime.strptime(date[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
        return base.timestamp() + (float("0." + frac.split("+")[0].split("-")[0]) if frac else 0.0)
    except ValueError:
        return 0.0


def _normalize(ts: str) -> str:
    date, _, frac = ts.rstrip("Z").partition(".")
    return f"{date}.{(frac + '000000000')[:9]}Z"


class _Assembler:
    """Turns file lines into output lines, joining partial entries."""

    def __init__(self, opts: LogOptions):
        self.opts = opts
        self.pending: list[bytes] = []
        self.first_ts = ""

    def feed(self, raw: bytes) -> bytes | None:
        parsed = parse_entry(raw)
        if parsed is None:
            return None
        ts, _stream, partial, text = parsed
        if not self.pending:
            self.first_ts = ts
        self.pending.append(text)
        if partial:
            return None
        body = b"".join(self.pending) + b"\n"
        self.pending = []
        if self.opts.since is not None and _epoch(self.first_ts) < self.opts.since:
            return None
        if self.opts.timestamps:
            body = _normalize(self.first_ts).encode() + b" " + body
        return body


async def read_log(path: str, opts: LogOptions, running: Callable[[], bool],
                   poll: float = 0.2) -> AsyncIterator[bytes]:
    """Yield output lines of the log file at `path` under `opts`; with follow, until not `running()`."""
    asm = _Assembler(opts)
    budget = opts.limit_bytes
    try:
        f = open(path, "rb")  # noqa: SIM115 - held across awaits
    except FileNotFoundError:
        return
    with f:
        lines = f.readlines()
        rest = b""
        if lines and not lines[-1].endswith(b"\n"):
            rest = lines.pop()
        out: deque[bytes] | list[bytes]
        out = deque(maxlen=opts.tail_lines) if opts.tail_lines is not None else []
        for raw in lines:
            got = asm.feed(raw)
            if got is not None:
                out.append(got)
        for chunk in out:
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            yield chunk
            if budget is not None and budget <= 0:
                return
        if not opts.follow:
            return
        while True:
            data = f.read()
            if not data:
                if not running():
                    data = f.read()  # what the container wrote just before it exited
                    if not data:
                        return
                else:
                    await asyncio.sleep(poll)
                    continue
            buf = rest + data
            *complete, rest = buf.split(b"\n")
            for raw in complete:
                got = asm.feed(raw + b"\n")
                if got is None:
                    continue
                if budget is not None:
                    got = got[:budget]
                    budget -= len(got)
                yield got
                if budget is not None and budget <= 0:
                    return


def append(path: str, stream: str, text: str, t: float) -> None:
    """Append one full entry (the sim runtime's container output)."""
    try:
        f = open(path, "ab")
    except FileNotFoundError:  # the first entry of a container: make its directory (once, not per entry)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        f = open(path, "ab")
    with f:
        f.write(entry(stream, text, t))
