"""Handlers (exec, httpGet, tcpSocket, sleep) shared by probes and lifecycle hooks, and killContainer.

Upstream: pkg/kubelet/prober/prober.go (runProbe), pkg/kubelet/lifecycle/handlers.go and
kuberuntime_container.go killContainer: run the preStop hook within the grace period,
then StopContainer with what is left of it (at least 2 s), which sends SIGTERM and,
when the time is up, SIGKILL.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

log = logging.getLogger("kybernetes.kubelet.lifecycle")

MIN_GRACE = 2.0  # upstream minimumGracePeriodInSeconds
USER_AGENT = "kube-probe/1.32"
MAX_OUTPUT = 10 * 1024


def _port(container: dict, port) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or ():
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"port {port!r} is not a named port of container {container.get('name')}")


async def _exec(runtime, container_id: str, cmd: list[str], timeout: float) -> tuple[bool, str]:
    cri = getattr(runtime, "cri", None)
    if cri is None:
        return True, ""  # simulated runtimes have nothing to run in
    resp = await cri.exec_sync(container_id, list(cmd), int(max(1, timeout)))
    out = (resp.stdout + resp.stderr)[:MAX_OUTPUT].decode(errors="replace")
    if resp.exit_code != 0:
        return False, out or f"command {cmd!r} exited with {resp.exit_code}"
    return True, out


async def _http(action: dict, container: dict, pod_ip: str, timeout: float) -> tuple[bool, str]:
    host = action.get("host") or pod_ip
    port = _port(container, action.get("port"))
    path = action.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    scheme = (action.get("scheme") or "HTTP").upper()
    ctx = None
    if scheme == "HTTPS":
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # upstream skips verification too
    headers = {"Host": f"{host}:{port}", "User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
    for h in action.get("httpHeaders") or ():
        headers[h.get("name", "")] = h.get("value", "")
    request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"

    async def go() -> tuple[bool, str]:
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
        try:
            writer.write(request.encode())
            await writer.drain()
            line = await reader.readline()
            parts = line.decode(errors="replace").split(" ", 2)
            code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            body = (await reader.read(MAX_OUTPUT)).decode(errors="replace")
        finally:
            writer.close()
        if 200 <= code < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {code}" if code else f"malformed HTTP response: {body[:80]}"

    return await asyncio.wait_for(go(), timeout)


async def _tcp(action: dict, container: dict, pod_ip: str, timeout: float) -> tuple[bool, str]:
    host = action.get("host") or pod_ip
    port = _port(container, action.get("port"))
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    writer.close()
    return True, ""


async def run_handler(runtime, container: dict, container_id: str, pod_ip: str, handler: dict,
                      timeout: float) -> tuple[bool, str]:
    """Run one probe or hook handler; (success, message). Errors and timeouts are failures.

    A simulated runtime (no CRI) has no containers to exec in nor pod addresses to connect to:
    every handler succeeds at once (and no packet goes to a pod address that does not exist)."""
    if getattr(runtime, "cri", None) is None:
        return True, ""
    try:
        if handler.get("exec") is not None:
            return await asyncio.wait_for(_exec(runtime, container_id, (handler["exec"].get("command") or []),
                                                timeout), timeout + 5)
        if handler.get("httpGet") is not None:
            return await _http(handler["httpGet"], container, pod_ip, timeout)
        if handler.get("tcpSocket") is not None:
            return await _tcp(handler["tcpSocket"], container, pod_ip, timeout)
        if handler.get("sleep") is not None:
            await asyncio.sleep(min(float(handler["sleep"].get("seconds") or 0), timeout))
            return True, ""
        if handler.get("grpc") is not None:
            return await _tcp({"port": handler["grpc"].get("port")}, container, pod_ip, timeout)
    except TimeoutError:
        return False, f"timeout: failed to complete within {timeout:g}s"
    except (OSError, ValueError, asyncio.IncompleteReadError) as e:
        return False, str(e) or type(e).__name__
    except Exception as e:  # noqa: BLE001 - a CRI error (the container is gone, exec refused) is a failure
        return False, str(e)
    return False, "missing probe handler"


def pod_grace(pod: dict) -> float:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    grace = meta.get("deletionGracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    return float(grace)


class Killer:
    """Kills containers in the background (preStop, then StopContainer), once per container id."""

    def __init__(self, recorder=None):
        self.recorder = recorder
        self.killing: dict[str, asyncio.Task] = {}

    def event(self, pod: dict, type_: str, reason: str, message: str, container: str = "") -> None:
        """An Event about the pod, or about one of its containers (involvedObject.fieldPath)."""
        if self.recorder is None:
            log.info("%s %s: %s", type_, reason, message)
            return
        ref = {**pod, "kind": "Pod", "apiVersion": "v1"}
        self.recorder.event(ref, type_, reason, message, field_path=container_field_path(pod, container))

    def kill(self, node, pod: dict, container: dict, cur, grace: float, message: str = "",
             run_pre_stop: bool = True) -> None:
        if cur.id in self.killing:
            return
        msg = message or f"Stopping container {container['name']}"
        self.event(pod, "Normal", "Killing", msg, container["name"])
        task = asyncio.get_running_loop().create_task(
            self._kill(node, pod, container, cur, grace, run_pre_stop))
        self.killing[cur.id] = task
        task.add_done_callback(lambda _t, cid=cur.id: self.killing.pop(cid, None))

    async def _kill(self, node, pod: dict, container: dict, cur, grace: float, run_pre_stop: bool) -> None:
        start = time.monotonic()
        hook = ((container.get("lifecycle") or {}).get("preStop")) if run_pre_stop else None
        if hook and grace > 0:
            ok, out = await run_handler(node.runtime, container, cur.id, _pod_ip(node, cur), hook, grace)
            if not ok:
                self.event(pod, "Warning", "FailedPreStopHook",
                           f"PreStopHook failed: {out}".strip(), container["name"])
        remaining = max(MIN_GRACE if grace > 0 else 0.0, grace - (time.monotonic() - start))
        try:
            await node.runtime.stop_container(cur.id, remaining)
        except Exception as e:  # noqa: BLE001 - the relist reports what became of it
            log.warning("stopping container %s failed: %s", cur.id[:12], e)


def container_field_path(pod: dict, name: str) -> str:
    """`spec.containers{name}` (or initContainers), as upstream's container references; "" for the pod."""
    if not name:
        return ""
    for field in ("containers", "initContainers", "ephemeralContainers"):
        if any(c.get("name") == name for c in (pod.get("spec") or {}).get(field) or ()):
            return f"spec.{field}{{{name}}}"
    return ""


def _pod_ip(node, cur) -> str:
    for sb in node.runtime.list_pod_sandboxes():
        if sb.id == cur.sandbox_id:
            return sb.ip
    return ""


async def post_start(node, pod: dict, container: dict, cur, killer: Killer, timeout: float = 120.0) -> bool:
    """Run the postStart hook of a just-started container; on failure kill it (FailedPostStartHook)."""
    hook = (container.get("lifecycle") or {}).get("postStart")
    if not hook:
        return True
    ok, out = await run_handler(node.runtime, container, cur.id, _pod_ip(node, cur), hook, timeout)
    if ok:
        return True
    killer.event(pod, "Warning", "FailedPostStartHook", f"PostStartHook failed: {out}".strip(), container["name"])
    killer.kill(node, pod, container, cur, pod_grace(pod),
                "FailedPostStartHook")  # upstream's killContainer message; preStop runs as on any kill
    return False
