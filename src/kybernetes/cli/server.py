"""`kyb server`: PKI, kubeconfig, SQLite storage and the API server in one process."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import sys
from pathlib import Path

from ..apiserver.certs import ClusterPKI
from ..apiserver.kubeconfig import write_kubeconfig
from ..apiserver.server import APIServer, ServerConfig
from ..storage.sqlite import SQLiteStorage
from .agent import AGENT_USER, agent_argv, agent_available, default_node_ip, server_token
from .supervisor import supervise

log = logging.getLogger("kybernetes.server")


def run_server(args):
    from .main import controller_argv, default_data_dir

    async def run(stop: asyncio.Event) -> int:
        data_dir: Path = (args.data_dir or default_data_dir()).expanduser().resolve()
        server_dir = data_dir / "server"
        server_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        pki = ClusterPKI(server_dir / "tls")
        extra_ips = tuple(a for a in (args.bind_address, args.advertise_address) if a and a not in ("0.0.0.0", "::"))
        pki.ensure(extra_ips=extra_ips)
        (server_dir / "db").mkdir(exist_ok=True, mode=0o700)
        storage = SQLiteStorage(str(server_dir / "db" / "state.db"))
        config = ServerConfig(
            data_dir=data_dir,
            bind_address=args.bind_address,
            port=args.port,
            advertise_address=args.advertise_address,
            service_cidr=args.service_cluster_ip_range,
            node_port_range=args.service_node_port_range,
            log_requests=args.verbose,
            watch_cache_history=args.watch_cache_history,
        )
        agent_token = server_token(server_dir, args.agent_token)
        config.tokens[agent_token] = AGENT_USER
        server = APIServer(storage, config)
        try:
            await server.start(pki)
        except OSError as e:
            print(f"kyb server: cannot listen on {args.bind_address}:{args.port}: {e.strerror or e}", file=sys.stderr)
            await storage.close()
            return 1
        host = args.advertise_address or ("127.0.0.1" if args.bind_address in ("0.0.0.0", "::") else args.bind_address)
        kubeconfig = (args.write_kubeconfig or data_dir / "kubeconfig.yaml").expanduser()
        write_kubeconfig(kubeconfig, f"https://{host}:{server.bound_port}", pki)
        compactor = asyncio.create_task(storage.run_compactor(stop, args.compact_interval, args.compact_retain))
        children = []
        verbose = ["-v"] if args.verbose else []
        if not args.disable_controller_manager:
            children.append(supervise("controller-manager",
                                      [*verbose, "controller-manager", "--kubeconfig", str(kubeconfig),
                                       *controller_argv(args)], stop))
        if not args.disable_scheduler:
            children.append(supervise("scheduler", [*verbose, "scheduler", "--kubeconfig", str(kubeconfig)], stop))
        if args.sim_nodes > 0:
            children.append(supervise("sim-nodes", [*verbose, "sim-nodes", "--kubeconfig", str(kubeconfig),
                                                    "--count", str(args.sim_nodes),
                                                    "--log-dir", str(data_dir / "sim-nodes" / "pods")], stop))
        if not args.disable_dns:
            dns_ip = str(ipaddress.ip_network(args.service_cluster_ip_range).network_address + 10)
            listen = f"{args.node_ip or default_node_ip()}:0"
            upstreams = [x for u in args.cluster_dns_upstream for x in ("--upstream", u)]
            children.append(supervise("dns", [*verbose, "dns", "--kubeconfig", str(kubeconfig), "--listen", listen,
                                              "--publish-cluster-ip", dns_ip, *upstreams], stop))
        why_not = "disabled" if args.disable_agent else agent_available()
        if not why_not:
            token_file = server_dir / "token-agent"
            token_file.write_text(agent_token + "\n")
            token_file.chmod(0o600)
            children.append(supervise("agent", [*verbose, *agent_argv(args, f"https://{host}:{server.bound_port}",
                                                                     token_file, pki.ca.cert, data_dir)], stop))
        else:
            log.info("embedded agent not started: %s", why_not)
        components = asyncio.ensure_future(asyncio.gather(*children, return_exceptions=True))
        print(f"kybernetes API server listening on https://{host}:{server.bound_port}", flush=True)
        print(f"kubeconfig written to {kubeconfig}", flush=True)
        print(f"  export KUBECONFIG={kubeconfig}; kubectl get nodes", flush=True)
        try:
            await stop.wait()
        finally:
            print("shutting down", flush=True)
            compactor.cancel()
            await asyncio.wait_for(components, 15)
            await server.stop()
            await storage.close()
        return 0

    return run
