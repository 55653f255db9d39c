"""Components run alone against a kubeconfig: `kyb controller-manager`, ..."""

from __future__ import annotations

import asyncio


def run_controller_manager_command(args):
    from ..client.rest import RESTClient
    from ..controllers.manager import run_controller_manager

    async def run(stop: asyncio.Event) -> int:
        client = RESTClient.from_kubeconfig(args.kubeconfig, "kyb-controller-manager")
        enabled = [c.strip() for c in args.controllers.split(",") if c.strip()] or None
        try:
            from .main import controller_options

            options = {**controller_options(args), "kubeconfig": str(args.kubeconfig)}  # root CA publisher
            await run_controller_manager(client, stop, enabled, options=options)
        finally:
            await client.close()
        return 0

    return run


def run_scheduler_command(args):
    from ..client.rest import RESTClient
    from ..scheduler.app import run_scheduler_component

    async def run(stop: asyncio.Event) -> int:
        client = RESTClient.from_kubeconfig(args.kubeconfig, args.scheduler_name)
        try:
            await run_scheduler_component(client, stop, args.scheduler_name, args.leader_elect == "true")
        finally:
            await client.close()
        return 0

    return run


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return text, default_port
    return host, int(port)


def run_dns_command(args):
    from ..client.rest import RESTClient
    from ..dns.app import run_dns
    from ..dns.server import upstream_resolvers

    async def run(stop: asyncio.Event) -> int:
        client = RESTClient.from_kubeconfig(args.kubeconfig, "kyb-dns")
        host, port = _host_port(args.listen, 53)
        upstreams = [_host_port(u, 53) for u in args.upstream] or upstream_resolvers()
        try:
            await run_dns(client, stop, host, port, upstreams, args.cluster_domain,
                          cluster_ip=args.publish_cluster_ip)
        finally:
            await client.close()
        return 0

    return run
