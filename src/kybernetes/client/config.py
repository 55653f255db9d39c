"""Kubeconfig files: the server address, its CA and the client's credentials."""

from __future__ import annotations

import base64
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass
class ClientConfig:
    server: str
    ssl_context: ssl.SSLContext | None
    token: str = ""

    @classmethod
    def from_kubeconfig(cls, path: str | Path, context: str | None = None) -> ClientConfig:
        doc = yaml.safe_load(Path(path).expanduser().read_text())
        base = Path(path).expanduser().parent
        ctx_name = context or doc.get("current-context")
        ctx = _named(doc.get("contexts"), ctx_name, "context")
        cluster = _named(doc.get("clusters"), ctx.get("cluster"), "cluster")
        user = _named(doc.get("users"), ctx.get("user"), "user") if ctx.get("user") else {}
        server = cluster["server"].rstrip("/")
        ssl_ctx = None
        if server.startswith("https://"):
            ssl_ctx = ssl.create_default_context()
            ca = _material(cluster, "certificate-authority", base)
            if cluster.get("insecure-skip-tls-verify"):
                ssl_ctx.check_hostname = False
                ssl_ctx.verify_mode = ssl.CERT_NONE
            elif ca:
                ssl_ctx.load_verify_locations(cadata=ca.decode())
            cert, key = _material(user, "client-certificate", base), _material(user, "client-key", base)
            if cert and key:
                with tempfile.NamedTemporaryFile() as c, tempfile.NamedTemporaryFile() as k:
                    c.write(cert)
                    c.flush()
                    k.write(key)
                    k.flush()
                    ssl_ctx.load_cert_chain(c.name, k.name)
        token = user.get("token", "")
        if not token and user.get("tokenFile"):
            token = (base / user["tokenFile"]).read_text().strip()
        return cls(server, ssl_ctx, token)


def _named(items, name, what) -> dict:
    for item in items or ():
        if item.get("name") == name:
            return item.get(what) or {}
    raise ValueError(f"kubeconfig has no {what} named {name!r}")


def _material(section: dict, key: str, base: Path) -> bytes | None:
    if section.get(f"{key}-data"):
        return base64.b64decode(section[f"{key}-data"])
    if section.get(key):
        return (base / section[key]).read_bytes()
    return None
