"""Validation of names, labels, annotations and ObjectMeta, with upstream's messages."""

from __future__ import annotations

import re

from ..errors import FieldError, forbidden, invalid, required, too_long

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")
TOTAL_ANNOTATION_SIZE = 256 * 1024


def _max_len(value: str, n: int) -> list[str]:
    return [f"must be no more than {n} characters"] if len(value) > n else []


def mask_trailing_dash(value: str) -> str:
    """generateName prefixes may end in '-' (a random suffix follows)."""
    return value[:-1] + "a" if len(value) > 1 and value.endswith("-") else value


def is_dns1123_label(value: str, prefix: bool = False) -> list[str]:
    if prefix:
        value = mask_trailing_dash(value)
    msgs = _max_len(value, 63)
    if not re.fullmatch(DNS1123_LABEL, value):
        msgs.append("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                    f"validation is '{DNS1123_LABEL}')")
    return msgs


def is_dns1123_subdomain(value: str, prefix: bool = False) -> list[str]:
    if prefix:
        value = mask_trailing_dash(value)
    msgs = _max_len(value, 253)
    if not re.fullmatch(DNS1123_SUBDOMAIN, value):
        msgs.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                    f"validation is '{DNS1123_SUBDOMAIN}')")
    return msgs


def is_dns1035_label(value: str, prefix: bool = False) -> list[str]:
    if prefix:
        value = mask_trailing_dash(value)
    msgs = _max_len(value, 63)
    if not re.fullmatch(DNS1035_LABEL, value):
        msgs.append("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                    f"regex used for validation is '{DNS1035_LABEL}')")
    return msgs


def is_path_segment_name(value: str, prefix: bool = False) -> list[str]:
    if value in (".", "..") and not prefix:
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def is_qualified_name(value: str) -> list[str]:
    msgs: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                f"validation is '{QUALIFIED_NAME}') with an optional DNS subdomain prefix and '/' (e.g. "
                "'example.com/MyName')"]
    prefix, _, name = value.rpartition("/")
    if "/" in value:
        if not prefix:
            msgs.append("prefix part must be non-empty")
        else:
            msgs += ["prefix part " + m for m in is_dns1123_subdomain(prefix)]
    if not name:
        msgs.append("name part must be non-empty")
    elif len(name) > 63:
        msgs.append("name part must be no more than 63 characters")
    if not re.fullmatch(QUALIFIED_NAME, name):
        msgs.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                    f"validation is '{QUALIFIED_NAME}')")
    return msgs


def is_valid_label_value(value: str) -> list[str]:
    msgs = _max_len(value, 63)
    if not re.fullmatch(LABEL_VALUE, value):
        msgs.append("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                    f"'12345', regex used for validation is '{LABEL_VALUE}')")
    return msgs


def validate_labels(labels, path: str) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [invalid(path, labels, "must be a map of strings")]
    errs = []
    for k, v in labels.items():
        errs += [invalid(path, k, m) for m in is_qualified_name(str(k))]
        if not isinstance(v, str):
            errs.append(invalid(f"{path}.{k}", v, "must be a string"))
            continue
        errs += [invalid(path, v, m) for m in is_valid_label_value(v)]
    return errs


def validate_annotations(annotations, path: str) -> list[FieldError]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [invalid(path, annotations, "must be a map of strings")]
    errs = []
    total = 0
    for k, v in annotations.items():
        errs += [invalid(path, k, m) for m in is_qualified_name(str(k).lower())]
        if not isinstance(v, str):
            errs.append(invalid(f"{path}.{k}", v, "must be a string"))
            continue
        total += len(k) + len(v)
    if total > TOTAL_ANNOTATION_SIZE:
        errs.append(too_long(path, "", TOTAL_ANNOTATION_SIZE))
    return errs


