"""Server-side Table printing for `kubectl get`: built-in printers and CRD columns."""

from __future__ import annotations

import datetime

from ..api.resources import ResourceType
from .printers import table_for


class Tables:
    def __init__(self, server):
        self.server = server

    def table(self, rt: ResourceType, objects: list[dict], include_object: str = "Metadata") -> dict:
        if include_object not in ("None", "Metadata", "Object"):
            include_object = "Metadata"
        columns = None
        if self.server.crds.lookup(rt) is not None:
            columns = self.server.crds.printer_columns(rt) or []
        now = datetime.datetime.now(datetime.UTC)
        return table_for(rt.group, rt.kind, objects, now, crd_columns=columns, include_object=include_object)
