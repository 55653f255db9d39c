"""Validation of workload kinds: apps/v1, batch/v1 and ReplicationController."""

from __future__ import annotations

import re

from ..errors import FieldError, forbidden, invalid, not_supported, required
from ..selectors import requirements_from_label_selector, selector_matches
from . import CREATE, UPDATE
from .core import validate_pod_template

CONCURRENCY = ("Allow", "Forbid", "Replace")


def _non_negative(spec: dict, field: str, path: str) -> list[FieldError]:
    v = spec.get(field)
    if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
        return [invalid(f"{path}.{field}", v, "must be greater than or equal to 0")]
    return []


class GoValue:
    """A value upstream prints with %#v (no quotes around it)."""

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def _selector_and_template(spec: dict, selector_required: bool = True) -> list[FieldError]:
    errs = []
    sel = spec.get("selector")
    template = spec.get("template")
    if sel is None:
        if selector_required:
            errs.append(required("spec.selector", ""))
    else:
        try:
            reqs = requirements_from_label_selector(sel)
        except (ValueError, AttributeError, TypeError):
            return [invalid("spec.selector", sel, "invalid label selector")]
        if not reqs:
            errs.append(invalid("spec.selector", sel, "empty selector is invalid for deployment"))
        labels = ((template or {}).get("metadata") or {}).get("labels") or {}
        if template is not None and reqs and not selector_matches(sel, labels):
            errs.append(invalid("spec.template.metadata.labels", labels,
                                "`selector` does not match template `labels`"))
    errs += validate_pod_template(template, "spec.template")
    return errs


def _spec(obj: dict) -> dict:
    return obj.get("spec") if isinstance(obj.get("spec"), dict) else {}


def validate_replicated(obj: dict) -> list[FieldError]:
    spec = _spec(obj)
    return _non_negative(spec, "replicas", "spec") + _non_negative(spec, "minReadySeconds", "spec") + \
        _selector_and_template(spec)


def validate_deployment(obj: dict) -> list[FieldError]:
    errs = validate_replicated(obj)
    strategy = _spec(obj).get("strategy") or {}
    stype = strategy.get("type", "RollingUpdate")
    if stype not in ("Recreate", "RollingUpdate"):
        errs.append(not_supported("spec.strategy.type", stype, ("Recreate", "RollingUpdate")))
    elif stype == "Recreate" and strategy.get("rollingUpdate"):
        errs.append(invalid("spec.strategy.rollingUpdate", strategy["rollingUpdate"],
                            "may not be specified when strategy `type` is 'Recreate'"))
    return errs


def validate_daemon_set(obj: dict) -> list[FieldError]:
    errs = _selector_and_template(_spec(obj)) + _non_negative(_spec(obj), "minReadySeconds", "spec")
    strategy = _spec(obj).get("updateStrategy") or {}
    stype = strategy.get("type")
    if stype is not None and stype not in ("OnDelete", "RollingUpdate"):
        errs.append(not_supported("spec.updateStrategy.type", stype, ("OnDelete", "RollingUpdate")))
    return errs


def _with_claim_volumes(obj: dict) -> dict:
    """The set with its claim templates as template volumes: mounts may name them (upstream validates the union)."""
    spec = _spec(obj)
    claims = [t for t in spec.get("volumeClaimTemplates") or () if isinstance(t, dict)]
    template = spec.get("template")
    if not claims or not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return obj
    pod_spec = dict(template["spec"])
    names = [((t.get("metadata") or {}).get("name") or "") for t in claims]
    pod_spec["volumes"] = list(pod_spec.get("volumes") or []) + [
        {"name": n, "persistentVolumeClaim": {"claimName": n}} for n in names if n]
    return dict(obj, spec=dict(spec, template=dict(template, spec=pod_spec)))


def validate_stateful_set(obj: dict) -> list[FieldError]:
    errs = validate_replicated(_with_claim_volumes(obj))
    policy = _spec(obj).get("podManagementPolicy")
    if policy and policy not in ("OrderedReady", "Parallel"):
        errs.append(not_supported("spec.podManagementPolicy", policy, ("OrderedReady", "Parallel")))
    stype = (_spec(obj).get("updateStrategy") or {}).get("type")
    if stype is not None and stype not in ("OnDelete", "RollingUpdate"):
        errs.append(not_supported("spec.updateStrategy.type", stype, ("OnDelete", "RollingUpdate")))
    return errs


STATEFUL_SET_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                        "minReadySeconds")


