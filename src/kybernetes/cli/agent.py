"""`kyb agent`: a real node (containerd through CRI) joining a cluster; the embedded agent of `kyb server`.

    kyb agent --server https://10.0.0.1:6443 --token TOKEN [--ca-file ca.crt]

The token is the server's agent token (DATA_DIR/server/token, or `kyb server --agent-token`):
a bearer token of a user in the group system:nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import shutil
import socket
import ssl
import sys
from pathlib import Path

log = logging.getLogger("kybernetes.agent")

AGENT_USER = ("system:node:kyb-agent", ["system:nodes", "system:authenticated"])


def default_node_ip() -> str:
    """The source address of the default route (nothing is sent: a UDP connect only picks the route)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1; connect() on UDP sends no packet
        return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        s.close()


def default_node_name() -> str:
    return socket.gethostname().split(".", 1)[0].lower()


def agent_available() -> str:
    """Empty when this machine can run the embedded agent, else why not."""
    if os.geteuid() != 0:
        return "not running as root"
    for tool in ("containerd", "runc", "ctr"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return ""


def server_token(server_dir: Path, given: str = "") -> str:
    """The agent token: --agent-token, else DATA_DIR/server/token (created once)."""
    path = server_dir / "token"
    if given:
        return given
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_hex(24)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


def add_agent_flags(p: argparse.ArgumentParser, embedded: bool = False) -> None:
    prefix = "" if not embedded else "agent "
    p.add_argument("--node-name", default="", help=f"{prefix}node name (default: the host name)")
    p.add_argument("--node-ip", default="", help=f"{prefix}node InternalIP (default: address of the default route)")
    p.add_argument("--container-runtime-endpoint", default="",
                   help="CRI socket of a running runtime (default: start our own containerd under the data dir)")
    p.add_argument("--cgroup-root", default="/kubepods", help="parent cgroup of pods (default /kubepods)")
    p.add_argument("--cluster-dns", action="append", default=[], help="DNS server for pods (repeatable)")
    from .proxy import add_proxy_flags

    add_proxy_flags(p, embedded=True)


def add_agent_parser(sub) -> None:
    p = sub.add_parser(
        "agent",
        help="run a node: pods as containers on containerd (through CRI), joined to a cluster",
        description="Join this machine to a cluster as a node. Starts its own containerd under the data dir "
                    "(unless --container-runtime-endpoint is given), imports the image archives of "
                    "DATA_DIR/agent/images, registers the Node and runs the pods bound to it.",
    )
    p.add_argument("--server", required=True, help="URL of the API server, e.g. https://10.0.0.1:6443")
    p.add_argument("--token", default=os.environ.get("KYB_TOKEN", ""), help="agent token (or $KYB_TOKEN)")
    p.add_argument("--token-file", type=Path, default=None, help="file holding the agent token")
    p.add_argument("--kubelet-port", type=int, default=10250,
                   help="port of the kubelet server (logs, exec, attach, port-forward; default 10250)")
    p.add_argument("--ca-file", type=Path, default=None,
                   help="CA of the API server (default: not verified, with a warning)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="where state lives (default /var/lib/kybernetes as root, else ~/.local/share/kybernetes)")
    p.add_argument("--loopback-route", action="append", default=[], metavar="CIDR",
                   help="route CIDR to the loopback device (pod and service ranges, see DESIGN.md); repeatable")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16", help="CIDR of pod addresses (default 10.42.0.0/16)")
    p.add_argument("--service-cidr", default="10.43.0.0/16", help="CIDR of ClusterIPs (default 10.43.0.0/16)")
    add_agent_flags(p)


def agent_argv(args, server_url: str, token_file: Path, ca_file: Path, data_dir: Path) -> list[str]:
    """`kyb agent` arguments of the embedded agent of `kyb server`."""
    argv = ["agent", "--server", server_url, "--token-file", str(token_file), "--ca-file", str(ca_file),
            "--data-dir", str(data_dir), "--cgroup-root", args.cgroup_root]
    for flag in ("node_name", "node_ip", "container_runtime_endpoint"):
        if getattr(args, flag):
            argv += ["--" + flag.replace("_", "-"), getattr(args, flag)]
    for dns in args.cluster_dns:
        argv += ["--cluster-dns", dns]
    argv += ["--cluster-cidr", args.cluster_cidr, "--service-cidr", args.service_cluster_ip_range]
    if args.proxy_mode:
        argv += ["--proxy-mode", args.proxy_mode]
    if args.nodeport_addresses:
        argv += ["--nodeport-addresses", args.nodeport_addresses]
    if args.agent_loopback_routes:
        argv += ["--loopback-route", args.cluster_cidr, "--loopback-route", args.service_cluster_ip_range]
    return argv


def run_agent_command(args):
    from ..client.config import ClientConfig
    from ..client.rest import RESTClient
    from ..kubelet.node_agent import NodeAgent
    from .main import default_data_dir

    async def run(stop: asyncio.Event) -> int:
        token = args.token or (args.token_file.read_text().strip() if args.token_file else "")
        if not token:
            print("kyb agent: --token or --token-file is required", file=sys.stderr)
            return 2
        ctx = None
        if args.server.startswith("https://"):
            ctx = ssl.create_default_context()
            if args.ca_file:
                ctx.load_verify_locations(cafile=str(args.ca_file))
            else:
                log.warning("--ca-file not given: the API server's certificate is not verified")
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        client = RESTClient(ClientConfig(args.server.rstrip("/"), ctx, token), "kyb-agent")
        data_dir = (args.data_dir or default_data_dir()).expanduser().resolve()
        agent = NodeAgent(client, args.node_name or default_node_name(), args.node_ip or default_node_ip(), data_dir,
                          runtime_endpoint=args.container_runtime_endpoint, cgroup_root=args.cgroup_root,
                          loopback_routes=args.loopback_route, cluster_dns=args.cluster_dns,
                          cluster_cidr=args.cluster_cidr)
        jobs = [agent.run(stop)]
        if args.proxy_mode != "none":  # the node's Service proxy and its routes to other nodes' pods
            from ..proxy.app import run_proxy
            from .proxy import proxy_kwargs

            jobs.append(run_proxy(client, stop, agent.name, host_gw=True, **proxy_kwargs(args)))
        if args.ca_file:  # the cluster CA also signs the API server's kubelet-client certificate
            from ..kubelet.server import serve_node_agent

            jobs.append(serve_node_agent(agent, args.ca_file.read_bytes(), stop, port=args.kubelet_port))
        else:
            log.warning("--ca-file not given: no kubelet server (logs, exec, port-forward)")
        try:
            await asyncio.gather(*jobs)
        finally:
            await client.close()
        return 0

    return run
