"""Node-local volume directories of a pod and the mounts of each container (a first volume manager).

Layout as upstream's: DATA_DIR/agent/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>.
Supported here: emptyDir (a directory; `medium: Memory` too, not yet a tmpfs) and hostPath
(with `type` DirectoryOrCreate/FileOrCreate), plus the managed /etc/hosts and the
container's termination-message file. Other volume types are skipped for now.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False


def pod_dir(root: Path, uid: str) -> Path:
    return Path(root) / uid


def _volume_path(root: Path, uid: str, volume: dict) -> str | None:
    if "emptyDir" in volume:
        path = pod_dir(root, uid) / "volumes" / "kubernetes.io~empty-dir" / volume["name"]
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o777)
        return str(path)
    host = volume.get("hostPath")
    if host:
        path = Path(host["path"])
        kind = host.get("type") or ""
        if kind == "DirectoryOrCreate":
            path.mkdir(parents=True, exist_ok=True)
        elif kind == "FileOrCreate" and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        return str(path)
    return None


def etc_hosts(root: Path, pod: dict, pod_ip: str) -> str:
    """The pod's /etc/hosts as the kubelet writes it (hostAliases included)."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    hostname = spec.get("hostname") or meta["name"]
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if pod_ip:
        fqdn = f"{hostname}.{spec['subdomain']}.{meta.get('namespace', '')}.svc.cluster.local" \
            if spec.get("subdomain") else ""
        lines.append(f"{pod_ip}\t{fqdn + chr(9) if fqdn else ''}{hostname}")
    for alias in spec.get("hostAliases") or ():
        lines.append(f"{alias.get('ip', '')}\t" + "\t".join(alias.get("hostnames") or []))
    path = pod_dir(root, meta["uid"]) / "etc-hosts"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def container_mounts(root: Path, pod: dict, container: dict, attempt: int, pod_ip: str) -> list[Mount]:
    spec, uid = pod.get("spec") or {}, pod["metadata"]["uid"]
    volumes = {v["name"]: v for v in spec.get("volumes") or ()}
    mounts: list[Mount] = []
    for vm in container.get("volumeMounts") or ():
        vol = volumes.get(vm.get("name"))
        host = _volume_path(root, uid, vol) if vol else None
        if host is None:
            continue
        if vm.get("subPath"):
            sub = Path(host) / vm["subPath"]
            if not sub.exists():
                sub.mkdir(parents=True, exist_ok=True)
            host = str(sub)
        mounts.append(Mount(vm["mountPath"], host, bool(vm.get("readOnly"))))
    targets = {m.container_path for m in mounts}
    if not spec.get("hostNetwork") and "/etc/hosts" not in targets:
        mounts.append(Mount("/etc/hosts", etc_hosts(root, pod, pod_ip)))
    term = container.get("terminationMessagePath") or "/dev/termination-log"
    if term not in targets:
        path = pod_dir(root, uid) / "containers" / container["name"] / f"termination-{attempt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        mounts.append(Mount(term, str(path)))
    return mounts


def remove_pod_dir(root: Path, uid: str) -> None:
    shutil.rmtree(pod_dir(root, uid), ignore_errors=True)
