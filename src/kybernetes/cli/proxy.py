"""`kyb proxy`: the Service proxy of one node, against a kubeconfig (the agents embed it)."""

from __future__ import annotations

import asyncio
from pathlib import Path


def add_proxy_flags(p, embedded: bool = False) -> None:
    p.add_argument("--proxy-mode", "--mode", dest="proxy_mode", default="",
                   choices=("", "iptables", "userspace", "none"),
                   help="iptables (default as root), userspace (asyncio relays, no iptables) or none")
    p.add_argument("--nodeport-addresses", default="",
                   help="comma-separated addresses NodePorts answer on (default: every local address)")
    if not embedded:
        p.add_argument("--cluster-cidr", default="10.42.0.0/16",
                       help="pod addresses; traffic to a ClusterIP from elsewhere is masqueraded (default 10.42.0.0/16)")
        p.add_argument("--service-cidr", default="10.43.0.0/16",
                       help="ClusterIP range, made local on lo in userspace mode (default 10.43.0.0/16)")


def add_proxy_parser(sub) -> None:
    p = sub.add_parser(
        "proxy",
        help="run the Service proxy of this node (iptables or userspace mode) against a cluster",
        description="Make Services reachable on this node: ClusterIPs, NodePorts and load balancer addresses, "
                    "from Services and EndpointSlices, with iptables-restore (root) or userspace relays.",
    )
    p.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig of the cluster")
    p.add_argument("--hostname-override", default="", help="name of this node (default: the host name)")
    p.add_argument("--host-gw", action="store_true", help="also route other nodes' pod CIDRs via their InternalIPs")
    add_proxy_flags(p)


def proxy_kwargs(args) -> dict:
    return {"mode": args.proxy_mode if args.proxy_mode != "none" else "", "cluster_cidr": args.cluster_cidr,
            "service_cidr": args.service_cidr,
            "node_port_addresses": tuple(a.strip() for a in args.nodeport_addresses.split(",") if a.strip())}


def run_proxy_command(args):
    from ..client.rest import RESTClient
    from ..proxy.app import run_proxy
    from .agent import default_node_name

    async def run(stop: asyncio.Event) -> int:
        client = RESTClient.from_kubeconfig(args.kubeconfig, "kyb-proxy")
        try:
            await run_proxy(client, stop, args.hostname_override or default_node_name(), host_gw=args.host_gw,
                            **proxy_kwargs(args))
        finally:
            await client.close()
        return 0

    return run
