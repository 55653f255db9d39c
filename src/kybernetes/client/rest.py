"""An async REST client for the Kubernetes API, as every component uses it.

Paths are built from (group, version, plural, namespace, name, subresource); bodies are
dicts; failures raise `ApiError` carrying the server's `Status`.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator

import aiohttp
import orjson

from .config import ClientConfig


class ApiError(Exception):
    def __init__(self, status: dict, code: int):
        self.status = status
        self.code = code
        self.reason = status.get("reason", "")
        super().__init__(f"{code} {self.reason}: {status.get('message', '')}")


def resource_path(group: str, version: str, plural: str, namespace: str = "", name: str = "",
                  subresource: str = "") -> str:
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        path += f"/namespaces/{urllib.parse.quote(namespace)}"
    path += f"/{plural}"
    if name:
        path += f"/{urllib.parse.quote(name)}"
    if subresource:
        path += f"/{subresource}"
    return path


# Connections for requests other than watches. client-go multiplexes every request on one HTTP/2
# connection; over HTTP/1.1 a burst (a scheduler binding 30 pods at once) opened a TLS connection
# per request, and the handshakes cost both sides more than the requests. A few kept-alive
# connections carry such a burst one request after another on each; watches, which hold theirs
# for minutes, have their own (unbounded) pool.
REQUEST_CONNECTIONS = 8
IDLE_SECONDS = 90.0  # Go's http.Transport IdleConnTimeout


class RESTClient:
    def __init__(self, config: ClientConfig, user_agent: str = "kybernetes"):
        self.config = config
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path, user_agent: str = "kybernetes") -> RESTClient:
        return cls(ClientConfig.from_kubeconfig(path), user_agent)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._new_session(REQUEST_CONNECTIONS)
        return self._session

    def watch_session(self) -> aiohttp.ClientSession:
        if self._watch_session is None or self._watch_session.closed:
            self._watch_session = self._new_session(0)
        return self._watch_session

    def _new_session(self, connections: int) -> aiohttp.ClientSession:
        headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        connector = aiohttp.TCPConnector(ssl=self.config.ssl_context or False, limit=connections,
                                         keepalive_timeout=IDLE_SECONDS)
        return aiohttp.ClientSession(headers=headers, connector=connector,
                                     json_serialize=lambda o: orjson.dumps(o).decode())

    async def close(self) -> None:
        for session in (self._session, self._watch_session):
            if session is not None:
                await session.close()

    async def request(self, method: str, path: str, body=None, params: dict | None = None,
                      content_type: str = "application/json") -> dict:
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        async with self.session().request(method, self.config.server + path, data=data, params=params,
                                          headers=headers) as resp:
            raw = await resp.read()
            try:
                doc = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                doc = {"message": raw.decode(errors="replace"), "reason": "Unknown"}
            if resp.status >= 400:
                raise ApiError(doc if isinstance(doc, dict) else {}, resp.status)
            return doc

    # --- verbs ----------------------------------------------------------------------------------
    async def get(self, group, version, plural, name, namespace="", subresource="") -> dict:
        return await self.request("GET", resource_path(group, version, plural, namespace, name, subresource))

    async def list(self, group, version, plural, namespace="", **params) -> dict:
        return await self.request("GET", resource_path(group, version, plural, namespace), params=_q(params))

    async def create(self, group, version, plural, body, namespace="", subresource="", name="", **params) -> dict:
        path = resource_path(group, version, plural, namespace, name, subresource)
        return await self.request("POST", path, body, _q(params))

    async def update(self, group, version, plural, body, namespace="", subresource="", **params) -> dict:
        name = body["metadata"]["name"]
        path = resource_path(group, version, plural, namespace, name, subresource)
        return await self.request("PUT", path, body, _q(params))

    async def patch(self, group, version, plural, name, body, namespace="", subresource="",
                    patch_type="application/merge-patch+json", **params) -> dict:
        path = resource_path(group, version, plural, namespace, name, subresource)
        return await self.request("PATCH", path, body, _q(params), patch_type)

    async def delete(self, group, version, plural, name, namespace="", body=None, **params) -> dict:
        path = resource_path(group, version, plural, namespace, name)
        return await self.request("DELETE", path, body, _q(params))

    async def watch(self, group, version, plural, namespace="", **params) -> AsyncIterator[dict]:
        """Watch events (dicts with type and object) until the server ends the stream."""
        params = _q({**params, "watch": "true"})
        path = resource_path(group, version, plural, namespace)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self.watch_session().get(self.config.server + path, params=params, timeout=timeout) as resp:
            if resp.status >= 400:
                raw = await resp.read()
                raise ApiError(orjson.loads(raw) if raw else {}, resp.status)
            buf = b""
            async for chunk in resp.content.iter_any():
                if b"\n" not in chunk:
                    buf += chunk
                    continue
                # one split per chunk: splitting off one line at a time copied the rest of a large chunk
                # once per event
                *lines, buf = (buf + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        yield orjson.loads(line)


def _q(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


async def wait_for_server(client: RESTClient, deadline: float = 30.0) -> None:
    """Poll /readyz until the server answers (components starting beside it)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        try:
            async with client.session().get(client.config.server + "/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if loop.time() > end:
            raise TimeoutError(f"API server at {client.config.server} not ready after {deadline}s")
        await asyncio.sleep(0.2)
