"""The agent's own containerd: its configuration, its CNI network, its images, its process.

Everything lives under DATA_DIR/agent (k3s's layout, shortened):

    agent/containerd/config.toml   root/ state/ containerd.sock containerd.log
                   state/ is a tmpfs (as /run/containerd is): task bundles, fifos, runc's state
    agent/cni/net.d/10-kyb.conflist   agent/cni/ipam/   (host-local allocations)
    agent/images/*.tar             archives imported into the k8s.io namespace at start

`Containerd.run(stop)` starts containerd and restarts it (with backoff) whenever it exits
until `stop`; pods keep running across restarts because their shims are separate processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import os
import shutil
from pathlib import Path

from .mounts import fstype, mount_tmpfs, unmount

log = logging.getLogger("kybernetes.kubelet.containerd")

PAUSE_IMAGE = "docker.io/kybernetes/pause:3.10"
CNI_BIN_DIR = "/usr/lib/cni"
BRIDGE = "kyb0"
NETWORK_NAME = "kyb"
K8S_NAMESPACE = "k8s.io"


class Layout:
    """Paths of one agent's runtime pieces under its data dir."""

    def __init__(self, data_dir: Path):
        self.agent = Path(data_dir) / "agent"
        self.containerd = self.agent / "containerd"
        self.config = self.containerd / "config.toml"
        self.root = self.containerd / "root"
        self.state = self.containerd / "state"
        self.runc_root = self.state / "runc"
        self.log = self.containerd / "containerd.log"
        self.cni_conf_dir = self.agent / "cni" / "net.d"
        self.cni_ipam_dir = self.agent / "cni" / "ipam"
        self.images = self.agent / "images"
        self.pod_logs = self.agent / "pod-logs"
        self.volumes = self.agent / "pods"
        sock = self.containerd / "containerd.sock"
        if len(str(sock)) > 100:  # unix socket paths are limited to 108 bytes
            digest = hashlib.sha256(str(self.agent).encode()).hexdigest()[:12]
            sock = Path("/run/kybernetes") / digest / "containerd.sock"
        self.socket = sock


def _toml_str(value: str) -> str:
    return json.dumps(str(value))  # a TOML basic string is JSON-compatible for our paths


def containerd_config(layout: Layout, sandbox_image: str = PAUSE_IMAGE) -> str:
    cri = '[plugins."io.containerd.grpc.v1.cri"]'
    return "\n".join([
        "# written by kybernetes; rewritten at every agent start",
        "version = 2",
        f"root = {_toml_str(layout.root)}",
        f"state = {_toml_str(layout.state)}",
        "",
        "[grpc]",
        f"  address = {_toml_str(layout.socket)}",
        "",
        '[plugins."io.containerd.internal.v1.opt"]',
        f"  path = {_toml_str(layout.containerd / 'opt')}",
        "",
        cri,
        f"  sandbox_image = {_toml_str(sandbox_image)}",
        '  stream_server_address = "127.0.0.1"',
        '  stream_server_port = "0"',
        "  enable_cdi = false",
        "  disable_apparmor = true",
        "  tolerate_missing_hugetlb_controller = true",
        "  disable_hugetlb_controller = true",
        "  restrict_oom_score_adj = true  # never below containerd's own score (some hosts refuse negative ones)",
        f"{cri[:-1]}.containerd]",
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        f"{cri[:-1]}.containerd.runtimes.runc]",
        '  runtime_type = "io.containerd.runc.v2"',
        f"{cri[:-1]}.containerd.runtimes.runc.options]",
        "  SystemdCgroup = false",
        f"  Root = {_toml_str(layout.runc_root)}",
        f"{cri[:-1]}.cni]",
        f"  bin_dir = {_toml_str(CNI_BIN_DIR)}",
        f"  conf_dir = {_toml_str(layout.cni_conf_dir)}",
        "  max_conf_num = 1",
        "",
    ])


