"""Pod spec -> CRI configs (upstream kuberuntime_sandbox.go / kuberuntime_container.go, in small pure functions).

Nothing here talks to the runtime: `sandbox_config` and `container_config` turn a pod and
one of its containers into `PodSandboxConfig` / `ContainerConfig` messages, given the
node-local paths the agent chose (log directory, volume directories).
"""

from __future__ import annotations

from pathlib import Path

from ...api.quantity import parse_quantity
from ..cri.client import pb
from ..dns import pod_dns
from ..envvars import expand

# upstream's label and annotation keys (pkg/kubelet/types/labels.go, kuberuntime/labels.go)
POD_NAME, POD_NAMESPACE, POD_UID = "io.kubernetes.pod.name", "io.kubernetes.pod.namespace", "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
RESTART_COUNT = "io.kubernetes.container.restartCount"
TERMINATION_GRACE = "io.kubernetes.pod.terminationGracePeriod"

CPU_PERIOD = 100_000  # µs, the CFS period upstream uses
MIN_SHARES, SHARES_PER_CPU = 2, 1024


def pod_log_dir(root: Path, pod: dict) -> Path:
    """`/var/log/pods/<namespace>_<name>_<uid>` under the agent's log root."""
    meta = pod["metadata"]
    return Path(root) / f"{meta.get('namespace', '')}_{meta['name']}_{meta['uid']}"


def container_log_path(name: str, attempt: int) -> str:
    """Relative to the pod's log directory, as upstream: `<container>/<attempt>.log` (CRI log format)."""
    return f"{name}/{attempt}.log"


def _ns(host: bool, default: int = pb.POD) -> int:
    return pb.NODE if host else default


def _dns_config(pod: dict, cluster_dns: list[str], domain: str, resolv_conf: str) -> pb.DNSConfig | None:
    cfg = pod_dns(pod, cluster_dns, domain, resolv_conf)
    if not (cfg.servers or cfg.searches or cfg.options):
        return None  # the runtime copies the node's resolv.conf
    return pb.DNSConfig(servers=cfg.servers, searches=cfg.searches, options=cfg.options)


def sandbox_config(pod: dict, log_dir: Path, cgroup_root: str, cluster_dns: list[str] | None = None,
                   cluster_domain: str = "cluster.local", attempt: int = 0,
                   resolv_conf: str = "/etc/resolv.conf") -> pb.PodSandboxConfig:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    host_net = bool(spec.get("hostNetwork"))
    hostname = "" if host_net else (spec.get("hostname") or meta["name"])[:63].rstrip("-.")
    ports = []
    for c in spec.get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("hostPort"):
                ports.append(pb.PortMapping(protocol=pb.Protocol.Value(p.get("protocol") or "TCP"),
                                            container_port=p["containerPort"], host_port=p["hostPort"],
                                            host_ip=p.get("hostIP", "")))
    labels = {**(meta.get("labels") or {}), POD_NAME: meta["name"], POD_NAMESPACE: meta.get("namespace", ""),
              POD_UID: meta["uid"]}
    privileged = any(((c.get("securityContext") or {}).get("privileged"))
                     for c in (spec.get("containers") or []) + (spec.get("initContainers") or []))
    pid = pb.NODE if spec.get("hostPID") else (pb.POD if spec.get("shareProcessNamespace") else pb.CONTAINER)
    sec = pb.LinuxSandboxSecurityContext(
        namespace_options=pb.NamespaceOption(network=_ns(host_net), pid=pid, ipc=_ns(bool(spec.get("hostIPC")))),
        privileged=bool(privileged))
    psc = spec.get("securityContext") or {}
    if psc.get("runAsUser") is not None:
        sec.run_as_user.value = int(psc["runAsUser"])
    if psc.get("supplementalGroups"):
        sec.supplemental_groups.extend(int(g) for g in psc["supplementalGroups"])
    sysctls = {s["name"]: s.get("value", "") for s in psc.get("sysctls") or ()}
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=meta["name"], uid=meta["uid"], namespace=meta.get("namespace", ""),
                                       attempt=attempt),
        hostname=hostname, log_directory=str(log_dir), port_mappings=ports, labels=labels,
        annotations=meta.get("annotations") or {},
        linux=pb.LinuxPodSandboxConfig(cgroup_parent=f"{cgroup_root.rstrip('/')}/pod{meta['uid']}",
                                       security_context=sec, sysctls=sysctls))
    dns = _dns_config(pod, cluster_dns or [], cluster_domain, resolv_conf)
    if dns is not None:
        cfg.dns_config.CopyFrom(dns)
    return cfg


