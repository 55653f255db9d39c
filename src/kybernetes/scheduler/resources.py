"""Pod resource requests and host ports, computed as upstream's resource helpers do."""

from __future__ import annotations

import functools

from ..api import quantity


@functools.lru_cache(maxsize=4096)
def milli_value(q) -> int:
    """quantity.milli_value, remembered: pods repeat a handful of request strings, and parsing goes
    through Fractions."""
    return quantity.milli_value(q)


@functools.lru_cache(maxsize=4096)
def int_value(q) -> int:
    return quantity.int_value(q)

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU_REQUEST = 100  # upstream's util.DefaultMilliCPURequest, for scoring only
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


class Resource:
    """cpu in millicores, memory and ephemeral-storage in bytes, pods as a count, the rest as integers."""

    __slots__ = ("milli_cpu", "memory", "ephemeral_storage", "allowed_pod_number", "scalar")

    def __init__(self, milli_cpu: int = 0, memory: int = 0, ephemeral_storage: int = 0, allowed_pod_number: int = 0,
                 scalar: dict[str, int] | None = None):
        self.milli_cpu = milli_cpu
        self.memory = memory
        self.ephemeral_storage = ephemeral_storage
        self.allowed_pod_number = allowed_pod_number
        self.scalar = dict(scalar or {})

    @classmethod
    def from_list(cls, rl: dict) -> Resource:
        r = cls()
        for name, q in (rl or {}).items():
            if isinstance(q, (dict, list)):  # not a quantity: let the parser say so
                r.set(name, quantity.milli_value(q) if name == CPU else quantity.int_value(q))
                continue
            r.set(name, milli_value(q) if name == CPU else int_value(q))
        return r

    def get(self, name: str) -> int:
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL:
            return self.ephemeral_storage
        if name == PODS:
            return self.allowed_pod_number
        return self.scalar.get(name, 0)

    def set(self, name: str, value: int) -> None:
        if name == CPU:
            self.milli_cpu = value
        elif name == MEMORY:
            self.memory = value
        elif name == EPHEMERAL:
            self.ephemeral_storage = value
        elif name == PODS:
            self.allowed_pod_number = value
        else:
            self.scalar[name] = value

    def names(self) -> list[str]:
        return [CPU, MEMORY, EPHEMERAL, PODS, *self.scalar]

    def add(self, other: Resource) -> None:
        for name in other.names():
            self.set(name, self.get(name) + other.get(name))

    def sub(self, other: Resource) -> None:
        for name in other.names():
            self.set(name, self.get(name) - other.get(name))

    def max_with(self, other: Resource) -> None:
        for name in other.names():
            self.set(name, max(self.get(name), other.get(name)))

    def copy(self) -> Resource:
        return Resource(self.milli_cpu, self.memory, self.ephemeral_storage, self.allowed_pod_number, self.scalar)

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral_storage or any(self.scalar.values()))

    def __eq__(self, other) -> bool:
        return isinstance(other, Resource) and all(self.get(n) == other.get(n) for n in {*self.names(),
                                                                                           *other.names()})

    def __repr__(self) -> str:
        return (f"Resource(cpu={self.milli_cpu}m, memory={self.memory}, ephemeral={self.ephemeral_storage}, "
                f"pods={self.allowed_pod_number}, scalar={self.scalar})")


def _container_requests(c: dict, non_zero: bool) -> Resource:
    res = c.get("resources") or {}
    requests = dict(res.get("limits") or {})  # defaulting copies limits to missing requests
    requests.update(res.get("requests") or {})
    r = Resource.from_list({k: v for k, v in requests.items() if k != PODS})
    if non_zero:
        if CPU not in requests:
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST
        if MEMORY not in requests:
            r.memory = DEFAULT_MEMORY_REQUEST
    return r


def pod_requests(pod: dict, non_zero: bool = False) -> Resource:
    """Effective requests: containers summed, then the max with each init container (sidecars added to
    what follows them), plus overhead. `non_zero` counts missing cpu/memory as 100m/200Mi, as scoring does."""
    spec = pod.get("spec") or {}
    reqs = Resource()
    for c in spec.get("containers") or ():
        reqs.add(_container_requests(c, non_zero))
    init_max = Resource()
    sidecars = Resource()
    for c in spec.get("initContainers") or ():
        creq = _container_requests(c, non_zero)
        if c.get("restartPolicy") == "Always":
            reqs.add(creq)
            sidecars.add(creq)
            current = sidecars.copy()
        else:
            current = creq
            current.add(sidecars)
        init_max.max_with(current)
    reqs.max_with(init_max)
    if spec.get("overhead"):
        reqs.add(Resource.from_list(spec["overhead"]))
    return reqs


def host_ports(pod: dict) -> list[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) for every container port that claims a host port."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or ())
    containers += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    out = []
    for c in containers:
        for p in c.get("ports") or ():
            hp = p.get("hostPort") or 0
            if hp > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", int(hp)))
    return out


def pod_key(pod: dict) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def pod_priority(pod: dict) -> int:
    p = (pod.get("spec") or {}).get("priority")
    return int(p) if p is not None else 0
