"""Decode Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``) into JSON dicts.

A body is the 4-byte magic ``k8s\\x00`` followed by a ``runtime.Unknown`` message::

    1 typeMeta {1 apiVersion, 2 kind}   2 raw bytes   3 contentEncoding   4 contentType

``raw`` is the object itself, in the proto2 wire format. Its message type is picked from
apiVersion + kind, and every field is turned into the JSON form the REST API uses, driven by
the field tables in `proto_fields.json` (field number -> JSON name, type,
label). The special apimachinery types (Quantity, Time, MicroTime, Duration, IntOrString,
RawExtension, FieldsV1, the ``items``-only string-list wrappers) get their JSON spelling.

Zero values follow what Go's JSON encoder would print after decoding into the API structs:
a non-pointer scalar field (label ``""``) holding its zero value is left out (``omitempty``),
while a pointer field (label ``"p"``) keeps an explicit ``false``/``0``/``""``. A Go struct
embedded with ``json:",inline"`` (label ``"i"``, e.g. Volume.volumeSource) is merged into its parent.

Malformed input raises :class:`ValueError`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import struct
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any


def _load_messages() -> dict[str, tuple[tuple[int, str, str, str], ...]]:
    """The generated tables; empty while tools/gen_proto_fields.py is making them."""
    path = Path(__file__).with_name("proto_fields.json")
    if not path.exists():
        return {}
    return {name: tuple(tuple(row) for row in rows) for name, rows in json.loads(path.read_text())["messages"].items()}


MESSAGES = _load_messages()

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

# API group -> proto package (short form, as the keys of MESSAGES start)
GROUP_PACKAGE = {
    "": "core",
    "apps": "apps",
    "batch": "batch",
    "policy": "policy",
    "autoscaling": "autoscaling",
    "extensions": "extensions",
    "rbac.authorization.k8s.io": "rbac",
    "authorization.k8s.io": "authorization",
    "authentication.k8s.io": "authentication",
    "scheduling.k8s.io": "scheduling",
    "networking.k8s.io": "networking",
    "coordination.k8s.io": "coordination",
    "storage.k8s.io": "storage",
    "admissionregistration.k8s.io": "admissionregistration",
    "admission.k8s.io": "admission",
    "certificates.k8s.io": "certificates",
    "discovery.k8s.io": "discovery",
    "events.k8s.io": "events",
    "flowcontrol.apiserver.k8s.io": "flowcontrol",
    "node.k8s.io": "node",
    "resource.k8s.io": "resource",
    "storagemigration.k8s.io": "storagemigration",
    "internal.apiserver.k8s.io": "apiserverinternal",
    "apidiscovery.k8s.io": "apidiscovery",
    "imagepolicy.k8s.io": "imagepolicy",
    "metrics.k8s.io": "metrics",
    "meta.k8s.io": "meta",
}

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5
# scalar type code -> wire type it is written with
_SCALAR_WIRE = {
    "i": _VARINT,
    "i32": _VARINT,
    "u": _VARINT,
    "z": _VARINT,
    "b": _VARINT,
    "e": _VARINT,
    "d": _I64,
    "x64": _I64,
    "sx64": _I64,
    "f": _I32,
    "x32": _I32,
    "sx32": _I32,
    "s": _LEN,
    "y": _LEN,
}
_NUMERIC = {k for k, w in _SCALAR_WIRE.items() if w != _LEN}
_ZERO: dict[str, Any] = {"s": "", "y": "", "b": False}

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


# ---------------------------------------------------------------------------------------------
# wire format


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise ValueError("protobuf: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("protobuf: varint longer than 10 bytes")


def iter_fields(buf: bytes, pos: int = 0, end: int | None = None) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(field number, wire type, value)``; value is an int, or bytes for length-delimited."""
    if end is None:
        end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise ValueError("protobuf: field number 0 is invalid")
        if wt == _VARINT:
            value, pos = _varint(buf, pos, end)
        elif wt == _I64:
            if pos + 8 > end:
                raise ValueError(f"protobuf: truncated 64-bit field {num}")
            value = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
        elif wt == _I32:
            if pos + 4 > end:
                raise ValueError(f"protobuf: truncated 32-bit field {num}")
            value = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        elif wt == _LEN:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise ValueError(f"protobuf: length of field {num} ({n}) runs past the end of the message")
            value = bytes(buf[pos : pos + n])
            pos += n
        elif wt == _SGROUP:
            pos = _skip_group(buf, pos, end, num)
            continue
        else:
            raise ValueError(f"protobuf: invalid wire type {wt} for field {num}")
        yield num, wt, value