# --- containers ------------------------------------------------------------------------------------

def linux_resources(container: dict, qos: str) -> pb.LinuxContainerResources:
    res = container.get("resources") or {}
    req, lim = res.get("requests") or {}, res.get("limits") or {}
    out = pb.LinuxContainerResources()
    cpu_req = req.get("cpu", lim.get("cpu"))
    milli_req = int(parse_quantity(cpu_req) * 1000) if cpu_req is not None else 0
    out.cpu_shares = max(MIN_SHARES, milli_req * SHARES_PER_CPU // 1000) if milli_req else MIN_SHARES
    if "cpu" in lim:
        milli = int(parse_quantity(lim["cpu"]) * 1000)
        out.cpu_period, out.cpu_quota = CPU_PERIOD, max(1000, milli * CPU_PERIOD // 1000)
    if "memory" in lim:
        out.memory_limit_in_bytes = int(parse_quantity(lim["memory"]))
    # upstream's qos/policy.go oom_score_adj
    if qos == "Guaranteed":
        out.oom_score_adj = -997
    elif qos == "BestEffort":
        out.oom_score_adj = 1000
    else:
        mem_req = int(parse_quantity(req["memory"])) if "memory" in req else 0
        capacity = _mem_total()
        score = 1000 - (1000 * mem_req) // capacity if capacity else 1000
        out.oom_score_adj = min(999, max(2, score))
    return out


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _security(pod: dict, container: dict, sandbox: pb.PodSandboxConfig) -> pb.LinuxContainerSecurityContext:
    psc, sc = (pod.get("spec") or {}).get("securityContext") or {}, container.get("securityContext") or {}
    ns = sandbox.linux.security_context.namespace_options
    out = pb.LinuxContainerSecurityContext(privileged=bool(sc.get("privileged")),
                                           readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")),
                                           namespace_options=pb.NamespaceOption(network=ns.network, pid=ns.pid,
                                                                                ipc=ns.ipc))
    user = sc.get("runAsUser", psc.get("runAsUser"))
    group = sc.get("runAsGroup", psc.get("runAsGroup"))
    if user is not None:
        out.run_as_user.value = int(user)
    if group is not None:
        out.run_as_group.value = int(group)
    caps = sc.get("capabilities") or {}
    if caps:
        out.capabilities.CopyFrom(pb.Capability(add_capabilities=caps.get("add") or [],
                                                drop_capabilities=caps.get("drop") or []))
    if sc.get("allowPrivilegeEscalation") is False:
        out.no_new_privs = True
    groups = psc.get("supplementalGroups") or []
    out.supplemental_groups.extend(int(g) for g in groups)
    return out


def container_config(pod: dict, container: dict, attempt: int, sandbox: pb.PodSandboxConfig, image: str,
                     mounts: list[pb.Mount], env: list[tuple[str, str]]) -> pb.ContainerConfig:
    """`env`: the resolved environment (`kubelet.envvars.container_env`)."""
    meta = pod["metadata"]
    env_map = dict(env)
    labels = {POD_NAME: meta["name"], POD_NAMESPACE: meta.get("namespace", ""), POD_UID: meta["uid"],
              CONTAINER_NAME: container["name"]}
    grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    annotations = {RESTART_COUNT: str(attempt), TERMINATION_GRACE: str(grace)}
    qos = (pod.get("status") or {}).get("qosClass") or "BestEffort"
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=container["name"], attempt=attempt),
        image=pb.ImageSpec(image=image, user_specified_image=container.get("image", "")),
        command=[expand(a, env_map) for a in container.get("command") or ()],
        args=[expand(a, env_map) for a in container.get("args") or ()],
        working_dir=container.get("workingDir", ""),
        envs=[pb.KeyValue(key=k, value=v) for k, v in env],
        mounts=mounts, labels=labels, annotations=annotations,
        log_path=container_log_path(container["name"], attempt),
        stdin=bool(container.get("stdin")), stdin_once=bool(container.get("stdinOnce")),
        tty=bool(container.get("tty")),
        linux=pb.LinuxContainerConfig(resources=linux_resources(container, qos),
                                      security_context=_security(pod, container, sandbox)))
