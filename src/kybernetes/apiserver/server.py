"""The API server: composes storage, the watch cache, the store, handlers and the app.

`APIServer.run(stop)` serves HTTPS until `stop` is set. Components in the same process
reach it only through HTTP, like every other client (DESIGN.md: one API for everyone).
"""

from __future__ import annotations

import asyncio
import logging
import platform
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from ..api import errors, schema
from ..api.resources import BUILTIN, VIRTUAL, ResourceIndex, ResourceType
from ..api.selectors import field_selector_matcher, label_selector_matcher
from ..storage.interface import Storage
from . import bootstrap, negotiate
from .app import make_app
from .certs import ClusterPKI
from .conversion import Conversion
from .crds import CustomResources
from .discovery import Discovery
from .fieldcheck import FieldChecker
from .handlers import Handlers
from .limitranger import LimitRanger
from .openapi_service import OpenAPIService
from .patching import make_patcher
from .podstreams import PodStreams
from .priority import PriorityAdmission
from .quota import QuotaAdmission
from .reviews import Reviews
from .serviceaccount import ServiceAccountAdmission
from .storageprotection import add_protection_finalizer
from .store import Store
from .strategies import builtin_strategy
from .strategies.service import Allocator, ServiceStrategy
from .strategies.storage import PersistentVolumeClaimStrategy
from .strategy import Strategy
from .subresources import Subresources
from .tables import Tables
from .tokens import ServiceAccountTokens
from .tolerations import default_toleration_seconds
from .watchcache import WatchCache

log = logging.getLogger("kybernetes.apiserver")

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+kyb",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-11-24T00:00:00Z",
    "goVersion": f"python{platform.python_version()}",
    "compiler": platform.python_implementation().lower(),
    "platform": f"linux/{'amd64' if platform.machine() == 'x86_64' else platform.machine()}",
}

# resources a PUT may create when absent (upstream AllowCreateOnUpdate)
CREATE_ON_UPDATE = {("", "endpoints"), ("", "events"), ("coordination.k8s.io", "leases"),
                    ("events.k8s.io", "events"), ("discovery.k8s.io", "endpointslices")}
# resources whose DELETE answers with a Status rather than the object
STATUS_ON_DELETE = {("", "namespaces")}


@dataclass
class ServerConfig:
    data_dir: Path
    bind_address: str = "127.0.0.1"
    port: int = 6443
    advertise_address: str = ""
    service_cidr: str = "10.43.0.0/16"
    node_port_range: tuple[int, int] = (30000, 32767)
    tokens: dict = field(default_factory=dict)  # bearer token -> (user, groups)
    log_requests: bool = False
    watch_cache_history: int = 20000


