"""Which name rule each resource uses (upstream's ValidateNameFunc per registry).

Every rule is `fn(name, prefix) -> list[str]`: the messages for an invalid name, empty
when valid. With `prefix=True` the value is a generateName, which may end in '-'.
"""

from __future__ import annotations

from collections.abc import Callable

from .validation.meta import is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_path_segment_name

NameValidator = Callable[[str, bool], list[str]]

LABEL_NAMES = {("", "namespaces")}
DNS1035_NAMES = {("", "services")}
PATH_SEGMENT_NAMES = {("rbac.authorization.k8s.io", p) for p in ("roles", "clusterroles", "rolebindings",
                                                                   "clusterrolebindings")}
PATH_SEGMENT_NAMES |= {("certificates.k8s.io", "certificatesigningrequests")}


def name_validator(group: str, plural: str) -> NameValidator:
    key = (group, plural)
    if key in LABEL_NAMES:
        return is_dns1123_label
    if key in DNS1035_NAMES:
        return is_dns1035_label
    if key in PATH_SEGMENT_NAMES:
        return is_path_segment_name
    return is_dns1123_subdomain
