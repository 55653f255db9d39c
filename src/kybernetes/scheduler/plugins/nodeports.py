"""NodePorts: a host port (ip, protocol, port) can be taken by one pod per node."""

from __future__ import annotations

from ..framework import OK, CycleState, NodeInfo, Plugin, Status
from ..resources import host_ports

ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
WILDCARD = "0.0.0.0"


def ports_conflict(wanted: list[tuple[str, str, int]], used: list[tuple[str, str, int]]) -> bool:
    for ip, proto, port in wanted:
        for uip, uproto, uport in used:
            if port == uport and proto == uproto and (ip == uip or WILDCARD in (ip, uip)):
                return True
    return False


class NodePorts(Plugin):
    def pre_filter(self, state: CycleState, pod: dict, nodes):
        ports = host_ports(pod)
        if not ports:
            return None, Status.skip()
        state.write(self.name, ports)
        return None, OK

    def filter(self, state: CycleState, pod: dict, node_info: NodeInfo) -> Status:
        ports = state.read(self.name)
        if ports is None:
            ports = host_ports(pod)
        if ports and ports_conflict(ports, node_info.used_ports):
            return Status.unschedulable(ERR_REASON)
        return OK