def validate_stateful_set_update(new: dict, old: dict) -> list[FieldError]:
    errs = validate_stateful_set(new)
    a = {k: v for k, v in _spec(new).items() if k not in STATEFUL_SET_MUTABLE}
    b = {k: v for k, v in _spec(old).items() if k not in STATEFUL_SET_MUTABLE}
    if a != b:
        errs.append(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                      "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                                      "'minReadySeconds' are forbidden"))
    return errs


def validate_job(obj: dict) -> list[FieldError]:
    spec = _spec(obj)
    errs = []
    for f in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        errs += _non_negative(spec, f, "spec")
    template = spec.get("template") or {}
    policy = (template.get("spec") or {}).get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        errs.append(not_supported("spec.template.spec.restartPolicy", policy, ("OnFailure", "Never")))
    errs += validate_pod_template(spec.get("template"), "spec.template")
    mode = spec.get("completionMode")
    if mode and mode not in ("NonIndexed", "Indexed"):
        errs.append(not_supported("spec.completionMode", mode, ("Indexed", "NonIndexed")))
    return errs


CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
CRON_BOUNDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}),
               (1, 12, {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                                          "sep", "oct", "nov", "dec"))}),
               (0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}))


def _cron_value(text: str, names: dict) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ValueError(f"failed to parse int from {text}: strconv.Atoi: parsing \"{text}\": invalid syntax")
    return int(text)


def _cron_field(field: str, low: int, high: int, names: dict) -> None:
    for part in field.split(","):
        rng, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise ValueError(f"step of range should be a positive number: {part}")
        if rng in ("*", "?"):
            continue
        first, _, last = rng.partition("-")
        start = _cron_value(first, names)
        end = _cron_value(last, names) if last else start
        if start < low:
            raise ValueError(f"beginning of range ({start}) below minimum ({low}): {part}")
        if end > high:
            raise ValueError(f"end of range ({end}) above maximum ({high}): {part}")
        if start > end:
            raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {part}")


def schedule_error(schedule: str) -> str | None:
    """Why a standard cron schedule does not parse (robfig/cron's words), or None."""
    text = schedule.strip()
    if text.startswith("@"):
        return None if text in CRON_MACROS or text.startswith("@every ") else f"unrecognized descriptor: {text}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    try:
        for field, (low, high, names) in zip(fields, CRON_BOUNDS, strict=True):
            _cron_field(field, low, high, names)
    except ValueError as exc:
        return str(exc)
    return None


def valid_schedule(schedule: str) -> bool:
    return schedule_error(re.sub(r"^(CRON_)?TZ=\S+\s+", "", schedule.strip())) is None


def validate_cron_job(obj: dict) -> list[FieldError]:
    spec = _spec(obj)
    errs = []
    schedule = spec.get("schedule")
    if not schedule:
        errs.append(required("spec.schedule", ""))
    elif re.match(r"^\s*(CRON_)?TZ=", str(schedule)):
        errs.append(invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field "
                                                       "instead"))
    elif (problem := schedule_error(str(schedule))) is not None:
        errs.append(invalid("spec.schedule", schedule, problem))
    policy = spec.get("concurrencyPolicy")
    if policy and policy not in CONCURRENCY:
        errs.append(not_supported("spec.concurrencyPolicy", policy, CONCURRENCY))
    job_spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    for e in validate_job({"spec": job_spec}):
        e.field = "spec.jobTemplate." + e.field
        errs.append(e)
    return errs


def _immutable_selector(new: dict, old: dict) -> list[FieldError]:
    if _spec(new).get("selector") != _spec(old).get("selector"):
        return [invalid("spec.selector", _spec(new).get("selector"), "field is immutable")]
    return []


def validate_job_update(new: dict, old: dict) -> list[FieldError]:
    errs = validate_job(new) + _immutable_selector(new, old)
    if _spec(new).get("completions") != _spec(old).get("completions"):
        errs.append(invalid("spec.completions", _spec(new).get("completions"), "field is immutable"))
    if _spec(new).get("template") != _spec(old).get("template") and not _spec(old).get("suspend"):
        errs.append(invalid("spec.template", GoValue("core.PodTemplateSpec{...}"), "field is immutable"))
    if _spec(new).get("completionMode") != _spec(old).get("completionMode"):
        errs.append(invalid("spec.completionMode", _spec(new).get("completionMode"), "field is immutable"))
    return errs


def _update_with_selector(validate):
    return lambda new, old: validate(new) + _immutable_selector(new, old)


def validate_rc(obj: dict) -> list[FieldError]:
    spec = _spec(obj)
    errs = _non_negative(spec, "replicas", "spec")
    sel = spec.get("selector") or ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if not sel:
        errs.append(required("spec.selector", ""))
    return errs + validate_pod_template(spec.get("template"), "spec.template")


CREATE.update({
    ("apps", "Deployment"): validate_deployment,
    ("apps", "ReplicaSet"): validate_replicated,
    ("apps", "StatefulSet"): validate_stateful_set,
    ("apps", "DaemonSet"): validate_daemon_set,
    ("batch", "Job"): validate_job,
    ("batch", "CronJob"): validate_cron_job,
    ("", "ReplicationController"): validate_rc,
})
UPDATE.update({
    ("apps", "Deployment"): _update_with_selector(validate_deployment),
    ("apps", "ReplicaSet"): _update_with_selector(validate_replicated),
    ("apps", "StatefulSet"): validate_stateful_set_update,
    ("apps", "DaemonSet"): _update_with_selector(validate_daemon_set),
    ("batch", "Job"): validate_job_update,
})
