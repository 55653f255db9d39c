"""`kyb`: the command line of kybernetes. Every component is a subcommand."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
from pathlib import Path

from .. import __version__
from .agent import add_agent_flags, add_agent_parser
from .gcpolicy import GCPolicy


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/kybernetes")
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share")) / "kybernetes"


def _port_range(value: str) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in value.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port range like 30000-32767, got {value!r}") from None
    if not (0 < lo <= hi < 65536):
        raise argparse.ArgumentTypeError(f"invalid port range {value!r}")
    return lo, hi


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(value: str) -> float:
    """Seconds from a Go duration as upstream's flags take it ("40s", "1m30s", "500ms"), or a bare number."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {value!r} (expected e.g. 40s, 1m30s or 40)")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def _controller_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster-cidr", default="10.42.0.0/16",
                   help="CIDR of pod addresses; each node gets a /24 of it (default 10.42.0.0/16)")
    p.add_argument("--node-monitor-grace-period", type=_duration, default=40.0, metavar="DURATION",
                   help="time without a node heartbeat before the node is marked NotReady, e.g. 20s or 1m "
                        "(default 40s)")
    p.add_argument("--terminated-pod-gc-threshold", type=int, default=12500,
                   help="terminated pods kept before the oldest are deleted; 0 disables (default 12500)")
    p.add_argument("--service-lb-pool", default="",
                   help="addresses for LoadBalancer Services, a CIDR or FIRST-LAST (default: the nodes' addresses)")


def controller_options(args) -> dict:
    return {"cluster_cidr": args.cluster_cidr, "node_monitor_grace_period": args.node_monitor_grace_period,
            "terminated_pod_gc_threshold": args.terminated_pod_gc_threshold, "service_lb_pool": args.service_lb_pool}


