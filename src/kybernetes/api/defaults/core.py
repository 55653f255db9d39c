"""Pod spec defaults, shared by pods and every kind with a pod template."""

from __future__ import annotations

import copy


def _image_pull_policy(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.split(":", 1)[1] if ":" in name else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _probe(probe: dict | None) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("scheme", "HTTP")
        probe["httpGet"].setdefault("path", "/")


def _container(c: dict) -> None:
    if not isinstance(c, dict):
        return
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    if isinstance(c.get("image"), str):
        c.setdefault("imagePullPolicy", _image_pull_policy(c["image"]))
    c.setdefault("resources", {})
    res = c["resources"]
    if isinstance(res, dict) and res.get("limits"):
        requests = res.setdefault("requests", {})
        for name, value in res["limits"].items():
            requests.setdefault(name, copy.deepcopy(value))
    for p in c.get("ports") or ():
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")
    for e in c.get("env") or ():
        ref = (e.get("valueFrom") or {}).get("fieldRef") if isinstance(e, dict) else None
        if isinstance(ref, dict):
            ref.setdefault("apiVersion", "v1")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(probe))


def _volume(v: dict) -> None:
    if not isinstance(v, dict):
        return
    for source in ("secret", "configMap"):
        if isinstance(v.get(source), dict):
            v[source].setdefault("defaultMode", 0o644)
    if isinstance(v.get("projected"), dict):
        v["projected"].setdefault("defaultMode", 0o644)
    if isinstance(v.get("downwardAPI"), dict):
        v["downwardAPI"].setdefault("defaultMode", 0o644)
    if isinstance(v.get("hostPath"), dict):
        v["hostPath"].setdefault("type", "")
    if not any(k for k in v if k != "name"):
        v["emptyDir"] = {}


def default_pod_spec(spec: dict) -> None:
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(field) or ():
            _container(c)
            if spec.get("hostNetwork") and isinstance(c, dict):
                for p in c.get("ports") or ():
                    if isinstance(p, dict) and not p.get("hostPort"):
                        p["hostPort"] = p.get("containerPort")
    for v in spec.get("volumes") or ():
        _volume(v)
    if spec.get("serviceAccount") and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec["serviceAccount"]


def default_pod_template(template: dict | None) -> None:
    if isinstance(template, dict):
        template.setdefault("metadata", {})
        template["metadata"].setdefault("creationTimestamp", None)
        default_pod_spec(template.get("spec"))
