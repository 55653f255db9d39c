"""The kubelet's HTTPS server (upstream pkg/kubelet/server): logs, exec, attach, port-forward.

Paths as upstream's: `/healthz`, `/pods`, `/containerLogs/{ns}/{pod}/{container}`,
`/exec/{ns}/{pod}/{container}`, `/attach/{ns}/{pod}/{container}`, `/portForward/{ns}/{pod}`.

Authentication: a client certificate signed by the cluster CA (the API server presents
`kube-apiserver-kubelet-client`); anything else gets 401. Every authenticated client may
use every path (upstream asks the API server with a SubjectAccessReview; not done here).
The serving certificate is self-signed unless one is given: like upstream, the API server
does not verify kubelet serving certificates.

One server may act for several nodes (all simulated nodes of a process share one): pods are
found by namespace and name among the pods bound to any of its nodes. Simulated nodes have
made-up addresses, so they advertise the address this server listens on in the Node
annotation `kubelet.kybernetes.io/address` and its port in
`status.daemonEndpoints.kubeletEndpoint.Port`; the API server prefers that annotation to
the node's InternalIP.

Streams go through the node's runtime, which answers CRI's Exec, Attach and PortForward with
a URL of its streaming server (containerd's speaks the `v4.channel.k8s.io` WebSocket
protocol, besides SPDY). This server accepts the client's WebSocket (v5, v4 or v1 channel
protocol); exec and attach for v5 and v4 go to that URL over SPDY (`spdy_streams`, so that
stdin can end), the rest opens a WebSocket to it and relays frames. Runtime methods used:
`exec_url(container_id, cmd, tty, stdin, stdout, stderr)`, `attach_url(container_id, tty,
stdin, stdout, stderr)` and `port_forward_url(sandbox_id, ports)`; a runtime without them
(the sim runtime) gets 400 "exec is not supported by the sim runtime".
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import ssl
import tempfile
from collections.abc import Callable

import aiohttp
import orjson
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..client import channels
from . import spdy_streams
from .logs import LogError, options_from_query, read_log
from .runtime import RUNNING

log = logging.getLogger("kybernetes.kubelet.server")

ADDRESS_ANNOTATION = "kubelet.kybernetes.io/address"
CONTAINER_ID_PREFIXES = ("containerd://", "sim://", "cri-o://", "docker://")


class HTTPError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def self_signed(names: tuple = ("localhost",), ips: tuple = ("127.0.0.1",)) -> tuple[bytes, bytes]:
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{names[0]}@kubelet")])
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_ssl_context(client_ca: bytes, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as d:
        cpath, kpath = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        with open(cpath, "wb") as f:
            f.write(cert_pem)
        with open(os.open(kpath, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(cpath, kpath)
    ctx.load_verify_locations(cadata=client_ca.decode())
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def strip_container_id(cid: str) -> str:
    for p in CONTAINER_ID_PREFIXES:
        if cid.startswith(p):
            return cid[len(p):]
    return cid.partition("://")[2] or cid


class KubeletServer:
    def __init__(self, nodes: dict, get_pod: Callable[[str, str], dict | None],
                 list_pods: Callable[[], list[dict]], client_ca: bytes, host: str = "127.0.0.1", port: int = 10250,
                 cert_pem: bytes | None = None, key_pem: bytes | None = None):
        self.nodes = nodes  # node name -> NodeHandle (with .runtime)
        self.get_pod = get_pod
        self.list_pods = list_pods
        self.host, self.port = host, port
        if cert_pem is None or key_pem is None:
            cert_pem, key_pem = self_signed(ips=("127.0.0.1",) + ((host,) if host not in ("0.0.0.0", "::") else ()))
        self.ssl = server_ssl_context(client_ca, cert_pem, key_pem)
        self._runner: web.AppRunner | None = None
        self.bound_port = port

    # --- lifecycle -----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/pods", self.pods)
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.container_logs)
        for verb in ("exec", "attach"):
            app.router.add_route("*", f"/{verb}/{{ns}}/{{pod}}/{{container}}", self.exec_or_attach)
            app.router.add_route("*", f"/{verb}/{{ns}}/{{pod}}/{{uid}}/{{container}}", self.exec_or_attach)
        app.router.add_route("*", "/portForward/{ns}/{pod}", self.port_forward)
        app.router.add_route("*", "/portForward/{ns}/{pod}/{uid}", self.port_forward)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl)
        await site.start()
        sockets = site._server.sockets if site._server else []
        if sockets:
            self.bound_port = sockets[0].getsockname()[1]
        log.info("kubelet server on %s:%s", self.host, self.bound_port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        transport = request.transport
        if transport is None or not transport.get_extra_info("peercert"):
            return web.Response(status=401, text="Unauthorized")
        try:
            return await handler(request)
        except HTTPError as e:
            return web.Response(status=e.code, text=e.message)

    # --- simple paths --------------------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def pods(self, request: web.Request) -> web.Response:
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self.list_pods()}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    # --- lookups -------------------------------------------------------------------------------------
    def _pod(self, ns: str, name: str) -> tuple[dict, object]:
        pod = self.get_pod(ns, name)
        node = self.nodes.get(((pod or {}).get("spec") or {}).get("nodeName") or "")
        if pod is None or node is None:
            raise HTTPError(404, f'pod "{name}" does not exist')
        return pod, node

    @staticmethod
    def _statuses(pod: dict) -> list[dict]:
        st = pod.get("status") or {}
        return (st.get("containerStatuses") or []) + (st.get("initContainerStatuses") or []) + \
            (st.get("ephemeralContainerStatuses") or [])

    @staticmethod
    def _has_spec(pod: dict, name: str) -> bool:
        spec = pod.get("spec") or {}
        return any(c.get("name") == name for key in ("containers", "initContainers", "ephemeralContainers")
                   for c in spec.get(key) or ())

    def log_container_id(self, pod: dict, name: str, previous: bool) -> str:
        """The container whose log to read, with upstream's errors (kubelet validateContainerLogStatus)."""
        pname = pod["metadata"]["name"]
        status = next((s for s in self._statuses(pod) if s.get("name") == name), None)
        if status is None:
            raise HTTPError(400, f'container "{name}" in pod "{pname}" is not available')
        state, last = status.get("state") or {}, status.get("lastState") or {}
        if previous:
            if not (last.get("terminated") or {}).get("containerID"):
                raise HTTPError(400, f'previous terminated container "{name}" in pod "{pname}" not found')
            return last["terminated"]["containerID"]
        if state.get("running") is not None:
            return status.get("containerID") or ""
        if state.get("terminated") is not None:
            cid = state["terminated"].get("containerID") or status.get("containerID") or \
                (last.get("terminated") or {}).get("containerID")
            if not cid:
                raise HTTPError(400, f'container "{name}" in pod "{pname}" is terminated')
            return cid
        if last.get("terminated") is not None:
            if not last["terminated"].get("containerID"):
                raise HTTPError(400, f'container "{name}" in pod "{pname}" is terminated')
            return last["terminated"]["containerID"]
        waiting = state.get("waiting")
        if waiting is not None:
            reason = waiting.get("reason") or ""
            if reason == "ErrImagePull":
                reason = "image can't be pulled"
            elif reason == "ImagePullBackOff":
                reason = "trying and failing to pull image"
            raise HTTPError(400, f'container "{name}" in pod "{pname}" is waiting to start: {reason}')
        raise HTTPError(400, f'container "{name}" in pod "{pname}" is waiting to start - no logs yet')

    @staticmethod
    def log_path(runtime, container_id: str) -> str:
        status = runtime.container_status(container_id)
        path = getattr(status, "log_path", "") if status is not None else ""
        if not path and hasattr(runtime, "container_log_path"):
            path = runtime.container_log_path(container_id)
        root = getattr(runtime, "log_root", None)
        if not path and root is not None and status is not None:  # the cri runtime: upstream's layout
            sb = next((s for s in runtime.list_pod_sandboxes() if s.id == status.sandbox_id), None)
            if sb is not None:
                path = os.path.join(str(root), f"{sb.namespace}_{sb.name}_{sb.pod_uid}", status.name,
                                    f"{status.attempt}.log")
        return path or ""

    # --- logs ----------------------------------------------------------------------------------------
    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        ns, name, cname = (request.match_info[k] for k in ("ns", "pod", "container"))
        pod, node = self._pod(ns, name)
        if not self._has_spec(pod, cname):
            raise HTTPError(404, f'container "{cname}" not found in pod "{name}"')
        try:
            opts = options_from_query(request.query)
        except LogError as e:
            raise HTTPError(400, str(e)) from None
        previous = (request.query.get("previous") or "").lower() in ("1", "true")
        cid = strip_container_id(self.log_container_id(pod, cname, previous))
        runtime = node.runtime
        path = self.log_path(runtime, cid)
        if not path:
            raise HTTPError(400, f'container "{cname}" in pod "{name}" has no log file')
        if previous:
            opts.follow = False

        def running() -> bool:
            st = runtime.container_status(cid)
            return st is not None and st.state == RUNNING

        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        async for chunk in read_log(path, opts, running):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    # --- streams -------------------------------------------------------------------------------------
    def _stream_runtime(self, node, what: str, method: str):
        runtime = node.runtime
        fn = getattr(runtime, method, None) or getattr(getattr(runtime, "cri", None), method, None)
        if fn is None:
            raise HTTPError(400, f"{what} is not supported by the {getattr(runtime, 'name', '?')} runtime")
        return fn

    async def exec_or_attach(self, request: web.Request) -> web.StreamResponse:
        verb = request.path.split("/")[1]
        ns, name, cname = (request.match_info[k] for k in ("ns", "pod", "container"))
        pod, node = self._pod(ns, name)
        if not self._has_spec(pod, cname):
            raise HTTPError(404, f'container "{cname}" not found in pod "{name}"')
        fn = self._stream_runtime(node, verb, "exec_url" if verb == "exec" else "attach_url")
        q = request.query
        flags = {k: (q.get(k) or "").lower() in ("1", "true") for k in ("stdin", "stdout", "stderr", "tty")}
        if flags["tty"]:
            flags["stderr"] = False
        cmd = q.getall("command", [])
        if verb == "exec" and not cmd:
            raise HTTPError(400, "you must specify at least 1 command")
        if not (flags["stdin"] or flags["stdout"] or flags["stderr"]):
            raise HTTPError(400, "you must specify at least 1 of stdin, stdout, stderr")
        status = next((s for s in self._statuses(pod) if s.get("name") == cname), {})
        if (status.get("state") or {}).get("running") is None or not status.get("containerID"):
            raise HTTPError(400, f'container not found ("{cname}")')
        cid = strip_container_id(status["containerID"])
        self._require_websocket(request)
        args = (cid, cmd) if verb == "exec" else (cid,)
        url = await fn(*args, flags["tty"], flags["stdin"], flags["stdout"], flags["stderr"])
        proto = channels.choose(channels.offered_protocols(request), (channels.V5, channels.V4))
        if proto is not None and url.startswith(("http://", "https://")):
            try:  # SPDY to the runtime: stdin can end (see spdy_streams)
                return await spdy_streams.relay(request, url, proto, **flags)
            except spdy_streams.UpgradeError as e:
                log.info("SPDY to the streaming server failed (%s); using its WebSocket", e)
                url = await fn(*args, flags["tty"], flags["stdin"], flags["stdout"], flags["stderr"])
        return await self._relay(request, url, channels.EXEC_PROTOCOLS)

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["pod"]
        pod, node = self._pod(ns, name)
        fn = self._stream_runtime(node, "port-forward", "port_forward_url")
        ports = []
        for raw in request.query.getall("ports", []):
            for p in raw.split(","):
                if not p.isdigit() or not 0 < int(p) < 65536:
                    raise HTTPError(400, f'unable to parse "{raw}" as a port')
                ports.append(int(p))
        if not ports:
            raise HTTPError(400, 'query parameter "port" is required')
        self._require_websocket(request)
        sandbox = next((s for s in node.runtime.list_pod_sandboxes(pod["metadata"]["uid"]) if s.ready), None)
        if sandbox is None:
            raise HTTPError(400, f'pod "{name}" has no running sandbox')
        url = await fn(sandbox.id, ports)
        sep = "&" if "?" in url else "?"
        url += sep + "&".join(f"ports={p}" for p in ports)
        return await self._relay(request, url, (channels.V4,))

    @staticmethod
    def _require_websocket(request: web.Request) -> None:
        if not channels.is_websocket(request):
            raise HTTPError(400, "only WebSocket streams (v5.channel.k8s.io, v4.channel.k8s.io) are supported; "
                                 "SPDY is not")

    async def _relay(self, request: web.Request, url: str, supported: tuple) -> web.StreamResponse:
        offered = channels.offered_protocols(request)
        proto = channels.choose(offered, supported) or (supported[-1] if not offered else None)
        if proto is None:
            raise HTTPError(400, f"none of the offered WebSocket protocols {offered} is supported")
        upstream_proto = channels.V4 if proto == channels.V5 else proto
        session = aiohttp.ClientSession()
        try:
            upstream = await session.ws_connect(url, protocols=(upstream_proto,), autoping=True, max_msg_size=0)
        except (aiohttp.ClientError, OSError) as e:
            await session.close()
            raise HTTPError(500, f"error connecting to the runtime's streaming server: {e}") from None
        ws = web.WebSocketResponse(protocols=(proto,), max_msg_size=0, autoping=True)
        try:
            await ws.prepare(request)
            await channels.relay(ws, upstream, upstream_has_close=False)
        finally:
            await upstream.close()
            await session.close()
        return ws


async def serve_node_agent(agent, client_ca: bytes, stop: asyncio.Event, host: str = "0.0.0.0",
                           port: int = 10250) -> None:
    """Run the kubelet server of a real node (`node_agent.NodeAgent`) once it is ready."""
    ready = asyncio.ensure_future(agent.ready.wait())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    stopped.cancel()
    if stop.is_set():
        return
    server = KubeletServer({agent.name: agent.handle}, lambda ns, name: agent.pod_informer.get(f"{ns}/{name}"),
                           agent.pod_informer.list, client_ca, host, port)
    await server.run(stop)
