"""The framework runtime: the Plugin base, the Handle plugins reach the cluster through, and the
Framework that runs a profile's plugins extension point by extension point (upstream framework/runtime)."""

from __future__ import annotations

import asyncio
import operator
from typing import Any

from .framework import (
    EXTENSION_POINTS,
    MAX_NODE_SCORE,
    MIN_NODE_SCORE,
    OK,
    Code,
    CycleState,
    Diagnosis,
    NodeInfo,
    PreFilterResult,
    Status,
)
from .resources import pod_key, pod_priority


class Plugin:
    """Base of every plugin; a subclass defines only the extension-point methods it implements."""

    name = ""

    def __init__(self, handle: Handle | None = None, args: dict | None = None):
        self.handle = handle or Handle()
        self.args = args or {}


class Handle:
    """What plugins may reach: the API client, listers (informer-like: get(key), list()), the nominated pods."""

    def __init__(self, client=None, listers: dict | None = None, scheduler_name: str = "default-scheduler"):
        self.client = client
        self.listers: dict[str, Any] = listers or {}
        self.scheduler_name = scheduler_name
        self.framework: Framework | None = None
        self.nominated_pods = lambda node_name: []  # replaced by the queue's nominator
        self.snapshot = lambda: []  # the current list of NodeInfo
        # the cache's index of nodes running pods with affinity terms (Cache.nodes_with_affinity), if any
        self.nodes_with_affinity = None

    def get(self, kind: str, key: str) -> dict | None:
        lister = self.listers.get(kind)
        return lister.get(key) if lister is not None else None

    def namespace_labels(self, namespace: str) -> dict:
        ns = self.get("namespaces", namespace)
        return ((ns or {}).get("metadata") or {}).get("labels") or {}