def _skip_group(buf: bytes, pos: int, end: int, num: int) -> int:
    depth = 1
    while depth:
        key, pos = _varint(buf, pos, end)
        wt = key & 7
        if wt == _VARINT:
            _, pos = _varint(buf, pos, end)
        elif wt == _I64:
            pos += 8
        elif wt == _I32:
            pos += 4
        elif wt == _LEN:
            n, pos = _varint(buf, pos, end)
            pos += n
        elif wt == _SGROUP:
            depth += 1
        elif wt == _EGROUP:
            depth -= 1
        else:
            raise ValueError(f"protobuf: invalid wire type {wt} inside group {num}")
        if pos > end:
            raise ValueError(f"protobuf: truncated group {num}")
    return pos


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _scalar(typ: str, wt: int, value: Any, where: str) -> Any:
    want = _SCALAR_WIRE[typ]
    if wt != want:
        raise ValueError(f"protobuf: {where}: wire type {wt}, expected {want}")
    if typ in ("i", "i32", "e"):
        return _signed64(value)
    if typ == "u" or typ == "x64" or typ == "x32":
        return value
    if typ == "b":
        return value != 0
    if typ == "s":
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"protobuf: {where}: string is not valid UTF-8") from e
    if typ == "y":
        return base64.b64encode(value).decode("ascii")
    if typ == "z":
        return (value >> 1) ^ -(value & 1)
    if typ == "d":
        return struct.unpack("<d", value.to_bytes(8, "little"))[0]
    if typ == "f":
        return struct.unpack("<f", value.to_bytes(4, "little"))[0]
    if typ == "sx64":
        return _signed64(value)
    if typ == "sx32":
        return value - (1 << 32) if value >= 1 << 31 else value
    raise ValueError(f"protobuf: {where}: unknown scalar type {typ}")  # pragma: no cover


def _packed(typ: str, data: bytes, where: str) -> list[Any]:
    out: list[Any] = []
    wt = _SCALAR_WIRE[typ]
    pos, end = 0, len(data)
    while pos < end:
        if wt == _VARINT:
            v, pos = _varint(data, pos, end)
        else:
            size = 8 if wt == _I64 else 4
            if pos + size > end:
                raise ValueError(f"protobuf: {where}: truncated packed value")
            v = int.from_bytes(data[pos : pos + size], "little")
            pos += size
        out.append(_scalar(typ, wt, v, where))
    return out


# ---------------------------------------------------------------------------------------------
# messages


@cache
def _fields(msg: str) -> dict[int, tuple[str, str, str]]:
    spec = MESSAGES.get(msg)
    if spec is None:
        raise ValueError(f"protobuf: no field table for message {msg}")
    return {num: (name, typ, label) for num, name, typ, label in spec}


def _value(typ: str, wt: int, value: Any, where: str) -> Any:
    if typ in _SCALAR_WIRE:
        return _scalar(typ, wt, value, where)
    if wt != _LEN:
        raise ValueError(f"protobuf: {where}: wire type {wt}, expected a length-delimited message")
    return decode_message(value, typ)


def _map_entry(typ: str, data: bytes, where: str) -> tuple[Any, Any]:
    _, ktyp, vtyp = typ.split(":", 2)
    key: Any = _ZERO.get(ktyp, 0)
    val: Any = None
    for num, wt, v in iter_fields(data):
        if num == 1:
            key = _scalar(ktyp, wt, v, where + " key")
        elif num == 2:
            val = _value(vtyp, wt, v, where + f"[{key!r}]")
    if val is None:
        val = _ZERO.get(vtyp, 0) if vtyp in _SCALAR_WIRE else decode_message(b"", vtyp)
    return key, val


