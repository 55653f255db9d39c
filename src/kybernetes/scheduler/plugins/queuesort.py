"""PrioritySort: higher priority first, then the earlier queued."""

from __future__ import annotations

from ..framework import Plugin
from ..resources import pod_priority


class PrioritySort(Plugin):
    def less(self, a, b) -> bool:
        pa, pb = pod_priority(a.pod), pod_priority(b.pod)
        return pa > pb or (pa == pb and a.timestamp < b.timestamp)
