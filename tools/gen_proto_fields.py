"""Generate src/kybernetes/api/proto_fields.json: the protobuf field tables of the Kubernetes API.

Source: the Go binary of kubectl 1.32 registers every API package's ``generated.proto`` as a
gzipped ``FileDescriptorProto`` (k8s.io/api/*, k8s.io/apimachinery/*). This script finds those
gzip streams in the binary, decodes the descriptors with our own wire reader and writes, for
each message, its fields as ``(number, json name, type, label)``:

* type: a scalar code (``s`` string, ``y`` bytes, ``i`` signed varint, ``u`` unsigned varint,
  ``z`` zigzag varint, ``b`` bool, ``e`` enum, ``d`` double, ``f`` float, ``x32``/``x64``
  fixed, ``sx32``/``sx64`` sfixed), a message name (short form, e.g. ``core.v1.PodSpec``,
  ``meta.v1.ObjectMeta``, ``resource.Quantity``), or ``map:<key type>:<value type>``;
* label: ``r`` repeated, ``i`` an embedded struct whose JSON keys are inlined into the parent, ``p`` optional pointer field (zero values are kept), ``""`` optional
  non-pointer field (gogoproto ``nullable=false``: zero values are left out, like ``omitempty``).

Usage: python tools/gen_proto_fields.py [path/to/kubectl] [output-path]
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import sys
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "kybernetes" / "api" / "proto_fields.json"
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00"
NULLABLE = 65001  # gogoproto.nullable (FieldOptions extension)
PREFIXES = (
    "k8s.io.api.",
    "k8s.io.apimachinery.pkg.apis.",
    "k8s.io.apimachinery.pkg.api.",
    "k8s.io.apimachinery.pkg.util.",
    "k8s.io.apimachinery.pkg.",
    "k8s.io.metrics.pkg.apis.",
)
# proto field names are the JSON names, except a few capitalised ones; JSON keeps only this one capital
KEEP_CAPITAL = {("core.v1.DaemonEndpoint", "Port")}
# Go structs embedded with `json:",inline"`: their proto field is a message named after its type,
# and its JSON keys go straight into the parent object (label "i"). Same-named fields that are not
# embedded:
NOT_INLINE = {"userInfo", "podSignature", "podAffinityTerm", "limitResponse", "roleRef", "time"}
INLINE = {("core.v1.Probe", "handler")}
SCALARS = {
    1: "d",
    2: "f",
    3: "i",
    4: "u",
    5: "i",
    6: "x64",
    7: "x32",
    8: "b",
    9: "s",
    12: "y",
    13: "u",
    14: "e",
    15: "sx32",
    16: "sx64",
    17: "z",
    18: "z",
}


@functools.cache
def _wire():
    # our own wire reader; it loads without the tables when proto_fields.json does not exist yet
    from kybernetes.api.protobuf import iter_fields

    return iter_fields


def _iter(buf: bytes):
    return _wire()(buf)


def short(name: str) -> str:
    name = name.lstrip(".")
    for p in PREFIXES:
        if name.startswith(p):
            return name[len(p) :]
    return name


def descriptors(binary: Path) -> list[bytes]:
    data = binary.read_bytes()
    found: dict[str, bytes] = {}
    for m in re.finditer(re.escape(GZIP_HEADER), data):
        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[m.start() : m.start() + 4_000_000])
        except zlib.error:
            continue
        if d[:1] != b"\n" or b"generated.proto" not in d[:200]:
            continue
        fname = d[2 : 2 + d[1]].decode()
        if fname.startswith("k8s.io/"):
            found[fname] = d
    return [found[k] for k in sorted(found)]


def parse_file(d: bytes, messages: dict, maps: dict) -> None:
    package = ""
    bodies = []
    for num, _, v in _iter(d):
        if num == 2:
            package = v.decode()
        elif num == 4:
            bodies.append(v)
    for body in bodies:
        parse_message(body, package, messages, maps)


def parse_message(body: bytes, scope: str, messages: dict, maps: dict) -> None:
    name = ""
    fields = []
    nested = []
    map_entry = False
    for num, _, v in _iter(body):
        if num == 1:
            name = v.decode()
        elif num == 2:
            fields.append(parse_field(v))
        elif num == 3:
            nested.append(v)
        elif num == 7:
            map_entry = any(n == 7 and val for n, _, val in _iter(v))
    full = f"{scope}.{name}"
    for n in nested:
        parse_message(n, full, messages, maps)
    if map_entry:
        maps[full] = {f["number"]: f for f in fields}
    else:
        messages[full] = fields


def parse_field(body: bytes) -> dict:
    f = {"name": "", "number": 0, "label": 1, "type": 0, "type_name": "", "nullable": True}
    for num, _, v in _iter(body):
        if num == 1:
            f["name"] = v.decode()
        elif num == 3:
            f["number"] = v
        elif num == 4:
            f["label"] = v
        elif num == 5:
            f["type"] = v
        elif num == 6:
            f["type_name"] = v.decode().lstrip(".")
        elif num == 8:
            for on, _, ov in _iter(v):
                if on == NULLABLE:
                    f["nullable"] = bool(ov)
    return f


def type_code(f: dict, maps: dict) -> str:
    if f["type"] in SCALARS:
        return SCALARS[f["type"]]
    if f["type"] != 11:
        raise SystemExit(f"unsupported field type {f['type']} for {f['name']}")
    entry = maps.get(f["type_name"])
    if entry is not None:
        return f"map:{type_code(entry[1], maps)}:{type_code(entry[2], maps)}"
    return short(f["type_name"])


def is_inline(msg: str, f: dict) -> bool:
    if (msg, f["name"]) in INLINE:
        return True
    simple = f["type_name"].rsplit(".", 1)[-1]
    return f["name"] == simple[:1].lower() + simple[1:] and f["name"] not in NOT_INLINE


def render(messages: dict, maps: dict) -> str:
    """The tables as JSON: message -> [[field number, JSON name, type code, label], ...]."""
    table = {}
    for full in sorted(messages, key=short):
        rows = []
        for f in messages[full]:
            label = "r" if f["label"] == 3 else ("p" if f["nullable"] and f["label"] != 2 else "")
            if label == "" and f["type"] == 11 and f["type_name"] not in maps and is_inline(short(full), f):
                label = "i"
            name = f["name"]
            if (short(full), name) not in KEEP_CAPITAL:
                name = name[:1].lower() + name[1:]
            rows.append([f["number"], name, type_code(f, maps), label])
        table[short(full)] = rows
    doc = {"_comment": "Protobuf field tables of the Kubernetes 1.32 API, generated by tools/gen_proto_fields.py: "
                       "message -> [[field number, JSON name, type, label], ...]. Do not edit by hand.",
           "messages": dict(sorted(table.items()))}
    return json.dumps(doc, separators=(",", ":"))


def main() -> None:
    binary = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(shutil.which("kubectl") or "kubectl")
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else OUT
    messages: dict = {}
    maps: dict = {}
    files = descriptors(binary.resolve())
    if not files:
        raise SystemExit(f"no generated.proto descriptors found in {binary}")
    for d in files:
        parse_file(d, messages, maps)
    out.write_text(render(messages, maps))
    print(f"{len(files)} files, {len(messages)} messages -> {out}")


if __name__ == "__main__":
    main()
