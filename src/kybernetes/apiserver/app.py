"""The aiohttp application: authentication, error mapping and routing of every path."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from ..api import errors
from . import negotiate, requestinfo
from .certs import identity_from_peercert
from .discovery import AGGREGATED_V2, AGGREGATED_V2BETA1, wants_aggregated

log = logging.getLogger("kybernetes.apiserver")

PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
HEALTH_CHECKS = ("ping", "log", "etcd", "poststarthook/start-informers", "poststarthook/bootstrap-controller")


def _identity(request: web.Request, server) -> tuple[str, list[str]] | None:
    transport = request.transport
    if transport is not None:
        ident = identity_from_peercert(transport.get_extra_info("peercert"))
        if ident:
            return ident[0], ident[1] + ["system:authenticated"]
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        user = server.authenticate_token(auth[7:].strip())
        if user:
            return user[0], list(user[1]) + ["system:authenticated"]
    return None


def make_app(server) -> web.Application:
    @web.middleware
    async def middleware(request: web.Request, handler):
        started = time.perf_counter()
        try:
            ident = _identity(request, server)
            if ident is None:
                if not request.path.startswith(PUBLIC_PATHS):
                    raise errors.unauthorized()
                ident = ("system:anonymous", ["system:unauthenticated"])
            request["user"] = ident
            response = await handler(request)
        except errors.StatusError as e:
            response = negotiate.status_response(e)
        except web.HTTPException:
            raise
        except Exception as e:  # never a traceback to the client
            log.exception("internal error serving %s %s", request.method, request.path_qs)
            response = negotiate.status_response(errors.internal(f"{type(e).__name__}: {e}"))
        if server.log_requests:
            log.info("%s %s %s %.1fms", request.method, request.path_qs, response.status,
                     (time.perf_counter() - started) * 1000)
        return response

    app = web.Application(middlewares=[middleware], client_max_size=negotiate.MAX_BODY + 1)
    router = Router(server)
    app.router.add_route("*", "/{tail:.*}", router.route)
    return app


class Router:
    def __init__(self, server):
        self.server = server
        self.handlers = server.handlers

    async def route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path.startswith(("/healthz", "/livez", "/readyz")):
            return self.health(request, path)
        if path == "/version":
            return negotiate.json_response(self.server.version_info())
        if path.startswith("/openapi/"):
            return await self.server.openapi.serve(request, path)
        if path in ("/", ""):
            return negotiate.json_response({"paths": sorted(self.server.root_paths())})
        info = requestinfo.parse(request.method, path, request.query)
        if not info.api_prefix:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource", {})
        if not info.is_resource:
            return self.discovery(request, info)
        return await self.resource(request, info)

    def health(self, request: web.Request, path: str) -> web.Response:
        base, _, check = path.partition("/")[2].partition("/")
        if check:
            if check not in HEALTH_CHECKS:
                return web.Response(status=404, text="404 page not found\n")
            return web.Response(text="ok")
        if "verbose" in request.query:
            lines = [f"[+]{c} ok" for c in HEALTH_CHECKS]
            lines.append(f"{base} check passed")
            return web.Response(text="\n".join(lines) + "\n")
        return web.Response(text="ok")

    def _discovery_response(self, request: web.Request, found, content_type: str = "application/json"):
        if found is None:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource", {})
        body, etag = found
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        resp = web.Response(body=body, status=200, headers={"ETag": etag, "Vary": "Accept"})
        resp.headers["Content-Type"] = content_type
        return resp

    def discovery(self, request: web.Request, info: requestinfo.RequestInfo) -> web.Response:
        d = self.server.discovery
        if request.method != "GET":
            raise errors.method_not_allowed()
        if info.api_prefix == "api" and not info.version:
            agg = wants_aggregated(request.headers.get("Accept"))
            if agg in ("v2", "v2beta1"):
                ct = AGGREGATED_V2 if agg == "v2" else AGGREGATED_V2BETA1
                return self._discovery_response(request, d.aggregated(True, agg), ct)
            return self._discovery_response(request, d.api_versions(self.server.advertise_address))
        if info.api_prefix == "apis" and not info.group:
            agg = wants_aggregated(request.headers.get("Accept"))
            if agg in ("v2", "v2beta1"):
                ct = AGGREGATED_V2 if agg == "v2" else AGGREGATED_V2BETA1
                return self._discovery_response(request, d.aggregated(False, agg), ct)
            return self._discovery_response(request, d.api_group_list())
        if info.api_prefix == "apis" and not info.version:
            return self._discovery_response(request, d.api_group(info.group))
        return self._discovery_response(request, d.resource_list(info.group, info.version))

    async def resource(self, request: web.Request, info: requestinfo.RequestInfo) -> web.StreamResponse:
        rt = self.server.index.get(info.group, info.version, info.resource)
        if rt is None:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource", {})
        negotiate.check_acceptable(request.headers.get("Accept"))
        verb = info.verb
        if verb not in rt.verbs and not info.subresource:
            raise errors.method_not_allowed()
        if info.subresource:
            return await self.server.subresources.handle(request, rt, info)
        h = self.handlers
        if verb == "get":
            return await h.get(request, rt, info)
        if verb == "list":
            return await h.list(request, rt, info)
        if verb == "watch":
            return await h.watch(request, rt, info)
        if verb == "create":
            return await self.server.create(request, rt, info)
        if verb == "update":
            return await h.update(request, rt, info)
        if verb == "patch":
            return await h.patch(request, rt, info)
        if verb == "delete":
            return await h.delete(request, rt, info)
        if verb == "deletecollection":
            return await h.delete_collection(request, rt, info)
        raise errors.method_not_allowed()