class APIServer:
    def __init__(self, storage: Storage, config: ServerConfig):
        self.storage = storage
        self.config = config
        self.log_requests = config.log_requests
        self.advertise_address = f"{config.advertise_address or config.bind_address}:{config.port}"
        self.index = ResourceIndex(list(BUILTIN))
        self.cache = WatchCache(storage, history=config.watch_cache_history)
        self.store = Store(storage, self.cache, self.strategy_for)
        self.discovery = Discovery(self.index)
        self.allocator = Allocator(self.cache, config.service_cidr, config.node_port_range)
        self.conversion = Conversion(self)
        self.store.from_storage = self.conversion.from_storage
        self.store.to_storage = self.conversion.to_storage
        self.crds = CustomResources(self)
        self.tables = Tables(self)
        self.fields = FieldChecker(self)
        self.openapi = OpenAPIService(self)
        self.handlers = Handlers(self)
        self.subresources = Subresources(self)
        self.pki: ClusterPKI | None = None
        self.pod_streams = PodStreams(self)
        self.stream_subresource = self.pod_streams.handle  # pods/log, exec, attach, portforward
        self.reviews = Reviews(self)
        self.tokens = ServiceAccountTokens(self, config.data_dir / "server" / "tls" / "service-account.key")
        self.store.track_fields = self.fields.track_managed_fields
        self.quota = QuotaAdmission(self.cache, self.index)
        self.limit_ranger = LimitRanger(self.cache)
        self.store.admit_create = self.admit_create
        # upstream's order of the mutating plugins: LimitRanger, ServiceAccount, Priority,
        # DefaultTolerationSeconds, StorageObjectInUseProtection
        self._mutate_create = (self.limit_ranger.mutate_create, ServiceAccountAdmission(self.cache).mutate_create,
                               PriorityAdmission(self.cache).mutate_create, default_toleration_seconds,
                               add_protection_finalizer)
        self.store.mutate_create = self.mutate_create
        self._strategies: dict[tuple[str, str, str], Strategy] = {}
        self._runner: web.AppRunner | None = None
        self.bound_port: int = config.port
        self._listeners: list[Callable] = []

    async def mutate_create(self, rt: ResourceType, obj: dict) -> None:
        """The admission plugins' mutations, in order, on a new object.

        The plugins read the watch cache (service accounts, priority classes, limit ranges), caught
        up once here with everything written before this request: one wait instead of one each."""
        if rt.group == "" and rt.plural in ("pods", "persistentvolumeclaims"):
            await self.cache.sync()
        for plugin in self._mutate_create:
            plugin(rt, obj)

    def admit_create(self, rt: ResourceType, obj: dict, ctx):
        """The validating admission plugins on a valid new object: what to hold while it is written."""
        self.limit_ranger.validate_create(rt, obj)
        return self.quota.admit_create(rt, obj, ctx)

    # --- wiring used by handlers ------------------------------------------------------------
    def strategy_for(self, rt: ResourceType) -> Strategy:
        key = (rt.group, rt.version, rt.plural)
        s = self._strategies.get(key)
        if s is None:
            s = self.crds.strategy_for(rt) or builtin_strategy(rt)
            if isinstance(s, ServiceStrategy):
                s.allocator = self.allocator
            if isinstance(s, PersistentVolumeClaimStrategy):
                s.cache = self.cache
            self._strategies[key] = s
        return s

    def forget_strategy(self, rt: ResourceType) -> None:
        self._strategies.pop((rt.group, rt.version, rt.plural), None)

    def selection(self, rt: ResourceType, query) -> Callable[[dict], bool] | None:
        """A predicate for labelSelector/fieldSelector, or None when nothing is selected."""
        preds = []
        if query.get("labelSelector"):
            preds.append(label_selector_matcher(query["labelSelector"]))
        if query.get("fieldSelector"):
            preds.append(field_selector_matcher(rt, query["fieldSelector"], self.crds.selectable_fields(rt)))
        if not preds:
            return None
        if len(preds) == 1:
            return preds[0]
        return lambda obj: all(p(obj) for p in preds)

    def needs_conversion(self, rt: ResourceType) -> bool:
        return self.conversion.needed(rt)

    def encode_list(self, rt: ResourceType, entries, list_meta: dict) -> web.Response:
        import orjson

        head = orjson.dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": list_meta})
        if self.conversion.needed(rt):
            items = b",".join(orjson.dumps(self.conversion.from_storage(rt, e.obj)) for e in entries)
        else:
            items = b",".join(e.encoded() for e in entries)
        body = head[:-1] + b',"items":[' + items + b"]}"
        return negotiate.raw_json_response(body)

    def allow_create_on_update(self, rt: ResourceType) -> bool:
        return (rt.group, rt.plural) in CREATE_ON_UPDATE

    def returns_deleted_object(self, rt: ResourceType) -> bool:
        return (rt.group, rt.plural) not in STATUS_ON_DELETE

    def patch_schema(self, rt: ResourceType) -> schema.Node | None:
        """The schema strategic merge and apply walk: a CRD's structural schema or a built-in's."""
        if self.crds.lookup(rt) is not None:
            raw = self.crds.schema(rt)
            return schema.for_openapi(raw, {}) if raw else None
        return schema.for_kind(rt.group, rt.version, rt.kind)

    def patcher(self, rt, content_type, raw, mode, ctx, force):
        return make_patcher(self, rt, content_type, raw, mode, ctx, force)

    async def create(self, request: web.Request, rt: ResourceType, info) -> web.Response:
        if rt.plural in VIRTUAL:
            return await self.reviews.create(request, rt, info)
        return await self.handlers.create(request, rt, info)

    async def after_write(self, rt: ResourceType, verb: str, obj: dict, ctx) -> None:
        if ctx.dry_run:
            return
        if rt.group == "apiextensions.k8s.io" and rt.plural == "customresourcedefinitions":
            await self.crds.crd_changed(verb, obj)

    def on_resources_changed(self) -> None:
        self.discovery.invalidate()
        self.openapi.invalidate()

    def version_info(self) -> dict:
        return VERSION

    def root_paths(self) -> list[str]:
        paths = {"/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version", "/openapi/v3"}
        for group, versions in self.index.groups().items():
            if group:
                paths.add(f"/apis/{group}")
                paths.update(f"/apis/{group}/{v}" for v in versions)
        return sorted(paths)

    def authenticate_token(self, token: str) -> tuple[str, list[str]] | None:
        return self.config.tokens.get(token) or self.tokens.authenticate(token)

    # --- lifecycle -------------------------------------------------------------------------------
    def ssl_context(self, pki: ClusterPKI) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pki.serving.cert, pki.serving.key)
        ctx.load_verify_locations(pki.ca.cert)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    async def start(self, pki: ClusterPKI | None = None) -> None:
        """Fill the cache, create the built-in objects and start listening."""
        self.pki = pki
        await self.cache.start()
        await self.crds.load()
        app = make_app(self)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.bind_address, self.config.port,
                           ssl_context=self.ssl_context(pki) if pki else None, backlog=1024)
        await site.start()
        sockets = site._server.sockets if site._server else []
        if sockets:
            self.bound_port = sockets[0].getsockname()[1]
        await bootstrap.ensure_defaults(self)
        log.info("serving on %s:%s", self.config.bind_address, self.bound_port)

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        await self.cache.stop()

    async def run(self, stop: asyncio.Event, pki: ClusterPKI | None = None) -> None:
        await self.start(pki)
        try:
            await stop.wait()
        finally:
            await self.stop()


__all__ = ["APIServer", "ServerConfig", "errors"]