class Framework:
    """Runs the enabled plugins of one profile, extension point by extension point, in order."""

    def __init__(self, registry: dict, enabled: list[tuple[str, int]], handle: Handle | None = None,
                 args: dict | None = None):
        self.handle = handle or Handle()
        self.handle.framework = self
        self.plugins = [registry[name](self.handle, (args or {}).get(name)) for name, _ in enabled]
        for p, (name, _) in zip(self.plugins, enabled, strict=True):
            p.name = name
        self.weights = {name: weight or 1 for name, weight in enabled}
        self.points = {ep: [p for p in self.plugins if callable(getattr(p, ep, None))] for ep in EXTENSION_POINTS}
        self.waiting: dict[str, asyncio.Future] = {}

    def plugin(self, name: str) -> Plugin | None:
        return next((p for p in self.plugins if p.name == name), None)

    def run_pre_enqueue(self, pod: dict) -> Status:
        for p in self.points["pre_enqueue"]:
            s = p.pre_enqueue(pod)
            if not s.is_success():
                return s.with_plugin(p.name)
        return OK

    def less(self, a, b) -> bool:
        sorters = self.points["less"]
        return sorters[0].less(a, b) if sorters else False

    def run_pre_filter(self, state: CycleState, pod: dict, nodes: list[NodeInfo]):
        result: PreFilterResult | None = None
        for p in self.points["pre_filter"]:
            r, s = p.pre_filter(state, pod, nodes)
            if s.is_skip():
                state.skip_filter_plugins.add(p.name)
                continue
            if not s.is_success():
                return None, s.with_plugin(p.name)
            if r is not None and r.node_names is not None:
                result = r if result is None else result.merge(r)
                if not result.node_names:
                    return result, Status.unresolvable(f"node(s) didn't satisfy plugin(s) [{p.name}]").with_plugin(
                        p.name)
        return result, OK

    def filter_plugins(self, state: CycleState) -> list[Plugin]:
        """The filter plugins of this cycle (PreFilter may have skipped some), computed once per cycle."""
        plugins = state.filter_plugins
        if plugins is None or state.filter_skips != len(state.skip_filter_plugins):
            plugins = state.filter_plugins = [p for p in self.points["filter"]
                                              if p.name not in state.skip_filter_plugins]
            state.filter_skips = len(state.skip_filter_plugins)
        return plugins

    def run_filter(self, state: CycleState, pod: dict, node_info: NodeInfo) -> Status:
        for p in self.filter_plugins(state):
            s = p.filter(state, pod, node_info)
            if s is not OK and s.code != Code.SUCCESS:
                if s.code not in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE):
                    s = Status.error(f"running {p.name!r} filter plugin: {s.message()}")
                return s.with_plugin(p.name)
        return OK

    def run_filter_nodes(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> list[Status]:
        """`run_filter` for a list of nodes, plugin by plugin: each plugin sees only the nodes that passed the
        ones before it (so a node's status names the first plugin that rejected it, as per node), and a
        plugin with `filter_nodes` judges the whole list in one call."""
        out: list[Status] = [OK] * len(nodes)
        alive = list(range(len(nodes)))
        subset = nodes
        for p in self.filter_plugins(state):
            batch = getattr(p, "filter_nodes", None)
            statuses = batch(state, pod, subset) if batch is not None else [p.filter(state, pod, n) for n in subset]
            if statuses.count(OK) == len(statuses):  # the common case: every node passes, in one C loop
                continue
            still = []
            for i, s in zip(alive, statuses, strict=True):
                if s is OK or s.code == Code.SUCCESS:
                    still.append(i)
                    continue
                if s.code not in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE):
                    s = Status.error(f"running {p.name!r} filter plugin: {s.message()}")
                out[i] = s.with_plugin(p.name)
            alive = still
            if not alive:
                break
            subset = [nodes[i] for i in alive]
        return out

    def run_filter_with_nominated(self, state: CycleState, pod: dict, node_info: NodeInfo) -> Status:
        """Filter as if the higher-or-equal priority pods nominated to this node were already there."""
        nominated = self.handle.nominated_pods(node_info.name)
        if nominated:
            nominated = [q for q in nominated if pod_priority(q) >= pod_priority(pod) and pod_key(q) != pod_key(pod)]
        if nominated:
            node_info = node_info.clone()
            for q in nominated:
                node_info.add_pod(q)
        return self.run_filter(state, pod, node_info)

    async def run_post_filter(self, state: CycleState, pod: dict, diagnosis: Diagnosis):
        reasons = []
        for p in self.points["post_filter"]:
            result, s = await p.post_filter(state, pod, diagnosis)
            if s.is_success():
                return result, s.with_plugin(p.name)
            if s.code == Code.ERROR:
                return None, s.with_plugin(p.name)
            reasons.extend(s.reasons)
        return None, Status.unschedulable(*reasons)

    def run_pre_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]) -> Status:
        for p in self.points["pre_score"]:
            s = p.pre_score(state, pod, nodes)
            if s.is_skip():
                state.skip_score_plugins.add(p.name)
            elif not s.is_success():
                return s.with_plugin(p.name)
        return OK

    def run_score(self, state: CycleState, pod: dict, nodes: list[NodeInfo]):
        """Total weighted score per node name, and the per-plugin scores."""
        names = [n.name for n in nodes]
        totals = [0] * len(nodes)
        per_plugin: dict[str, dict[str, int] | list[int]] = {}  # normalized: by name; else in node order
        for p in self.points["score"]:
            if p.name in state.skip_score_plugins:
                continue
            batch = getattr(p, "score_nodes", None)
            if batch is not None:  # a plugin that scores a list at once (and cannot fail)
                values = batch(state, pod, nodes)
            else:
                values = []
                append = values.append
                score = p.score
                for n in nodes:
                    value, s = score(state, pod, n)
                    if s is not OK and s.code != Code.SUCCESS:
                        return None, per_plugin, s.with_plugin(p.name)
                    append(value)
            normalize = getattr(p, "normalize_score", None)
            if callable(normalize):
                scores = dict(zip(names, values, strict=True))
                s = normalize(state, pod, scores)
                if not s.is_success():
                    return None, per_plugin, s.with_plugin(p.name)
                values = list(scores.values())
                per_plugin[p.name] = scores
            else:
                per_plugin[p.name] = values  # by node, in the order of `nodes`
            if values and (min(values) < MIN_NODE_SCORE or max(values) > MAX_NODE_SCORE):
                value = next(v for v in values if not MIN_NODE_SCORE <= v <= MAX_NODE_SCORE)
                return None, per_plugin, Status.error(f"plugin {p.name!r} returned an invalid score {value}")
            weight = self.weights.get(p.name, 1)
            totals = [t + v * weight for t, v in zip(totals, values, strict=True)] if weight != 1 else \
                list(map(operator.add, totals, values))
        return dict(zip(names, totals, strict=True)), per_plugin, OK

    def run_reserve(self, state: CycleState, pod: dict, node_name: str) -> Status:
        for p in self.points["reserve"]:
            s = p.reserve(state, pod, node_name)
            if not s.is_success():
                self.run_unreserve(state, pod, node_name)
                return s.with_plugin(p.name)
        return OK

    def run_unreserve(self, state: CycleState, pod: dict, node_name: str) -> None:
        for p in reversed(self.points["unreserve"]):
            p.unreserve(state, pod, node_name)

    def run_permit(self, state: CycleState, pod: dict, node_name: str) -> tuple[Status, float]:
        timeout = 0.0
        for p in self.points["permit"]:
            s, t = p.permit(state, pod, node_name)
            if s.code == Code.WAIT:
                timeout = max(timeout, t)
            elif not s.is_success():
                return s.with_plugin(p.name), 0.0
        if timeout:
            self.waiting[pod_key(pod)] = asyncio.get_running_loop().create_future()
            return Status(Code.WAIT), timeout
        return OK, 0.0

    def allow(self, pod: dict, allowed: bool = True, message: str = "") -> None:
        fut = self.waiting.get(pod_key(pod))
        if fut is not None and not fut.done():
            fut.set_result(OK if allowed else Status.unschedulable(message or "rejected by permit plugin"))

    async def wait_on_permit(self, pod: dict, timeout: float) -> Status:
        fut = self.waiting.get(pod_key(pod))
        if fut is None:
            return OK
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return Status.unschedulable("rejected due to timeout after waiting on permit")
        finally:
            self.waiting.pop(pod_key(pod), None)

    async def run_pre_bind(self, state: CycleState, pod: dict, node_name: str) -> Status:
        for p in self.points["pre_bind"]:
            s = await p.pre_bind(state, pod, node_name)
            if not s.is_success():
                return s.with_plugin(p.name)
        return OK

    async def run_bind(self, state: CycleState, pod: dict, node_name: str) -> Status:
        for p in self.points["bind"]:
            s = await p.bind(state, pod, node_name)
            if s.is_skip():
                continue
            return s.with_plugin(p.name)
        return Status.error("no bind plugin bound the pod")

    def run_post_bind(self, state: CycleState, pod: dict, node_name: str) -> None:
        for p in self.points["post_bind"]:
            p.post_bind(state, pod, node_name)
