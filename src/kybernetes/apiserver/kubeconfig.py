"""Admin kubeconfig: the cluster CA plus the admin client certificate, embedded."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import yaml

from .certs import ClusterPKI


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig_dict(server_url: str, pki: ClusterPKI, name: str = "default") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server_url,
                                                "certificate-authority-data": _b64(pki.ca.cert)}}],
        "users": [{"name": name, "user": {"client-certificate-data": _b64(pki.admin.cert),
                                          "client-key-data": _b64(pki.admin.key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: Path, server_url: str, pki: ClusterPKI) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(kubeconfig_dict(server_url, pki), f, default_flow_style=False)
    os.replace(tmp, path)
