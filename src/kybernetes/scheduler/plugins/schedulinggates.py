"""SchedulingGates: pods with spec.schedulingGates wait outside the active queue."""

from __future__ import annotations

from ..framework import OK, Plugin, Status


class SchedulingGates(Plugin):
    def pre_enqueue(self, pod: dict) -> Status:
        gates = (pod.get("spec") or {}).get("schedulingGates") or []
        if not gates:
            return OK
        names = ", ".join(g.get("name", "") for g in gates)
        return Status.unresolvable(f"waiting for scheduling gates: [{names}]")
