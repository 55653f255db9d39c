"""Which strategy each resource uses; everything not listed gets the default."""

from __future__ import annotations

from ...api.resources import ResourceType
from ..strategy import Strategy
from .batch import JobStrategy
from .core import NamespaceStrategy, NoGenerationStrategy, PodStrategy, SecretStrategy
from .service import ServiceStrategy
from .storage import PersistentVolumeClaimStrategy

# kinds whose strategies set metadata.generation (upstream PrepareForCreate sets 1)
GENERATION_TRACKED = {
    ("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"), ("apps", "daemonsets"),
    ("batch", "jobs"), ("batch", "cronjobs"), ("", "replicationcontrollers"),
    ("apiextensions.k8s.io", "customresourcedefinitions"), ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"), ("networking.k8s.io", "networkpolicies"),
    ("networking.k8s.io", "ingresses"),
}

SPECIAL = {
    ("", "pods"): PodStrategy,
    ("", "namespaces"): NamespaceStrategy,
    ("", "secrets"): SecretStrategy,
    ("", "services"): ServiceStrategy,
    ("", "persistentvolumeclaims"): PersistentVolumeClaimStrategy,
    ("batch", "jobs"): JobStrategy,
}


def builtin_strategy(rt: ResourceType) -> Strategy:
    cls = SPECIAL.get((rt.group, rt.plural))
    if cls is None:
        cls = Strategy if (rt.group, rt.plural) in GENERATION_TRACKED else NoGenerationStrategy
    return cls(rt)
