"""Pure PATCH algorithms: JSON patch (RFC 6902), merge patch (RFC 7386), strategic merge patch.

Each function takes the current object and the decoded patch body and returns a new
object, leaving both inputs untouched; failures raise `errors.StatusError`.
"""

from .jsonpatch import MAX_OPERATIONS, apply_json_patch
from .mergepatch import apply_merge_patch, create_merge_patch
from .strategic import apply_strategic_merge_patch

__all__ = [
    "MAX_OPERATIONS",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "create_merge_patch",
]
