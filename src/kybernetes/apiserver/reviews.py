"""Create-only review APIs: who am I, and may I (kubectl auth whoami / can-i).

Every authenticated user is allowed everything until RBAC enforcement lands, so
access reviews answer `allowed: true` and say so in `reason`.
"""

from __future__ import annotations

from aiohttp import web

from ..api import errors
from . import negotiate


class Reviews:
    def __init__(self, server):
        self.server = server

    async def create(self, request: web.Request, rt, info) -> web.Response:
        raw = await negotiate.read_body(request)
        body = negotiate.decode_object(raw, request.headers.get("Content-Type", "")) if raw.strip() else {}
        user, groups = request.get("user") or ("", [])
        body.setdefault("apiVersion", rt.api_version)
        body.setdefault("kind", rt.kind)
        body.setdefault("metadata", {})
        if rt.plural == "selfsubjectreviews":
            body["status"] = {"userInfo": {"username": user, "groups": groups}}
        elif rt.plural in ("selfsubjectaccessreviews", "subjectaccessreviews", "localsubjectaccessreviews"):
            body["status"] = {"allowed": True, "reason": "kybernetes allows every authenticated user"}
        elif rt.plural == "selfsubjectrulesreviews":
            body["status"] = {
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": False,
            }
        elif rt.plural == "tokenreviews":
            token = ((body.get("spec") or {}).get("token")) or ""
            found = self.server.authenticate_token(token)
            body["status"] = ({"authenticated": True, "user": {"username": found[0], "groups": list(found[1])}}
                              if found else {"authenticated": False})
        else:
            raise errors.method_not_allowed()
        return negotiate.json_response(body, 201)
