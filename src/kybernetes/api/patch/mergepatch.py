"""JSON merge patch (RFC 7386): objects merge recursively, null deletes, anything else replaces."""

from __future__ import annotations

import copy
from typing import Any

from .. import errors


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def apply_merge_patch(doc: Any, patch: Any, copy_doc: bool = True) -> Any:
    """Apply `patch` to `doc`; a Kubernetes merge patch body must be a JSON object (else 400).

    The result shares nothing with `doc` or `patch`; with copy_doc=False it may share the subtrees the
    patch does not touch with `doc`, for a caller that owns `doc` and drops it."""
    if not isinstance(patch, dict):
        raise errors.bad_request("the patch must be a JSON object")
    return _merge(copy.deepcopy(doc) if copy_doc else doc, patch)


def create_merge_patch(original: Any, modified: Any) -> Any:
    """The merge patch that turns `original` into `modified` (nulls for removed keys)."""
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return copy.deepcopy(modified)
    patch: dict[str, Any] = {}
    for key in original:
        if key not in modified:
            patch[key] = None
    for key, value in modified.items():
        if key not in original:
            patch[key] = copy.deepcopy(value)
            continue
        old = original[key]
        if isinstance(old, dict) and isinstance(value, dict):
            sub = create_merge_patch(old, value)
            if sub:
                patch[key] = sub
        elif old != value or type(old) is not type(value):
            patch[key] = copy.deepcopy(value)
    return patch
