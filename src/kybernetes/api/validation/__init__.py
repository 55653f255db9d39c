"""Per-kind validation, looked up by (group, kind); kinds without rules validate to []."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import FieldError

Validator = Callable[[dict], list[FieldError]]
UpdateValidator = Callable[[dict, dict], list[FieldError]]

CREATE: dict[tuple[str, str], Validator] = {}
UPDATE: dict[tuple[str, str], UpdateValidator] = {}
STATUS_UPDATE: dict[tuple[str, str], UpdateValidator] = {}


def validate(group: str, kind: str, obj: dict) -> list[FieldError]:
    fn = CREATE.get((group, kind))
    return fn(obj) if fn else []


def validate_update(group: str, kind: str, new: dict, old: dict) -> list[FieldError]:
    fn = UPDATE.get((group, kind))
    if fn:
        return fn(new, old)
    return validate(group, kind, new)


def validate_status_update(group: str, kind: str, new: dict, old: dict) -> list[FieldError]:
    fn = STATUS_UPDATE.get((group, kind))
    return fn(new, old) if fn else []


def _register() -> None:
    """Import the per-group modules; each fills the tables when imported."""
    import importlib

    for module in ("core", "apps", "batch", "other"):
        try:
            importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:  # a group not written yet
            if exc.name != f"{__name__}.{module}":
                raise


_register()
