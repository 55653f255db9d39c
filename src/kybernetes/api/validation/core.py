"""Validation of core/v1 kinds: pods and pod templates, services, config maps, secrets."""

from __future__ import annotations

import re

from ..errors import FieldError, duplicate, forbidden, invalid, not_found, not_supported, required
from ..quantity import parse_quantity
from . import CREATE, UPDATE
from .meta import is_dns1123_label, is_dns1123_subdomain, validate_labels

PROTOCOLS = ("SCTP", "TCP", "UDP")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
ENV_NAME = re.compile(r"[\x20-\x3c\x3e-\x7e]+")
VOLUME_SOURCES = ("hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
                  "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
                  "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
                  "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
                  "image")


def _port(path: str, value) -> list[FieldError]:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return [invalid(path, value, "must be between 1 and 65535, inclusive")]
    return []


def _resources(res: dict | None, path: str) -> list[FieldError]:
    errs = []
    res = res or {}
    parsed = {}
    for section in ("limits", "requests"):
        for name, value in (res.get(section) or {}).items():
            try:
                parsed[(section, name)] = parse_quantity(value)
            except ValueError:
                errs.append(invalid(f"{path}.{section}[{name}]", value,
                                    "quantities must match the regular expression "
                                    "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
                continue
            if parsed[(section, name)] < 0:
                errs.append(invalid(f"{path}.{section}[{name}]", value, "must be greater than or equal to 0"))
    for (section, name), req in parsed.items():
        if section == "requests" and ("limits", name) in parsed and req > parsed[("limits", name)]:
            errs.append(invalid(f"{path}.requests", str(value_of(res, name)),
                                f"must be less than or equal to {name} limit of {res['limits'][name]}"))
    return errs


def value_of(res: dict, name: str):
    return (res.get("requests") or {}).get(name)


def _container(c, path: str, volumes: set[str]) -> list[FieldError]:
    if not isinstance(c, dict):
        return [invalid(path, c, "must be an object")]
    errs = []
    name = c.get("name")
    if not name:
        errs.append(required(f"{path}.name", ""))
    else:
        errs += [invalid(f"{path}.name", name, m) for m in is_dns1123_label(str(name))]
    if not c.get("image"):
        errs.append(required(f"{path}.image", ""))
    if c.get("imagePullPolicy") and c["imagePullPolicy"] not in PULL_POLICIES:
        errs.append(not_supported(f"{path}.imagePullPolicy", c["imagePullPolicy"], PULL_POLICIES))
    seen_ports = set()
    for i, p in enumerate(c.get("ports") or ()):
        pp = f"{path}.ports[{i}]"
        errs += _port(f"{pp}.containerPort", p.get("containerPort"))
        if p.get("hostPort") is not None and p["hostPort"] != 0:
            errs += _port(f"{pp}.hostPort", p["hostPort"])
        proto = p.get("protocol", "TCP")
        if proto not in PROTOCOLS:
            errs.append(not_supported(f"{pp}.protocol", proto, PROTOCOLS))
        if p.get("name"):
            if p["name"] in seen_ports:
                errs.append(duplicate(f"{pp}.name", p["name"]))
            seen_ports.add(p["name"])
    env_names = set()
    for i, e in enumerate(c.get("env") or ()):
        if not isinstance(e, dict):
            errs.append(invalid(f"{path}.env[{i}]", e, "must be an object"))
            continue
        if not e.get("name"):
            errs.append(required(f"{path}.env[{i}].name", ""))
        elif not ENV_NAME.fullmatch(str(e["name"])):
            errs.append(invalid(f"{path}.env[{i}].name", e["name"], "a valid environment variable name must "
                                "consist only of printable ASCII characters other than '='"))
        if e.get("value") is not None and e.get("valueFrom") is not None:
            errs.append(invalid(f"{path}.env[{i}].valueFrom", "", "may not be specified when `value` is not empty"))
        env_names.add(e.get("name"))
    mounts = set()
    for i, m in enumerate(c.get("volumeMounts") or ()):
        mp = f"{path}.volumeMounts[{i}]"
        if not m.get("name"):
            errs.append(required(f"{mp}.name", ""))
        elif m["name"] not in volumes:
            errs.append(not_found(f"{mp}.name", m["name"]))
        if not m.get("mountPath"):
            errs.append(required(f"{mp}.mountPath", ""))
        elif m["mountPath"] in mounts:
            errs.append(invalid(f"{mp}.mountPath", m["mountPath"], "must be unique"))
        mounts.add(m.get("mountPath"))
    errs += _resources(c.get("resources"), f"{path}.resources")
    return errs


def validate_pod_spec(spec, path: str) -> list[FieldError]:
    if not isinstance(spec, dict):
        return [required(path, "")]
    errs = []
    volumes: set[str] = set()
    for i, v in enumerate(spec.get("volumes") or ()):
        vp = f"{path}.volumes[{i}]"
        name = v.get("name")
        if not name:
            errs.append(required(f"{vp}.name", ""))
        elif name in volumes:
            errs.append(duplicate(f"{vp}.name", name))
        else:
            errs += [invalid(f"{vp}.name", name, m) for m in is_dns1123_label(name)]
        volumes.add(name)
        sources = [s for s in VOLUME_SOURCES if v.get(s) is not None]
        if not sources:
            errs.append(required(vp, "must specify a volume type"))
        elif len(sources) > 1:
            errs.append(forbidden(f"{vp}.{sources[1]}", "may not specify more than 1 volume type"))
    containers = spec.get("containers")
    if not containers:
        errs.append(required(f"{path}.containers", ""))
    names: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(field) or ()):
            errs += _container(c, f"{path}.{field}[{i}]", volumes)
            if isinstance(c, dict) and c.get("name"):
                if c["name"] in names:
                    errs.append(duplicate(f"{path}.{field}[{i}].name", c["name"]))
                names.add(c["name"])
    if spec.get("restartPolicy") and spec["restartPolicy"] not in RESTART_POLICIES:
        errs.append(not_supported(f"{path}.restartPolicy", spec["restartPolicy"], RESTART_POLICIES))
    if spec.get("dnsPolicy") and spec["dnsPolicy"] not in DNS_POLICIES:
        errs.append(not_supported(f"{path}.dnsPolicy", spec["dnsPolicy"], DNS_POLICIES))
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool) or grace < 0):
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than or equal to 0"))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or isinstance(deadline, bool)
                                 or not 1 <= deadline <= 2147483647):
        errs.append(invalid(f"{path}.activeDeadlineSeconds", deadline, "must be between 1 and 2147483647, inclusive"))
    errs += validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    if spec.get("hostname"):
        errs += [invalid(f"{path}.hostname", spec["hostname"], m) for m in is_dns1123_label(spec["hostname"])]
    return errs


