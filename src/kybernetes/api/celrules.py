"""CEL validation rules of custom resources (`x-kubernetes-validations`), as upstream's apiextensions.

Each rule of the schema of a value present in the object is evaluated with `self` bound to the
value; a transition rule (one that names `oldSelf`) only on update, where the stored object has
the value at the same place (same property, map key, or list-map keys), with `oldSelf` bound to
it. A rule that is not true is the field error upstream reports: Invalid (or the rule's `reason`)
at the value's path (plus the rule's `fieldPath`), with the schema's type as the value and the
rule's `messageExpression` result, its `message`, or `failed rule: <rule>`. Rules are compiled
once each by cel-python, a pure-Python CEL.

Not done: the Kubernetes CEL libraries beyond standard CEL (quantity, IP, CIDR, URL, format,
list and regex extensions), comparisons across int and double, `optionalOldSelf`, cost limits.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

import celpy

from .errors import FieldError, duplicate, forbidden, invalid, required

logging.getLogger("celpy").setLevel(logging.CRITICAL)  # it logs every failed evaluation with a traceback
log = logging.getLogger("kybernetes.celrules")

_OLD_SELF = re.compile(r"\boldSelf\b")
_NO_SUCH_MEMBER = re.compile(r"no such member in mapping: '(.*)'")
RULES = "x-kubernetes-validations"


@functools.cache
def _env() -> celpy.Environment:
    return celpy.Environment()


@functools.lru_cache(maxsize=4096)
def _program(rule: str):
    """The compiled rule; raises ValueError with the compiler's words when it does not compile."""
    env = _env()
    try:
        return env.program(env.compile(rule))
    except Exception as e:  # noqa: BLE001 - cel-python raises several parse and type errors
        raise ValueError(str(e).strip()) from None


def compile_error(rule: str) -> str:
    """Why `rule` does not compile, or ""."""
    try:
        _program(rule)
    except ValueError as e:
        return str(e)
    return ""


def has_rules(schema: Any) -> bool:
    if isinstance(schema, dict):
        return bool(schema.get(RULES)) or any(has_rules(v) for v in schema.values())
    if isinstance(schema, list):
        return any(has_rules(v) for v in schema)
    return False


def check(obj: dict, schema: dict, old: dict | None = None) -> list[FieldError]:
    """The field errors of every rule of `schema` that `obj` (replacing `old`) breaks."""
    errs: list[FieldError] = []
    _walk(obj, old, old is not None, schema, "", errs)
    return errs


def _walk(value: Any, old: Any, has_old: bool, schema: Any, path: str, errs: list[FieldError]) -> None:
    if not isinstance(schema, dict) or value is None:
        return
    rules = schema.get(RULES)
    if isinstance(rules, list) and rules:
        _evaluate(rules, value, old, has_old, schema, path, errs)
    if isinstance(value, dict):
        olds = old if has_old and isinstance(old, dict) else {}
        props = schema.get("properties")
        if isinstance(props, dict):
            for key, sub in props.items():
                if key in value:
                    _walk(value[key], olds.get(key), key in olds, sub, f"{path}.{key}" if path else key, errs)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                _walk(item, olds.get(key), key in olds, extra, f"{path}[{key}]", errs)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        keys = schema.get("x-kubernetes-list-map-keys") if schema.get("x-kubernetes-list-type") == "map" else None
        olds_by_key: dict = {}
        if keys and has_old and isinstance(old, list):  # only list-map items correlate with old ones
            olds_by_key = {_item_key(o, keys): o for o in old if isinstance(o, dict)}
        for i, item in enumerate(value):
            key = _item_key(item, keys) if keys and isinstance(item, dict) else None
            _walk(item, olds_by_key.get(key), key in olds_by_key, schema["items"], f"{path}[{i}]", errs)


def _item_key(item: dict, keys: list) -> tuple:
    return tuple(repr(item.get(k)) for k in keys)


def _evaluate(rules: list, value: Any, old: Any, has_old: bool, schema: dict, path: str,
              errs: list[FieldError]) -> None:
    kind = schema.get("type") or "object"
    for rule in rules:
        text = rule.get("rule") if isinstance(rule, dict) else None
        if not isinstance(text, str):
            continue
        transition = bool(_OLD_SELF.search(text))
        if transition and not has_old:
            continue
        where = (path + _relative(rule.get("fieldPath"))).lstrip(".") or "<nil>"
        activation = {"self": celpy.json_to_cel(value)}
        if transition:
            activation["oldSelf"] = celpy.json_to_cel(old)
        try:
            result = _program(text).evaluate(activation)
        except ValueError as e:
            errs.append(invalid(where, kind, f"compilation failed: {e}"))
            continue
        except celpy.CELEvalError as e:
            errs.append(invalid(where, kind, f"{_eval_error(e)} evaluating rule: {_rule_text(rule)}"))
            continue
        if isinstance(result, celpy.CELEvalError):
            errs.append(invalid(where, kind, f"{_eval_error(result)} evaluating rule: {_rule_text(rule)}"))
        elif result is not True and not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            errs.append(_error(rule, where, kind, _message(rule, activation)))


def _relative(field_path: Any) -> str:
    """A rule's fieldPath (`.spec.replicas`, `.labels['a']`) as a suffix of the value's path."""
    if not isinstance(field_path, str) or not field_path:
        return ""
    return re.sub(r"\['([^']*)'\]", r"[\1]", field_path)


def _rule_text(rule: dict) -> str:
    message = rule.get("message")
    return message.strip() if isinstance(message, str) and message.strip() else rule["rule"].strip()


def _message(rule: dict, activation: dict) -> str:
    expression = rule.get("messageExpression")
    if isinstance(expression, str) and expression:
        try:
            text = _program(expression).evaluate(activation)
            if isinstance(text, str) and text.strip() and "\n" not in text:
                return text.strip()
        except (ValueError, celpy.CELEvalError) as e:
            log.debug("messageExpression %r failed: %s", expression, e)
    message = rule.get("message")
    if isinstance(message, str) and message.strip():
        return message.strip()
    return f"failed rule: {rule['rule'].strip()}"


def _error(rule: dict, where: str, kind: str, message: str) -> FieldError:
    reason = rule.get("reason")
    if reason == "FieldValueForbidden":
        return forbidden(where, message)
    if reason == "FieldValueRequired":
        return required(where, message)
    if reason == "FieldValueDuplicate":
        return duplicate(where, kind)
    return invalid(where, kind, message)


def _eval_error(error: Exception) -> str:
    text = str(error.args[0]) if error.args else str(error)
    missing = _NO_SUCH_MEMBER.search(text)
    if missing:
        return f"no such key: {missing.group(1)}"
    if "no matching overload" in text:
        return "no such overload"
    return text