def cni_conflist(pod_cidr: str, ipam_dir: Path) -> dict:
    """bridge kyb0 (gateway .1) + host-local on the node's pod CIDR + portmap (hostPorts).

    No `ipMasq` in the bridge: with it the plugin runs iptables about nine times for every
    sandbox (a chain per pod, under the xtables lock); like flannel and k3s, the agent
    installs one masquerade rule for the whole cluster network instead (`ensure_masquerade`).
    No `loopback` plugin either: containerd's CRI brings up `lo` of every sandbox itself.
    """
    net = ipaddress.ip_network(pod_cidr, strict=False)
    gateway = str(next(net.hosts()))
    return {
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(ipam_dir),
                      "ranges": [[{"subnet": str(net), "gateway": gateway}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def _drop_stale_bridge(gateway: str) -> None:
    """A kyb0 left with another node's gateway address makes the bridge plugin fail: delete it."""
    import subprocess

    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE], capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.strip() and f" {gateway}/" not in out.stdout:
        log.info("deleting bridge %s with a stale address", BRIDGE)
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)


def write_cni_config(layout: Layout, pod_cidr: str) -> Path:
    _drop_stale_bridge(str(next(ipaddress.ip_network(pod_cidr, strict=False).hosts())))
    layout.cni_conf_dir.mkdir(parents=True, exist_ok=True)
    layout.cni_ipam_dir.mkdir(parents=True, exist_ok=True)
    path = layout.cni_conf_dir / "10-kyb.conflist"
    text = json.dumps(cni_conflist(pod_cidr, layout.cni_ipam_dir), indent=2)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)  # containerd watches conf_dir and loads the new network
    return path