def validate_pod_template(template, path: str) -> list[FieldError]:
    if not isinstance(template, dict):
        return [required(path, "")]
    errs = validate_labels((template.get("metadata") or {}).get("labels"), f"{path}.metadata.labels")
    return errs + validate_pod_spec(template.get("spec"), f"{path}.spec")


def validate_pod(obj: dict) -> list[FieldError]:
    return validate_pod_spec(obj.get("spec"), "spec")


MUTABLE_POD_FIELDS = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates")


def validate_pod_update(new: dict, old: dict) -> list[FieldError]:
    errs = validate_pod(new)
    a, b = dict(new.get("spec") or {}), dict(old.get("spec") or {})
    for spec in (a, b):
        for f in MUTABLE_POD_FIELDS:
            spec.pop(f, None)
        for field in ("containers", "initContainers"):
            spec[field] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get(field) or ()]
    old_tolerations = (old.get("spec") or {}).get("tolerations") or []
    new_tolerations = (new.get("spec") or {}).get("tolerations") or []
    if any(t not in new_tolerations for t in old_tolerations):
        a["tolerations"], b["tolerations"] = new_tolerations, old_tolerations
    if a != b:
        errs.append(forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,"
                                      "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                                      "`spec.tolerations` (only additions to existing tolerations),"
                                      "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                                      "previously negative)"))
    return errs