def controller_argv(args) -> list[str]:
    return ["--cluster-cidr", args.cluster_cidr, "--node-monitor-grace-period", str(args.node_monitor_grace_period),
            "--terminated-pod-gc-threshold", str(args.terminated_pod_gc_threshold),
            *(["--service-lb-pool", args.service_lb_pool] if args.service_lb_pool else [])]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kyb",
        description="kybernetes: Kubernetes written in Python. Run `kyb server` for a one-node cluster.",
    )
    parser.add_argument("--version", action="version", version=f"kyb {__version__} (Kubernetes v1.32 API)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request (debug logging)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    server = sub.add_parser(
        "server",
        help="run the control plane (API server on embedded SQLite) in the foreground",
        description="Run the control plane: the Kubernetes API over HTTPS, backed by an embedded SQLite "
                    "datastore. Writes an admin kubeconfig and stays in the foreground; Ctrl-C stops it.",
    )
    server.add_argument("--data-dir", type=Path, default=None,
                        help="where state lives (default /var/lib/kybernetes as root, else ~/.local/share/kybernetes)")
    server.add_argument("--bind-address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=6443, help="HTTPS port of the API (default 6443)")
    server.add_argument("--advertise-address", default="", help="address other machines use to reach this server")
    server.add_argument("--write-kubeconfig", type=Path, default=None,
                        help="where to write the admin kubeconfig (default DATA_DIR/kubeconfig.yaml)")
    server.add_argument("--service-cluster-ip-range", default="10.43.0.0/16",
                        help="CIDR of Service ClusterIPs (default 10.43.0.0/16)")
    server.add_argument("--service-node-port-range", type=_port_range, default=(30000, 32767),
                        help="range of NodePorts (default 30000-32767)")
    server.add_argument("--compact-interval", type=float, default=300.0,
                        help="seconds between compactions of old revisions (default 300)")
    server.add_argument("--compact-retain", type=int, default=10000,
                        help="revisions kept by compaction for watches to resume from (default 10000)")
    server.add_argument("--disable-controller-manager", action="store_true",
                        help="do not run the controllers in this process (run `kyb controller-manager` elsewhere)")
    server.add_argument("--disable-dns", action="store_true",
                        help="do not run the cluster DNS (kube-dns Service at the 10th address of the service range)")
    server.add_argument("--cluster-dns-upstream", action="append", default=[], metavar="ADDR[:PORT]",
                        help="resolver the cluster DNS forwards other names to (default: /etc/resolv.conf)")
    server.add_argument("--disable-scheduler", action="store_true",
                        help="do not run the scheduler in this process (run `kyb scheduler` elsewhere)")
    server.add_argument("--watch-cache-history", type=int, default=20000,
                        help="events per resource kept for watches to resume from (default 20000)")
    server.add_argument("--sim-nodes", type=int, default=0, metavar="N",
                        help="also run N simulated nodes (the `sim` runtime, like kwok) in a child process")
    server.add_argument("--disable-agent", action="store_true",
                        help="do not run the embedded agent (a real node on this machine's containerd; on by "
                             "default as root with containerd installed)")
    server.add_argument("--agent-token", default="",
                        help="bearer token agents join with (default: DATA_DIR/server/token, created once)")
    server.add_argument("--agent-loopback-routes", action="store_true",
                        help="the embedded agent routes the cluster and service CIDRs to lo (see DESIGN.md)")
    add_agent_flags(server, embedded=True)
    _controller_flags(server)
    cm = sub.add_parser(
        "controller-manager",
        help="run the controllers (namespace, garbage collector, ...) against a cluster",
        description="Run the controller manager as a client of the API server named in a kubeconfig.",
    )
    cm.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig of the cluster to manage")
    cm.add_argument("--controllers", default="", help="comma-separated controllers to run (default: all)")
    _controller_flags(cm)
    sim = sub.add_parser(
        "sim-nodes",
        help="run simulated nodes (registered Nodes whose pods are simulated, like kwok) against a cluster",
        description="Register COUNT Nodes and act as their kubelets: Lease heartbeats, node status and pods "
                    "run by the simulated `sim` runtime (annotations sim.kybernetes.io/run-seconds and "
                    "sim.kybernetes.io/exit-code make containers exit). Annotate a Node "
                    "sim.kybernetes.io/heartbeat=false to make it stop reporting.",
    )
    sim.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig of the cluster")
    sim.add_argument("--count", type=int, default=1, help="number of nodes (default 1)")
    sim.add_argument("--name-prefix", default="sim-node-", help="node names are PREFIX0, PREFIX1, ... (default sim-node-)")
    sim.add_argument("--first-index", type=int, default=0, help="number of the first node (default 0)")
    sim.add_argument("--log-dir", type=Path, help="where container log files go (default: a new temporary directory)")
    sim.add_argument("--kubelet-address", default="127.0.0.1",
                     help="address of the kubelet server of these nodes, advertised to the API server (default 127.0.0.1)")
    sim.add_argument("--kubelet-port", type=int, default=0,
                     help="port of the kubelet server shared by these nodes (default 0: any free port)")
    sched = sub.add_parser(
        "scheduler",
        help="run the scheduler (binds pods to nodes) against a cluster",
        description="Run the scheduler as a client of the API server named in a kubeconfig. Pods whose "
                    "spec.schedulerName matches --scheduler-name are bound to nodes through pods/binding.",
    )
    sched.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig of the cluster")
    sched.add_argument("--scheduler-name", default="default-scheduler",
                       help="schedule pods with this spec.schedulerName (default default-scheduler)")
    sched.add_argument("--leader-elect", default="true", choices=("true", "false"),
                       help="hold a Lease so only one replica schedules (default true)")
    add_agent_parser(sub)
    from .proxy import add_proxy_parser

    add_proxy_parser(sub)
    dns_cmd = sub.add_parser(
        "dns",
        help="run the cluster DNS (svc.ns.svc.cluster.local) against a cluster",
        description="Answer DNS for the cluster domain from Services and EndpointSlices, as CoreDNS's "
                    "kubernetes plugin does, and forward every other name to upstream resolvers.",
    )
    dns_cmd.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig of the cluster")
    dns_cmd.add_argument("--listen", default="127.0.0.1:53", help="address:port for UDP and TCP (default 127.0.0.1:53)")
    dns_cmd.add_argument("--upstream", action="append", default=[],
                         help="resolver for other names, address[:port]; repeatable (default: /etc/resolv.conf)")
    dns_cmd.add_argument("--cluster-domain", default="cluster.local", help="the cluster zone (default cluster.local)")
    dns_cmd.add_argument("--publish-cluster-ip", default="",
                         help="also make this server the kube-system/kube-dns Service at this ClusterIP")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "server":
        from .server import run_server

        return _run(run_server(args))
    if args.command == "agent":
        from .agent import run_agent_command

        return _run(run_agent_command(args))
    if args.command == "dns":
        from .components import run_dns_command

        return _run(run_dns_command(args))
    if args.command == "proxy":
        from .proxy import run_proxy_command

        return _run(run_proxy_command(args))
    if args.command == "scheduler":
        from .components import run_scheduler_command

        return _run(run_scheduler_command(args))
    if args.command == "sim-nodes":
        from .simnodes import run_sim_nodes_command

        return _run(run_sim_nodes_command(args))
    if args.command == "controller-manager":
        from .components import run_controller_manager_command

        return _run(run_controller_manager_command(args))
    parser.error(f"unknown command {args.command}")
    return 2


def _run(coro_factory) -> int:
    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if os.environ.get("KYB_GC") == "default":  # CPython's own collector, for comparisons
            return await coro_factory(stop)
        policy = GCPolicy()
        policy.install()
        collector = asyncio.create_task(policy.run(stop), name="gc-policy")
        try:
            return await coro_factory(stop)
        finally:
            collector.cancel()

    try:
        return asyncio.run(runner())
    except KeyboardInterrupt:
        return 130
    except SystemExit as e:
        return int(e.code or 0)


if __name__ == "__main__":
    sys.exit(main())