def decode_message(data: bytes, msg: str) -> Any:
    """Decode one message of type ``msg`` (a key of MESSAGES, e.g. ``core.v1.Pod``) to its JSON value."""
    special = _SPECIAL.get(msg)
    if special is not None:
        return special(data)
    fields = _fields(msg)
    out: dict[str, Any] = {}
    for num, wt, value in iter_fields(data):
        f = fields.get(num)
        if f is None:
            continue
        name, typ, label = f
        where = f"{msg}.{name}"
        if typ.startswith("map:"):
            if wt != _LEN:
                raise ValueError(f"protobuf: {where}: map entry must be length-delimited")
            k, v = _map_entry(typ, value, where)
            out.setdefault(name, {})[str(k) if not isinstance(k, str) else k] = v
        elif label == "r":
            items = out.setdefault(name, [])
            if wt == _LEN and typ in _NUMERIC:
                items.extend(_packed(typ, value, where))
            else:
                items.append(_value(typ, wt, value, where))
        elif label == "i":
            inner = _value(typ, wt, value, where)
            if isinstance(inner, dict):
                out.update(inner)
        else:
            out[name] = _value(typ, wt, value, where)
    for name, typ, label in fields.values():
        if name not in out:
            continue
        v = out[name]
        if v is _OMIT or (
            label == "" and (typ in _SCALAR_WIRE or typ == "intstr.IntOrString") and v == _ZERO.get(typ, 0)
        ):
            del out[name]
    return out


# ---------------------------------------------------------------------------------------------
# apimachinery types with their own JSON spelling


class _Omit:
    """Marker for a value Go's JSON would print as null (zero Time): the field is dropped."""

    def __repr__(self) -> str:  # pragma: no cover
        return "<omit>"


_OMIT = _Omit()


def _quantity(data: bytes) -> str:
    s = ""
    for num, wt, v in iter_fields(data):
        if num == 1:
            s = _scalar("s", wt, v, "Quantity.string")
    return s


def _timestamp(data: bytes, where: str) -> tuple[int, int] | None:
    if not data:
        return None
    seconds = nanos = 0
    for num, wt, v in iter_fields(data):
        if num == 1:
            seconds = _scalar("i", wt, v, where + ".seconds")
        elif num == 2:
            nanos = _scalar("i", wt, v, where + ".nanos")
    if not 0 <= nanos < 1_000_000_000:
        raise ValueError(f"protobuf: {where}: nanos {nanos} out of range")
    return seconds, nanos


def _to_datetime(seconds: int, where: str) -> _dt.datetime:
    try:
        return _EPOCH + _dt.timedelta(seconds=seconds)
    except OverflowError as e:
        raise ValueError(f"protobuf: {where}: seconds {seconds} out of range") from e


def _time(data: bytes) -> Any:
    ts = _timestamp(data, "Time")
    if ts is None:
        return _OMIT
    return _to_datetime(ts[0], "Time").strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_time(data: bytes) -> Any:
    ts = _timestamp(data, "MicroTime")
    if ts is None:
        return _OMIT
    d = _to_datetime(ts[0], "MicroTime")
    return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts[1] // 1000:06d}Z"


