"""The Job strategy: a generated selector unless spec.manualSelector (upstream `job/strategy.go`)."""

from __future__ import annotations

from ..strategy import Strategy

CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"


def generate_selector(job: dict) -> None:
    """Label the template with the job's uid and name and select on the uid.

    Upstream does this in Validate because its uid is assigned late; ours exists by
    prepare_for_create.
    """
    meta, spec = job["metadata"], job.setdefault("spec", {})
    if spec.get("manualSelector"):
        return
    uid, name = meta.get("uid", ""), meta.get("name", "")
    template = spec.get("template") or {}
    spec["template"] = template
    tmeta = template["metadata"] = template.get("metadata") or {}
    labels = tmeta["labels"] = tmeta.get("labels") or {}
    labels.setdefault(LEGACY_CONTROLLER_UID, uid)
    labels.setdefault(LEGACY_JOB_NAME, name)
    labels.setdefault(CONTROLLER_UID, uid)
    labels.setdefault(JOB_NAME, name)
    if not spec.get("selector"):
        spec["selector"] = {"matchLabels": {CONTROLLER_UID: uid}}


class JobStrategy(Strategy):
    def prepare_for_create(self, obj: dict) -> None:
        super().prepare_for_create(obj)
        generate_selector(obj)
