"""Capture the protobuf request bodies real kubectl sends, as test fixtures.

Starts a `kyb server` in a temporary directory and a plain-HTTP proxy on loopback in front
of it. kubectl talks to the proxy; every request body sent as
``application/vnd.kubernetes.protobuf`` is saved to ``tests/fixtures/protobuf/<name>.pb``
(name from the kubectl command being run), decoded with kybernetes.api.protobuf and forwarded
to the server as JSON, so the command also checks that the decoded object is accepted.

kubectl 1.32 sends protobuf only from its typed clients (create <kind>, autoscale, create token,
auth can-i); run, expose, apply, create -f, patch and drain's eviction go as JSON.

Usage: python tools/capture_protobuf.py [out-dir]
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from kybernetes.api.protobuf import CONTENT_TYPE, decode_object  # noqa: E402
from tests.cluster import Cluster, free_port  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "protobuf"

COMMANDS = {
    "configmap": ["create", "configmap", "cm1", "--from-literal=a=b", "--from-literal=greeting=hello world"],
    "secret": ["create", "secret", "generic", "s1", "--from-literal=password=s3cr3t", "--type=Opaque"],
    "namespace": ["create", "namespace", "ns1"],
    "deployment": ["create", "deployment", "web", "--image=nginx", "--port=80", "--replicas=2"],
    "service": ["create", "service", "clusterip", "svc1", "--tcp=80:8080"],
    "serviceaccount": ["create", "serviceaccount", "sa1"],
    "job": ["create", "job", "job1", "--image=busybox", "--", "echo", "hi"],
    "cronjob": ["create", "cronjob", "cj1", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"],
    "role": ["create", "role", "r1", "--verb=get,list", "--resource=pods"],
    "rolebinding": ["create", "rolebinding", "rb1", "--role=r1", "--user=alice"],
    "clusterrole": ["create", "clusterrole", "cr1", "--verb=get", "--resource=nodes"],
    "clusterrolebinding": ["create", "clusterrolebinding", "crb1", "--clusterrole=cr1", "--group=devs"],
    "priorityclass": ["create", "priorityclass", "pc1", "--value=1000", "--description=high"],
    "quota": ["create", "quota", "q1", "--hard=pods=10,requests.cpu=2"],
    "pdb": ["create", "poddisruptionbudget", "pdb1", "--selector=app=web", "--min-available=1"],
    "ingress": ["create", "ingress", "ing1", "--rule=example.com/path*=svc1:80"],
    "token": ["create", "token", "sa1", "--duration=1h"],
    "autoscale": ["autoscale", "deployment", "web", "--min=1", "--max=3", "--cpu-percent=50"],
    "secret-docker": ["create", "secret", "docker-registry", "reg", "--docker-server=r.io", "--docker-username=u",
                      "--docker-password=p"],
    "cani": ["auth", "can-i", "create", "pods"],
    "canilist": ["auth", "can-i", "--list"],
}


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="kyb-capture-"))
    cluster = Cluster(tmp, free_port())
    cluster.start()
    current = {"name": ""}
    seen: dict[str, int] = {}

    class Proxy(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def _forward(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            if body and self.headers.get("Content-Type", "").startswith(CONTENT_TYPE):
                idx = seen.get(current["name"], 0)
                seen[current["name"]] = idx + 1
                fname = current["name"] + (f"-{idx}" if idx else "") + ".pb"
                (out / fname).write_bytes(body)
                obj = decode_object(body)
                print(f"  {self.command} {self.path} -> {fname}: {json.dumps(obj)[:300]}")
                body = json.dumps(obj).encode()
                headers["Content-Type"] = "application/json"
            headers["Accept"] = "application/json"
            status, rh, data = cluster.raw(self.command, self.path, body, headers)
            self.send_response(status)
            for k, v in rh.items():
                if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp / "proxy-kubeconfig.yaml"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: p\n  cluster:\n"
        f"    server: http://127.0.0.1:{server.server_address[1]}\n"
        "contexts:\n- name: p\n  context: {cluster: p, user: u, namespace: default}\n"
        "current-context: p\nusers:\n- name: u\n  user: {}\n"
    )
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), HOME=str(tmp / "home"))
    try:
        for name, args in COMMANDS.items():
            current["name"] = name
            print(f"kubectl {' '.join(args)}")
            p = subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, timeout=60)
            print(f"  rc={p.returncode} {p.stdout.strip()[:200]} {p.stderr.strip()[:300]}")
    finally:
        server.shutdown()
        cluster.stop()


if __name__ == "__main__":
    main()