def go_duration(ns: int) -> str:
    """Spell nanoseconds the way Go's time.Duration.String does (``1h0m0s``, ``1.5s``, ``300ms``)."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    u = -ns if neg else ns
    if u < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if u >= size or unit == "ns":
                s = _frac(u, size) + unit
                break
    else:
        secs, frac = divmod(u, 1_000_000_000)
        h, rem = divmod(secs, 3600)
        m, sec = divmod(rem, 60)
        s = _frac(sec * 1_000_000_000 + frac, 1_000_000_000) + "s"
        if h:
            s = f"{h}h{m}m" + s
        elif m:
            s = f"{m}m" + s
    return "-" + s if neg else s


def _frac(v: int, size: int) -> str:
    whole, frac = divmod(v, size)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def _duration(data: bytes) -> str:
    ns = 0
    for num, wt, v in iter_fields(data):
        if num == 1:
            ns = _scalar("i", wt, v, "Duration.duration")
    return go_duration(ns)


def _int_or_string(data: bytes) -> int | str:
    typ, ival, sval = 0, 0, ""
    for num, wt, v in iter_fields(data):
        if num == 1:
            typ = _scalar("i", wt, v, "IntOrString.type")
        elif num == 2:
            ival = _scalar("i", wt, v, "IntOrString.intVal")
        elif num == 3:
            sval = _scalar("s", wt, v, "IntOrString.strVal")
    return sval if typ == 1 else ival


def _raw_json(raw: bytes, where: str) -> Any:
    if raw.startswith(MAGIC):
        return _decode_object(raw)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"protobuf: {where}: raw bytes are neither JSON nor a protobuf object") from e


def _raw_extension(data: bytes) -> Any:
    raw = b""
    for num, wt, v in iter_fields(data):
        if num == 1:
            if wt != _LEN:
                raise ValueError("protobuf: RawExtension.raw must be length-delimited")
            raw = v
    return _raw_json(raw, "RawExtension") if raw else None


def _fields_v1(data: bytes) -> Any:
    raw = b""
    for num, wt, v in iter_fields(data):
        if num == 1:
            if wt != _LEN:
                raise ValueError("protobuf: FieldsV1.Raw must be length-delimited")
            raw = v
    return _raw_json(raw, "FieldsV1") if raw else {}


def _string_list(data: bytes) -> list[str]:
    return [_scalar("s", wt, v, "items") for num, wt, v in iter_fields(data) if num == 1]


_SPECIAL = {
    "resource.Quantity": _quantity,
    "meta.v1.Time": _time,
    "meta.v1.MicroTime": _micro_time,
    "meta.v1.Duration": _duration,
    "intstr.IntOrString": _int_or_string,
    "runtime.RawExtension": _raw_extension,
    "meta.v1.FieldsV1": _fields_v1,
    "meta.v1.Verbs": _string_list,
    "authentication.v1.ExtraValue": _string_list,
    "authentication.v1beta1.ExtraValue": _string_list,
    "authorization.v1.ExtraValue": _string_list,
    "authorization.v1beta1.ExtraValue": _string_list,
    "certificates.v1.ExtraValue": _string_list,
    "certificates.v1beta1.ExtraValue": _string_list,
}


# ---------------------------------------------------------------------------------------------
# the envelope


def message_for(api_version: str, kind: str) -> str:
    """The MESSAGES key for ``apiVersion`` + ``kind``; ValueError when we have no table for it."""
    group, _, version = api_version.rpartition("/")
    if not version or not kind:
        raise ValueError(f"protobuf: object has no apiVersion/kind (got {api_version!r}, {kind!r})")
    pkg = GROUP_PACKAGE.get(group)
    if pkg is not None:
        name = f"{pkg}.{version}.{kind}"
        if name in MESSAGES:
            return name
    if group in ("", "meta.k8s.io"):
        name = f"meta.{version}.{kind}"
        if name in MESSAGES:
            return name
    raise ValueError(f"protobuf: cannot decode kind {kind!r} of {api_version!r}; send it as JSON")


def decode_unknown(data: bytes) -> tuple[str, str, bytes, str, str]:
    """Split a ``runtime.Unknown`` (without magic) into (apiVersion, kind, raw, contentEncoding, contentType)."""
    api_version = kind = encoding = ctype = ""
    raw = b""
    for num, wt, v in iter_fields(data):
        if num in (1, 2, 3, 4) and wt != _LEN:
            raise ValueError(f"protobuf: envelope field {num} must be length-delimited")
        if num == 1:
            for tn, twt, tv in iter_fields(v):
                if tn == 1:
                    api_version = _scalar("s", twt, tv, "TypeMeta.apiVersion")
                elif tn == 2:
                    kind = _scalar("s", twt, tv, "TypeMeta.kind")
        elif num == 2:
            raw = v
        elif num == 3:
            encoding = _scalar("s", wt, v, "Unknown.contentEncoding")
        elif num == 4:
            ctype = _scalar("s", wt, v, "Unknown.contentType")
    return api_version, kind, raw, encoding, ctype


def decode_object(data: bytes) -> dict[str, Any]:
    """Decode a Kubernetes protobuf body (magic + runtime.Unknown) into the object's JSON dict."""
    try:
        return _decode_object(data)
    except RecursionError as e:
        raise ValueError("protobuf: object nests too deeply") from e


def _decode_object(data: bytes) -> dict[str, Any]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError("protobuf: body must be bytes")
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise ValueError("protobuf: body does not start with the Kubernetes magic prefix 'k8s\\x00'")
    api_version, kind, raw, encoding, ctype = decode_unknown(data[len(MAGIC) :])
    if encoding:
        raise ValueError(f"protobuf: content encoding {encoding!r} is not supported")
    if ctype and ctype not in ("application/vnd.kubernetes.protobuf", "application/protobuf"):
        if ctype == "application/json":
            obj = _raw_json(raw, "Unknown.raw")
            if not isinstance(obj, dict):
                raise ValueError("protobuf: embedded JSON is not an object")
            return obj
        raise ValueError(f"protobuf: embedded content type {ctype!r} is not supported")
    msg = message_for(api_version, kind)
    body = decode_message(raw, msg)
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    out.update(body)
    return out
