"""Build the images kybernetes needs on a machine without internet, from Debian's busybox-static.

    python tools/build_images.py [--busybox /bin/busybox] OUT_DIR
    python tools/build_images.py --push 127.0.0.1:5000      # to a (plain HTTP) registry instead

writes two Docker image archives (the `docker save` format, which `ctr images import`
and `docker load` read) into OUT_DIR:

- `busybox.tar`: `kybernetes/busybox:1.36`: the static busybox, a hard link for every applet
  (as in the official busybox image: one inode, not four hundred, to unpack on every node),
  /etc/passwd, /etc/group, /tmp; default command `sh`.
- `pause.tar`: `kybernetes/pause:3.10`: the pod sandbox image. Its process sleeps as
  PID 1 of the pod and exits on SIGTERM (a shell trap around `sleep & wait`).

Put them into DATA_DIR/agent/images/ and the agent imports them at start, as k3s does
for air-gapped nodes. The archives are reproducible: same busybox, same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

BUSYBOX_IMAGE = "kybernetes/busybox:1.36"
PAUSE_IMAGE = "kybernetes/pause:3.10"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PAUSE_SCRIPT = 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait; done'

PASSWD = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
GROUP = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_hardlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = tarfile.LNKTYPE, target, 0o755
    tar.addfile(info)


def rootfs_layer(busybox: Path, applets: bool) -> bytes:
    """An uncompressed layer tar: busybox, (its applets, hard links to it), the files every image needs."""
    binary = busybox.read_bytes()
    names = []
    if applets:
        out = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True).stdout
        names = sorted({line.strip() for line in out.splitlines() if line.strip()} - {"bin/busybox"})
    else:
        names = ["bin/sh", "bin/sleep"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d in ("bin", "dev", "etc", "home", "proc", "root", "sbin", "sys", "usr", "usr/bin", "usr/sbin", "var"):
            _add_dir(tar, d)
        _add_dir(tar, "tmp", 0o1777)
        _add_dir(tar, "var/tmp", 0o1777)
        _add_file(tar, "bin/busybox", binary, 0o755)
        for name in names:
            _add_hardlink(tar, name, "bin/busybox")
        _add_file(tar, "etc/passwd", PASSWD.encode())
        _add_file(tar, "etc/group", GROUP.encode())
        _add_file(tar, "etc/hostname", b"localhost\n")
    return buf.getvalue()


def image_config(layer: bytes, config: dict) -> bytes:
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    image = {
        "architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "kybernetes tools/build_images.py"}],
    }
    return json.dumps(image, sort_keys=True, separators=(",", ":")).encode()


def docker_archive(tag: str, layer: bytes, config: dict) -> bytes:
    """The `docker save` layout: manifest.json, the image config and one layer."""
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config_bytes = image_config(layer, config)
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.split(":", 1)[1] + "/layer.tar"
    repo, _, version = tag.rpartition(":")
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        _add_dir(tar, layer_name.split("/")[0])
        _add_file(tar, layer_name, layer)
        _add_file(tar, config_name, config_bytes)
        _add_file(tar, "manifest.json", json.dumps(manifest).encode())
        _add_file(tar, "repositories", json.dumps({repo: {version: diff_id.split(":", 1)[1]}}).encode())
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push(registry: str, tag: str, layer: bytes, config: dict) -> str:
    """Push one image to a registry over plain HTTP (Registry API v2, e.g. Debian's docker-registry on loopback)."""
    import urllib.parse
    import urllib.request

    repo, _, version = tag.rpartition(":")
    base = f"http://{registry}/v2/{repo}"
    config_bytes = image_config(layer, config)

    def request(method: str, url: str, data: bytes | None = None, ctype: str = "application/octet-stream"):
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": ctype} if data else {})
        return urllib.request.urlopen(req, timeout=30)  # noqa: S310 - a registry URL we were given

    for blob in (layer, config_bytes):
        with request("POST", f"{base}/blobs/uploads/") as resp:
            location = urllib.parse.urljoin(base, resp.headers["Location"])
        sep = "&" if "?" in location else "?"
        request("PUT", f"{location}{sep}digest={urllib.parse.quote(_digest(blob))}", blob).close()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config_bytes),
                           "digest": _digest(config_bytes)},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "size": len(layer),
                            "digest": _digest(layer)}]}
    body = json.dumps(manifest).encode()
    request("PUT", f"{base}/manifests/{version}", body, manifest["mediaType"]).close()
    return f"{registry}/{tag}@{_digest(body)}"


def images(busybox: Path) -> list[tuple[str, str, bytes, dict]]:
    return [
        ("busybox.tar", BUSYBOX_IMAGE, rootfs_layer(busybox, applets=True), {"Env": [PATH_ENV], "Cmd": ["sh"]}),
        ("pause.tar", PAUSE_IMAGE, rootfs_layer(busybox, applets=False),
         {"Env": [PATH_ENV], "Entrypoint": ["/bin/sh", "-c", PAUSE_SCRIPT], "StopSignal": "SIGTERM"}),
    ]


def build(out_dir: Path, busybox: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, tag, layer, config in images(busybox):
        path = out_dir / filename
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(docker_archive(tag, layer, config))
        tmp.replace(path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir", type=Path, nargs="?", help="directory for busybox.tar and pause.tar")
    p.add_argument("--busybox", type=Path, default=None, help="a static busybox (default: from busybox-static)")
    p.add_argument("--push", metavar="REGISTRY", default="",
                   help="instead of writing archives, push the images to REGISTRY (host:port, plain HTTP)")
    args = p.parse_args(argv)
    busybox = args.busybox or Path(shutil.which("busybox") or "/bin/busybox")
    if not busybox.exists():
        print("no busybox found: apt-get install busybox-static", file=sys.stderr)
        return 1
    if args.push:
        for _, tag, layer, config in images(busybox):
            print(push(args.push, tag, layer, config))
        return 0
    if args.out_dir is None:
        p.error("OUT_DIR is required (or --push REGISTRY)")
    for path in build(args.out_dir, busybox):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
