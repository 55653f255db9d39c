"""Kubernetes API errors as `Status` objects.

Every failure a client can cause leaves the API server as one of these, with the HTTP
code equal to `Status.code` and the `reason` kubectl keys on (NotFound, AlreadyExists,
Conflict, Invalid, ...). Field errors carry the upstream cause reasons so that kubectl
prints `The Pod "x" is invalid: spec.containers[0].image: Required value`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# field.ErrorType -> (cause reason, text kubectl shows after the field path)
FIELD_ERROR_TYPES = {
    "required": ("FieldValueRequired", "Required value"),
    "invalid": ("FieldValueInvalid", "Invalid value"),
    "not_supported": ("FieldValueNotSupported", "Unsupported value"),
    "duplicate": ("FieldValueDuplicate", "Duplicate value"),
    "forbidden": ("FieldValueForbidden", "Forbidden"),
    "too_long": ("FieldValueTooLong", "Too long"),
    "too_many": ("FieldValueTooMany", "Too many"),
    "not_found": ("FieldValueNotFound", "Not found"),
    "internal": ("InternalError", "Internal error"),
}


def _render_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(_render_value(v) for v in value) + "}"
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return "map[string]string{" + ", ".join(f"{_render_value(k)}:{_render_value(v)}"
                                                for k, v in sorted(value.items())) + "}"
    return str(value)


_OMIT = object()


@dataclass
class FieldError:
    """One invalid field, like upstream's `field.Error`."""

    type: str
    field: str
    detail: str = ""
    bad_value: Any = _OMIT
    valid_values: tuple = ()

    @property
    def reason(self) -> str:
        return FIELD_ERROR_TYPES[self.type][0]

    def message(self) -> str:
        label = FIELD_ERROR_TYPES[self.type][1]
        text = label
        if self.type in ("invalid", "not_supported", "duplicate", "not_found", "too_many") and self.bad_value is not _OMIT:
            text = f"{label}: {_render_value(self.bad_value)}"
        if self.type == "not_supported" and self.valid_values:
            text += ": supported values: " + ", ".join(_render_value(v) for v in self.valid_values)
        if self.detail:
            text += f": {self.detail}"
        return f"{self.field}: {text}" if self.field else text

    def cause(self) -> dict:
        label_message = self.message()
        if self.field and label_message.startswith(self.field + ": "):
            label_message = label_message[len(self.field) + 2 :]
        return {"reason": self.reason, "message": label_message, "field": self.field}


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("required", path, detail)


def invalid(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError("invalid", path, detail, value)


def not_supported(path: str, value: Any, valid: tuple | list) -> FieldError:
    return FieldError("not_supported", path, "", value, tuple(valid))


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("duplicate", path, "", value)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("forbidden", path, detail)


def too_long(path: str, value: Any, max_length: int) -> FieldError:
    return FieldError("too_long", path, f"may not be more than {max_length} bytes", _OMIT)


def not_found(path: str, value: Any) -> FieldError:
    return FieldError("not_found", path, "", value)


@dataclass
class StatusError(Exception):
    """An API error that becomes a `Status` response."""

    code: int
    reason: str
    message: str
    details: dict | None = None
    headers: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> dict:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(kind: str, name: str, group: str = "", **extra: Any) -> dict:
    details = {"name": name, "group": group, "kind": kind} if name else {"group": group, "kind": kind}
    details.update(extra)
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found_error(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        404, "NotFound", f'{_qualified(resource, group)} "{name}" not found', _details(resource, name, group)
    )


def already_exists(resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{_qualified(resource, group)} "{name}" already exists',
        _details(resource, name, group),
    )


def conflict(resource: str, name: str, detail: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}',
        _details(resource, name, group),
    )


def invalid_error(kind: str, name: str, errors: list[FieldError], group: str = "") -> StatusError:
    """422 Invalid, worded like upstream's `NewInvalid`."""
    messages = [e.message() for e in errors]
    if len(messages) == 1:
        joined = messages[0]
    else:
        joined = "[" + ", ".join(messages) + "]"
    return StatusError(
        422,
        "Invalid",
        f'{kind}{"." + group if group else ""} "{name}" is invalid: {joined}',
        _details(kind, name, group, causes=[e.cause() for e in errors]),
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource") -> StatusError:
    return StatusError(405, "MethodNotAllowed", message, {})


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - accepted media types include: {content_type}", {})


def not_acceptable(message: str) -> StatusError:
    return StatusError(406, "NotAcceptable", message, {})


def forbidden_error(message: str, resource: str = "", name: str = "", group: str = "") -> StatusError:
    return StatusError(403, "Forbidden", message, _details(resource, name, group) if resource else {})


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def expired(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def gone(message: str) -> StatusError:
    return StatusError(410, "Gone", message)


def too_large() -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728")


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def service_unavailable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", message)


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