def validate_owner_references(refs, path: str) -> list[FieldError]:
    if not refs:
        return []
    if not isinstance(refs, list):
        return [invalid(path, refs, "must be a list")]
    errs = []
    controllers = []
    for i, ref in enumerate(refs):
        p = f"{path}[{i}]"
        if not isinstance(ref, dict):
            errs.append(invalid(p, ref, "must be an object"))
            continue
        api_version = str(ref.get("apiVersion") or "")
        if not api_version or api_version.endswith("/"):
            errs.append(invalid(f"{p}.apiVersion", api_version, "version must not be empty"))
        for f in ("kind", "name", "uid"):
            if not ref.get(f):
                errs.append(invalid(f"{p}.{f}", ref.get(f) or "", f"{f} must not be empty"))
        if ref.get("controller"):
            controllers.append(f"{ref.get('kind')}/{ref.get('name')}")
    if len(controllers) > 1:
        errs.append(invalid(path, refs, "Only one reference can have Controller set to true. Found \"true\" in "
                                        f"references for {' and '.join(controllers)}"))
    return errs


def validate_finalizers(finalizers, path: str, kube: bool = True) -> list[FieldError]:
    """Qualified names; built-in kinds also reject unqualified non-standard ones (CRDs and CRs do not)."""
    if not finalizers:
        return []
    if not isinstance(finalizers, list):
        return [invalid(path, finalizers, "must be a list of strings")]
    errs = []
    for f in finalizers:
        if not isinstance(f, str):
            errs.append(invalid(path, f, "must be a string"))
            continue
        msgs = is_qualified_name(f)
        errs += [invalid(path, f, m) for m in msgs]
        if kube and not msgs and "/" not in f and f not in STANDARD_FINALIZERS:
            errs.append(invalid(path, f, "name is neither a standard finalizer name nor is it fully qualified"))
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errs.append(invalid(path, finalizers, "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def call_name_validator(fn, name: str, prefix: bool) -> list[str]:
    """Run a `fn(name, prefix)` name rule (every rule takes both; see api/naming.py)."""
    return list(fn(name, prefix))


def validate_object_meta(meta: dict, namespaced: bool, name_validator, kube_finalizers: bool = True) -> list[FieldError]:
    """Checks every write makes: name (or generateName), namespace, labels, annotations, owners."""
    errs: list[FieldError] = []
    if not isinstance(meta, dict):
        return [invalid("metadata", meta, "must be an object")]
    name, generate = meta.get("name"), meta.get("generateName")
    if generate:
        if not isinstance(generate, str):
            errs.append(invalid("metadata.generateName", generate, "must be a string"))
        else:
            errs += [invalid("metadata.generateName", generate, m)
                     for m in call_name_validator(name_validator, generate, True)]
    if not name:
        errs.append(required("metadata.name", "name or generateName is required"))
    elif not isinstance(name, str):
        errs.append(invalid("metadata.name", name, "must be a string"))
    else:
        errs += [invalid("metadata.name", name, m) for m in call_name_validator(name_validator, name, False)]
    ns = meta.get("namespace")
    if namespaced:
        if not ns:
            errs.append(required("metadata.namespace", ""))
        else:
            errs += [invalid("metadata.namespace", ns, m) for m in is_dns1123_label(str(ns))]
    elif ns:
        errs.append(forbidden("metadata.namespace", "not allowed on this type"))
    errs += validate_labels(meta.get("labels"), "metadata.labels")
    errs += validate_annotations(meta.get("annotations"), "metadata.annotations")
    errs += validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences")
    errs += validate_finalizers(meta.get("finalizers"), "metadata.finalizers", kube_finalizers)
    return errs


def validate_object_meta_update(new: dict, old: dict) -> list[FieldError]:
    errs = []
    for f in ("name", "namespace", "uid", "creationTimestamp"):
        if new.get(f) != old.get(f) and old.get(f) is not None:
            errs.append(invalid(f"metadata.{f}", new.get(f), "field is immutable"))
    new_gen, old_gen = new.get("generation"), old.get("generation")
    if isinstance(new_gen, int) and isinstance(old_gen, int) and new_gen < old_gen:
        errs.append(invalid("metadata.generation", new_gen, "must not be decremented"))
    if old.get("deletionTimestamp"):
        added = set(new.get("finalizers") or ()) - set(old.get("finalizers") or ())
        if added:
            listed = ", ".join(f'"{f}"' for f in sorted(added))
            errs.append(forbidden("metadata.finalizers",
                                  "no new finalizers can be added if the object is being deleted, found new "
                                  f"finalizers []string{{{listed}}}"))
    return errs