async def _run(*argv: str, timeout: float = 120.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, f"{argv[0]} timed out after {timeout:.0f}s"
    return proc.returncode or 0, out.decode(errors="replace")


async def import_images(socket: Path, images_dir: Path) -> list[str]:
    """`ctr -n k8s.io images import` every *.tar archive of the images directory; returns the imported files."""
    done = []
    if not images_dir.is_dir():
        return done
    for archive in sorted(images_dir.iterdir()):
        if not archive.is_file() or not archive.name.endswith((".tar", ".tar.gz", ".tgz")):
            continue
        code, out = await _run("ctr", "--address", str(socket), "-n", K8S_NAMESPACE, "images", "import",
                               "--platform", "linux/amd64", str(archive))
        if code != 0:
            log.warning("importing %s failed: %s", archive, out.strip())
        else:
            done.append(archive.name)
            log.info("imported %s", archive.name)
    return done


async def route_to_loopback(cidrs: list[str]) -> None:
    """Network safety (DESIGN.md): packets to cluster ranges nobody handles end on `lo`, never on the default route."""
    for cidr in cidrs:
        code, out = await _run("ip", "route", "replace", cidr, "dev", "lo")
        if code != 0:
            log.warning("routing %s to lo failed: %s", cidr, out.strip())


MASQ_CHAIN = "KYB-POSTROUTING"
MULTICAST = "224.0.0.0/4"


def masquerade_rules(cluster_cidr: str) -> str:
    """`iptables-restore --noflush` input: pods' traffic leaving the cluster network goes out with the node's address.

    Pod to pod (on any node) keeps its addresses, as the Kubernetes network model asks;
    multicast is left alone, as the bridge plugin's own masquerade did.
    """
    return "\n".join([
        "*nat",
        f":{MASQ_CHAIN} - [0:0]",  # declared chains are flushed: the rules below replace any earlier ones
        f'-A {MASQ_CHAIN} -d {cluster_cidr} -m comment --comment "kybernetes: pod to pod" -j RETURN',
        f'-A {MASQ_CHAIN} -d {MULTICAST} -m comment --comment "kybernetes: multicast" -j RETURN',
        f'-A {MASQ_CHAIN} -s {cluster_cidr} -m comment --comment "kybernetes: pods leaving the cluster network" '
        "-j MASQUERADE",
        "COMMIT",
        "",
    ])


MASQ_JUMP = ["-m", "comment", "--comment", "kybernetes pod masquerade", "-j", MASQ_CHAIN]


async def ensure_masquerade(cluster_cidr: str) -> bool:
    """Install (or rewrite) KYB-POSTROUTING and the jump to it from nat POSTROUTING; once, at agent start."""
    proc = await asyncio.create_subprocess_exec("iptables-restore", "--noflush", stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate(masquerade_rules(cluster_cidr).encode())
    if proc.returncode != 0:
        log.warning("installing the pod masquerade rules failed: %s", out.decode(errors="replace").strip())
        return False
    code, _ = await _run("iptables", "-w", "-t", "nat", "-C", "POSTROUTING", *MASQ_JUMP)
    if code != 0:
        code, text = await _run("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", *MASQ_JUMP)
        if code != 0:
            log.warning("adding the jump to %s failed: %s", MASQ_CHAIN, text.strip())
            return False
    return True


def _task_bundles(state: Path) -> list[Path]:
    """The shims' bundle directories: one per container or sandbox whose task containerd still tracks."""
    tasks = state / "io.containerd.runtime.v2.task"
    try:
        return [b for ns in tasks.iterdir() if ns.is_dir() for b in ns.iterdir()]
    except OSError:
        return []


def state_on_tmpfs(layout: Layout) -> bool:
    """Keep containerd's state (and runc's) on a tmpfs, as upstream's /run/containerd and k3s's /run/k3s are.

    It is volatile by nature, and on a disk every sandbox and container creates and deletes
    some thirty inodes there (bundles, fifos, runc's state, the sandbox's files); an ext4
    without a journal scans its recently deleted inodes on each new one, so a node's churn
    slowed every later start. A state directory on disk that still holds task bundles (an
    older agent's running pods) is left where it is, so that containerd finds their shims.
    """
    if fstype(layout.state) == "tmpfs":
        return True
    if _task_bundles(layout.state):
        log.info("containerd state %s stays on disk: it holds running tasks", layout.state)
        return False
    try:
        return mount_tmpfs(layout.state, mode="0711")
    except OSError as e:
        log.warning("containerd state stays on disk: %s", e)
        return False


def release_state(layout: Layout) -> None:
    """Unmount the state tmpfs once containerd has stopped, unless pods still run on it (their shims need it)."""
    if fstype(layout.state) == "tmpfs" and not _task_bundles(layout.state):
        try:
            unmount(str(layout.state))
        except OSError as e:
            log.warning("%s", e)


def containerd_available() -> bool:
    return shutil.which("containerd") is not None and shutil.which("runc") is not None


class Containerd:
    """Our containerd process: config written, started, restarted when it dies, stopped on `stop`."""

    def __init__(self, layout: Layout, sandbox_image: str = PAUSE_IMAGE):
        self.layout = layout
        self.sandbox_image = sandbox_image
        self.proc: asyncio.subprocess.Process | None = None
        self.started = asyncio.Event()
        self.restarts = 0

    def prepare(self) -> None:
        lay = self.layout
        for d in (lay.containerd, lay.root, lay.state, lay.images, lay.pod_logs, lay.volumes, lay.socket.parent):
            d.mkdir(parents=True, exist_ok=True)
        lay.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        state_on_tmpfs(lay)
        lay.config.write_text(containerd_config(lay, self.sandbox_image))

    async def _stop_leftover(self) -> None:
        """A containerd of an agent that was killed still runs on our root: stop it (its containers live on)."""
        pidfile = self.layout.containerd / "containerd.pid"
        try:
            pid = int(pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return
        if "containerd" not in cmdline or str(self.layout.config) not in cmdline:
            return
        log.info("stopping containerd %d left by an earlier agent", pid)
        os.kill(pid, 15)
        for _ in range(200):
            if not Path(f"/proc/{pid}").exists():
                return
            await asyncio.sleep(0.05)
        os.kill(pid, 9)

    async def _start(self) -> None:
        await self._stop_leftover()
        if self.layout.socket.exists():
            self.layout.socket.unlink()
        logf = open(self.layout.log, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = await asyncio.create_subprocess_exec(
                "containerd", "--config", str(self.layout.config), stdin=asyncio.subprocess.DEVNULL,
                stdout=logf, stderr=logf, start_new_session=True)
        finally:
            logf.close()
        log.info("containerd started (pid %d, socket %s)", self.proc.pid, self.layout.socket)
        (self.layout.containerd / "containerd.pid").write_text(str(self.proc.pid))
        for _ in range(300):
            if self.layout.socket.exists() or self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)

    async def run(self, stop: asyncio.Event) -> None:
        self.prepare()
        backoff = 1.0
        while not stop.is_set():
            await self._start()
            self.started.set()
            waiter = asyncio.ensure_future(self.proc.wait())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                await self._terminate(waiter)
                release_state(self.layout)
                return
            stopper.cancel()
            self.restarts += 1
            log.warning("containerd exited with code %s; restarting in %.0fs (see %s)", self.proc.returncode,
                        backoff, self.layout.log)
            try:
                await asyncio.wait_for(stop.wait(), backoff)
            except TimeoutError:
                pass
            backoff = min(backoff * 2, 30.0)

    async def _terminate(self, waiter) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(waiter), 10)
        except TimeoutError:
            os.kill(self.proc.pid, 9)
            await waiter
