"""Test helpers: a real `kyb server` process on loopback and the real kubectl against it."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

KUBECTL = os.environ.get("KUBECTL", "kubectl")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    data_dir: Path
    port: int
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    extra_args: list = field(default_factory=list)
    # the embedded agent runs real containers and sets up pod networking: only tests that
    # run the server inside a network namespace of their own may turn it on
    agent: bool = False

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.log_path = self.data_dir / "server.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kybernetes.cli.main", "server", "--data-dir", str(self.data_dir),
             "--port", str(self.port), *([] if self.agent else ["--disable-agent"]), *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kyb server exited with {self.proc.returncode}:\n{self.log()}")
            if self.kubeconfig.exists():
                try:
                    if self.raw("GET", "/readyz")[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"kyb server not ready after {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-20000:] if self.log_path and self.log_path.exists() else ""

    # --- clients --------------------------------------------------------------------------------
    def ssl_context(self, client_cert: bool = True) -> ssl.SSLContext:
        tls = self.data_dir / "server" / "tls"
        ctx = ssl.create_default_context(cafile=str(tls / "server-ca.crt"))
        if client_cert:
            ctx.load_cert_chain(str(tls / "client-admin.crt"), str(tls / "client-admin.key"))
        return ctx

    def raw(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            client_cert: bool = True, timeout: float = 30.0) -> tuple[int, dict, bytes]:
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(client_cert), timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def request(self, method: str, path: str, obj=None, content_type: str = "application/json",
                **kw) -> tuple[int, dict]:
        body = None
        headers = dict(kw.pop("headers", {}) or {})
        if obj is not None:
            body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
            headers["Content-Type"] = content_type
        status, _, data = self.raw(method, path, body, headers, **kw)
        try:
            return status, json.loads(data) if data else {}
        except ValueError:
            return status, {"raw": data.decode(errors="replace")}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60.0) -> subprocess.CompletedProcess:
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), HOME=str(self.data_dir / "home"))
        proc = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, env=env,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Ask a helper process to stop; kill it if it has not within `timeout`."""
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def manifest(*docs: dict) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)