def validate_service(obj: dict) -> list[FieldError]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec", "")]
    errs = []
    stype = spec.get("type", "ClusterIP")
    if stype not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", stype, SERVICE_TYPES))
    ports = spec.get("ports") or []
    if stype == "ExternalName":
        if not spec.get("externalName"):
            errs.append(required("spec.externalName", ""))
    elif not ports and spec.get("clusterIP") != "None":
        errs.append(required("spec.ports", ""))
    names = set()
    for i, p in enumerate(ports):
        pp = f"spec.ports[{i}]"
        if len(ports) > 1 and not p.get("name"):
            errs.append(required(f"{pp}.name", ""))
        if p.get("name"):
            if p["name"] in names:
                errs.append(duplicate(f"{pp}.name", p["name"]))
            names.add(p["name"])
            errs += [invalid(f"{pp}.name", p["name"], m) for m in is_dns1123_label(p["name"])]
        errs += _port(f"{pp}.port", p.get("port"))
        proto = p.get("protocol", "TCP")
        if proto not in PROTOCOLS:
            errs.append(not_supported(f"{pp}.protocol", proto, PROTOCOLS))
        tp = p.get("targetPort")
        if isinstance(tp, int) and tp != 0:
            errs += _port(f"{pp}.targetPort", tp)
        if p.get("nodePort") and stype not in ("NodePort", "LoadBalancer"):
            errs.append(forbidden(f"{pp}.nodePort", "may not be used when `type` is 'ClusterIP'"))
    errs += validate_labels(spec.get("selector"), "spec.selector")
    affinity = spec.get("sessionAffinity")
    if affinity and affinity not in ("ClientIP", "None"):
        errs.append(not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    ranges = spec.get("loadBalancerSourceRanges") or []
    if ranges:
        if stype != "LoadBalancer":  # upstream's field path, capital L and all
            errs.append(forbidden("spec.LoadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'"))
        for i, value in enumerate(ranges):
            if not _is_cidr(str(value).strip()):  # space padding is allowed, as upstream allows it
                errs.append(invalid(f"spec.LoadBalancerSourceRanges[{i}]", value,
                                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    hc = spec.get("healthCheckNodePort")
    if hc and not (stype == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"):
        errs.append(invalid("spec.healthCheckNodePort", hc,
                            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
    return errs


def _is_cidr(value: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def validate_service_update(new: dict, old: dict) -> list[FieldError]:
    errs = validate_service(new)
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if "ExternalName" in (old_spec.get("type"), new_spec.get("type")):
        return errs
    old_ips = old_spec.get("clusterIPs") or ([old_spec["clusterIP"]] if old_spec.get("clusterIP") else [])
    new_ips = new_spec.get("clusterIPs") or ([new_spec["clusterIP"]] if new_spec.get("clusterIP") else [])
    for i, ip in enumerate(old_ips):
        if i < len(new_ips) and new_ips[i] != ip:
            errs.append(invalid(f"spec.clusterIPs[{i}]", new_ips, "may not change once set"))
    if old_spec.get("clusterIP") and new_spec.get("clusterIP") and new_spec["clusterIP"] != old_spec["clusterIP"]:
        errs.append(invalid("spec.clusterIP", new_spec["clusterIP"], "field is immutable"))
    return errs


def _data_keys(obj: dict, fields: tuple[str, ...]) -> list[FieldError]:
    errs = []
    total = 0
    seen = set()
    for field in fields:
        data = obj.get(field) or {}
        if not isinstance(data, dict):
            errs.append(invalid(field, data, "must be a map"))
            continue
        for k, v in data.items():
            if not CONFIG_KEY.fullmatch(k) or len(k) > 253:
                errs.append(invalid(f"{field}[{k}]", k, "a valid config key must consist of alphanumeric "
                                    "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', "
                                    "regex used for validation is '[-._a-zA-Z0-9]+')"))
            if k in seen:
                errs.append(invalid(f"{field}[{k}]", k, "duplicate of key present in another data field"))
            seen.add(k)
            total += len(v or "") if isinstance(v, str) else 0
    if total > 1024 * 1024:
        errs.append(FieldError("too_long", "data", "must have at most 1048576 bytes"))
    return errs


def validate_config_map(obj: dict) -> list[FieldError]:
    return _data_keys(obj, ("data", "binaryData"))


def validate_secret(obj: dict) -> list[FieldError]:
    return _data_keys(obj, ("data", "stringData"))


def _immutable_data(new: dict, old: dict, fields: tuple[str, ...]) -> list[FieldError]:
    errs = []
    if old.get("immutable"):
        for field in fields:
            if new.get(field) != old.get(field):
                errs.append(forbidden(field, "field is immutable when `immutable` is set"))
        if not new.get("immutable"):
            errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
    return errs


def validate_config_map_update(new: dict, old: dict) -> list[FieldError]:
    return validate_config_map(new) + _immutable_data(new, old, ("data", "binaryData"))


def validate_secret_update(new: dict, old: dict) -> list[FieldError]:
    errs = validate_secret(new) + _immutable_data(new, old, ("data",))
    if new.get("type") != old.get("type"):
        errs.append(invalid("type", new.get("type"), "field is immutable"))
    return errs


def validate_namespace(obj: dict) -> list[FieldError]:
    return []


def validate_pod_template_kind(obj: dict) -> list[FieldError]:
    return validate_pod_template(obj.get("template"), "template")


def validate_endpoints(obj: dict) -> list[FieldError]:
    errs = []
    for i, subset in enumerate(obj.get("subsets") or ()):
        for j, p in enumerate(subset.get("ports") or ()):
            errs += _port(f"subsets[{i}].ports[{j}].port", p.get("port"))
    return errs


def validate_service_account(obj: dict) -> list[FieldError]:
    return []


def validate_node(obj: dict) -> list[FieldError]:
    errs = []
    for i, t in enumerate((obj.get("spec") or {}).get("taints") or ()):
        eff = t.get("effect")
        if eff not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.append(not_supported(f"spec.taints[{i}].effect", eff, ("NoExecute", "NoSchedule",
                                                                         "PreferNoSchedule")))
        if not t.get("key"):
            errs.append(required(f"spec.taints[{i}].key", ""))
    return errs


def validate_pvc(obj: dict) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errs = []
    if not spec.get("accessModes"):
        errs.append(required("spec.accessModes", ""))
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is None and not spec.get("dataSource"):
        errs.append(required("spec.resources[storage]", ""))
    if spec.get("storageClassName"):
        errs += [invalid("spec.storageClassName", spec["storageClassName"], m)
                 for m in is_dns1123_subdomain(spec["storageClassName"])]
    return errs


CREATE.update({
    ("", "Pod"): validate_pod,
    ("", "Service"): validate_service,
    ("", "ConfigMap"): validate_config_map,
    ("", "Secret"): validate_secret,
    ("", "PodTemplate"): validate_pod_template_kind,
    ("", "Endpoints"): validate_endpoints,
    ("", "Node"): validate_node,
    ("", "PersistentVolumeClaim"): validate_pvc,
})
UPDATE.update({
    ("", "Pod"): validate_pod_update,
    ("", "Service"): validate_service_update,
    ("", "ConfigMap"): validate_config_map_update,
    ("", "Secret"): validate_secret_update,
})
