"""pods/log, pods/exec, pods/attach and pods/portforward: proxied to the pod's kubelet.

As upstream (pkg/registry/core/pod/strategy.go LogLocation/streamLocation): the container is
checked against the pod spec here (an empty name means the only container), the node's
kubelet is found from the Node (the annotation `kubelet.kybernetes.io/address` that
simulated nodes set, else InternalIP, ExternalIP, Hostname; port from
`status.daemonEndpoints.kubeletEndpoint.Port`) and the request goes to it over HTTPS with
the `kube-apiserver-kubelet-client` certificate (the kubelet's serving certificate is not
verified, upstream's default). A non-2xx kubelet answer becomes a Status with its code and
its text as message, as upstream's generic response checker does.

Streams: the client's WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`, `channel.k8s.io`)
is relayed frame by frame to a WebSocket to the kubelet with the same protocol. The WebSocket
to the kubelet is opened first, so that a refusal (the sim runtime's "exec is not supported")
reaches the client as a Status instead of a 101. kubectl's port-forward (SPDY/3.1 in a
WebSocket, `SPDY/3.1+portforward.k8s.io`) is served here by `portforward_spdy`, one kubelet
WebSocket per forwarded connection. Native SPDY requests (kubectl's fallback) are passed to
the kubelet as plain requests, which answers with an error.
"""

from __future__ import annotations

import ssl

import aiohttp
from aiohttp import web

from ..api import errors
from ..api.resources import ResourceType
from ..client import channels
from . import portforward_spdy
from .requestinfo import RequestInfo

ADDRESS_ANNOTATION = "kubelet.kybernetes.io/address"
ADDRESS_ORDER = ("InternalIP", "ExternalIP", "Hostname")


def _names(pod: dict, key: str) -> list[str]:
    return [c.get("name", "") for c in (pod.get("spec") or {}).get(key) or ()]


def validate_container(pod: dict, container: str) -> str:
    name = pod["metadata"]["name"]
    main, init = _names(pod, "containers"), _names(pod, "initContainers")
    if not container:
        if len(main) == 1:
            return main[0]
        if not main:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(main)}]"
        if init:
            msg += f" or one of the init containers: [{' '.join(init)}]"
        raise errors.bad_request(msg)
    if container not in main + init + _names(pod, "ephemeralContainers"):
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


def kubelet_error(code: int, text: str, name: str) -> errors.StatusError:
    text = text.strip() or "unknown"
    reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
               429: "TooManyRequests", 503: "ServiceUnavailable", 504: "Timeout"}
    reason = reasons.get(code, "InternalError")
    details = {"name": name, "kind": "pods"} if code == 404 else None
    return errors.StatusError(code if code in reasons else 500, reason, text, details)


class PodStreams:
    def __init__(self, server):
        self.server = server
        self._ssl: ssl.SSLContext | None = None

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            pki = getattr(self.server, "pki", None)
            if pki is not None and pki.kubelet_client.cert.exists():
                ctx.load_cert_chain(pki.kubelet_client.cert, pki.kubelet_client.key)
            self._ssl = ctx
        return self._ssl

    async def kubelet_base(self, node_name: str) -> str:
        rt = self.server.index.get("", "v1", "nodes")
        node = await self.server.store.get(rt, "", node_name)
        status = node.get("status") or {}
        host = ((node["metadata"].get("annotations") or {}).get(ADDRESS_ANNOTATION) or "")
        addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or ()}
        for kind in ADDRESS_ORDER:
            host = host or addresses.get(kind) or ""
        if not host:
            raise errors.bad_request(f"node {node_name} has no address")
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{port}"

    async def handle(self, request: web.Request, rt: ResourceType, info: RequestInfo) -> web.StreamResponse:
        sub = info.subresource
        if (rt.group, rt.plural) != ("", "pods") or sub not in ("log", "exec", "attach", "portforward"):
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource", {})
        pod = await self.server.store.get(rt, info.namespace, info.name)
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        ns, name = info.namespace, info.name
        if sub == "log":
            container = validate_container(pod, request.query.get("container", ""))
            if not node_name:
                return web.Response(status=200, content_type="text/plain", body=b"")
            query = [(k, v) for k, v in request.query.items() if k != "container"]
            return await self.logs(request, f"{await self.kubelet_base(node_name)}/containerLogs/{ns}/{name}/"
                                            f"{container}", query, name)
        if sub == "portforward":
            path = f"/portForward/{ns}/{name}"
        else:
            container = validate_container(pod, request.query.get("container", ""))
            path = f"/{sub}/{ns}/{name}/{container}"
        if not node_name:
            raise errors.bad_request(f"pod {name} does not have a host assigned")
        if sub == "portforward" and (pod.get("status") or {}).get("phase") != "Running":
            raise errors.bad_request(f"pod {name} is not running")  # kubectl checks this itself as well
        query = [(k, v) for k, v in request.query.items() if k != "container"]
        return await self.stream(request, await self.kubelet_base(node_name) + path, query, name)

    async def logs(self, request: web.Request, url: str, query: list, name: str) -> web.StreamResponse:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.get(url, params=query, ssl=self.ssl_context()) as resp:
                    if resp.status != 200:
                        raise kubelet_error(resp.status, await resp.text(errors="replace"), name)
                    out = web.StreamResponse(headers={"Content-Type": "text/plain"})
                    out.enable_chunked_encoding()
                    await out.prepare(request)
                    async for chunk in resp.content.iter_any():
                        await out.write(chunk)
                    await out.write_eof()
                    return out
        except (aiohttp.ClientError, OSError) as e:
            raise errors.internal(f"error talking to the kubelet: {e}") from None

    async def stream(self, request: web.Request, url: str, query: list, name: str) -> web.StreamResponse:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        session = aiohttp.ClientSession(timeout=timeout)
        try:
            if not channels.is_websocket(request):
                async with session.request(request.method, url, params=query, ssl=self.ssl_context()) as resp:
                    text = await resp.text(errors="replace")
                raise kubelet_error(resp.status if resp.status >= 400 else 400,
                                    text if resp.status >= 400 else "upgrade to SPDY is not supported", name)
            offered = channels.offered_protocols(request)
            if request.path.endswith("/portforward") and portforward_spdy.wants_tunnel(offered):
                def open_port(port: int):
                    return session.ws_connect(url, params=[("ports", str(port))], protocols=(channels.V4,),
                                              ssl=self.ssl_context(), max_msg_size=0)
                return await portforward_spdy.serve_tunnel(request, open_port, name)
            supported = (channels.V4,) if request.path.endswith("/portforward") else channels.EXEC_PROTOCOLS
            proto = channels.choose(offered, supported)
            if proto is None:
                raise errors.bad_request(f"none of the WebSocket subprotocols {offered} is supported "
                                         f"(supported: {', '.join(supported)})")
            try:
                upstream = await session.ws_connect(url, params=query, protocols=(proto,), ssl=self.ssl_context(),
                                                    max_msg_size=0)
            except aiohttp.WSServerHandshakeError as e:
                async with session.get(url, params=query, ssl=self.ssl_context()) as resp:
                    text = await resp.text(errors="replace")
                raise kubelet_error(e.status if e.status >= 400 else 500, text, name) from None
            ws = web.WebSocketResponse(protocols=(proto,), max_msg_size=0)
            await ws.prepare(request)
            await channels.relay(ws, upstream, upstream_has_close=True)
            return ws
        except (aiohttp.ClientError, OSError) as e:
            raise errors.internal(f"error talking to the kubelet: {e}") from None
        finally:
            await session.close()
