"""Defaults of built-in kinds, as upstream's `pkg/apis/*/v1/defaults.go` set them."""

from __future__ import annotations

from collections.abc import Callable

from .core import default_pod_spec, default_pod_template
from .kinds import DEFAULTERS, VERSIONED

__all__ = ["apply_defaults", "default_pod_spec", "default_pod_template"]


def apply_defaults(group: str, version: str, kind: str, obj: dict) -> None:
    fn: Callable[[dict], None] | None = VERSIONED.get((group, version, kind)) or DEFAULTERS.get((group, kind))
    if fn is not None:
        fn(obj)
