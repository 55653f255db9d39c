"""Content negotiation: request bodies in, JSON and Tables out."""

from __future__ import annotations

import orjson
import yaml
from aiohttp import web

from ..api import errors, protobuf

MAX_BODY = 3 * 1024 * 1024  # upstream's 3 MiB request limit

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
APPLY_PATCH_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


async def read_body(request: web.Request) -> bytes:
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise errors.too_large()
    chunks: list[bytes] = []
    size = 0
    while True:  # StreamReader.read(n) returns what has arrived so far, not n bytes: read to the end
        chunk = await request.content.read(MAX_BODY + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            raise errors.too_large()
    return b"".join(chunks)


def decode_json(data: bytes, what: str = "the request body") -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise errors.bad_request(f"error decoding {what}: invalid JSON: {e}") from None


def decode_yaml(data: bytes) -> object:
    try:
        return yaml.load(data, Loader=_Loader)
    except yaml.YAMLError as e:
        raise errors.bad_request(f"error converting YAML to JSON: {e}".replace("\n", " ")) from None


def decode_object(data: bytes, content_type: str) -> dict:
    """A create/update body as a dict; JSON or YAML, nothing else."""
    ct = media_type(content_type)
    if ct in ("", JSON, "*/*"):
        obj = decode_json(data)
    elif ct in (YAML, "application/x-yaml", "text/yaml"):
        obj = decode_yaml(data)
    elif ct == PROTOBUF:
        try:
            obj = protobuf.decode_object(data)
        except Exception as e:  # noqa: BLE001 - any malformed body is the client's error, never a 500
            raise errors.bad_request(f"error decoding the request body: {e}") from None
    else:
        raise errors.unsupported_media_type(f"{JSON}, {YAML}, {PROTOBUF}")
    if not isinstance(obj, dict):
        raise errors.bad_request("the request body must be a JSON object")
    return obj


def wants_table(accept: str | None) -> bool:
    """True when the client asked for a meta.k8s.io Table (kubectl get)."""
    if not accept:
        return False
    for part in accept.split(","):
        params = {}
        for p in part.split(";")[1:]:
            if "=" in p:
                k, v = p.split("=", 1)
                params[k.strip()] = v.strip()
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
            return True
    return False


def check_acceptable(accept: str | None) -> None:
    """406 when the client only takes formats we do not speak (protobuf, CBOR)."""
    if not accept:
        return
    for part in accept.split(","):
        mt = media_type(part)
        if mt in ("", "*/*", "application/*", JSON, YAML, "application/json-seq", "text/plain"):
            return
    raise errors.not_acceptable(
        "only the following media types are accepted: application/json, application/yaml"
    )


def json_response(body: object, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


def raw_json_response(body: bytes, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON, headers=headers)


def status_response(err: errors.StatusError) -> web.Response:
    return web.Response(
        body=orjson.dumps(err.status()), status=err.code, content_type=JSON, headers=err.headers or None
    )


def success_status(details: dict | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        body["details"] = details
    return body
