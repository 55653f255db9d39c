"""Service account tokens: TokenRequest (`serviceaccounts/token`) and their authentication.

Tokens are JWTs signed ES256 with the cluster's service-account key, carrying upstream's
claims (`iss`, `sub` = `system:serviceaccount:NS:NAME`, `aud`, `exp`, `iat`, `nbf` and the
`kubernetes.io` block naming the namespace, account and bound pod). A token is valid while
it has not expired, its audience includes the API server's, and the account (and bound
pod) it names still exist with the same uid.
"""

from __future__ import annotations

import base64
import datetime
import os
import time
import uuid
from pathlib import Path

import orjson
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ..api import errors
from . import negotiate

ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCES = (ISSUER,)
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 2 ** 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(int(ts), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ServiceAccountTokens:
    def __init__(self, server, key_path: Path | None):
        self.server = server
        self.key = self._load_key(key_path)
        public = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashes.Hash(hashes.SHA256())
        digest.update(public)
        self.key_id = _b64(digest.finalize())

    @staticmethod
    def _load_key(path: Path | None) -> ec.EllipticCurvePrivateKey:
        if path is not None and path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), None)
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return key
        key = ec.generate_private_key(ec.SECP256R1())
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
        return key

    # --- JWT -----------------------------------------------------------------------------------
    def sign(self, claims: dict) -> str:
        header = _b64(orjson.dumps({"alg": "ES256", "kid": self.key_id}))
        payload = _b64(orjson.dumps(claims))
        der = self.key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{header}.{payload}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def verify(self, token: str) -> dict | None:
        """The claims of a token this server signed and that is valid now, else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = orjson.loads(_unb64(parts[0]))
            sig = _unb64(parts[2])
            if header.get("alg") != "ES256" or len(sig) != 64:
                return None
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            self.key.public_key().verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
            claims = orjson.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature, orjson.JSONDecodeError, AttributeError):
            return None
        now = time.time()
        if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
            return None
        if claims.get("exp", 0) < now or claims.get("nbf", 0) > now + 60:
            return None
        aud = claims.get("aud") or []
        return claims if set(aud if isinstance(aud, list) else [aud]) & set(API_AUDIENCES) else None

    # --- authentication ----------------------------------------------------------------------
    def authenticate(self, token: str) -> tuple[str, list[str]] | None:
        claims = self.verify(token)
        if claims is None:
            return None
        k8s = claims.get("kubernetes.io") or {}
        ns = k8s.get("namespace", "")
        sa = k8s.get("serviceaccount") or {}
        if not self._alive("serviceaccounts", ns, sa.get("name", ""), sa.get("uid")):
            return None
        pod = k8s.get("pod")
        if pod and not self._alive("pods", ns, pod.get("name", ""), pod.get("uid")):
            return None
        return claims["sub"], ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]

    def _alive(self, plural: str, ns: str, name: str, uid: str | None) -> bool:
        rt = self.server.index.get("", "v1", plural)
        key = f"{rt.storage_key}{ns}/{name}"
        entry = self.server.cache.bucket(rt.storage_key).store.get(key)
        return entry is not None and (uid is None or entry.obj["metadata"].get("uid") == uid)

    # --- TokenRequest ------------------------------------------------------------------------
    async def create(self, request: web.Request, rt, info) -> web.Response:
        raw = await negotiate.read_body(request)
        body = negotiate.decode_object(raw, request.headers.get("Content-Type", "")) if raw.strip() else {}
        spec = body.get("spec") or {}
        sa = await self.server.store.get(rt, info.namespace, info.name)
        expiration = spec.get("expirationSeconds") or DEFAULT_EXPIRATION
        if not isinstance(expiration, int) or expiration < MIN_EXPIRATION or expiration > MAX_EXPIRATION:
            raise errors.invalid_error("TokenRequest", info.name, [errors.invalid(
                "spec.expirationSeconds", expiration, "may not specify a duration less than 10 minutes")],
                "authentication.k8s.io")
        audiences = spec.get("audiences") or list(API_AUDIENCES)
        now = int(time.time())
        exp = now + expiration
        k8s: dict = {"namespace": info.namespace,
                     "serviceaccount": {"name": info.name, "uid": sa["metadata"]["uid"]}}
        bound = spec.get("boundObjectRef")
        if bound:
            kind, name = bound.get("kind"), bound.get("name", "")
            plural = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}.get(kind)
            if plural is None:
                raise errors.invalid_error("TokenRequest", info.name, [errors.not_supported(
                    "spec.boundObjectRef.kind", kind, ("Node", "Pod", "Secret"))], "authentication.k8s.io")
            brt = self.server.index.get("", "v1", plural)
            obj = await self.server.store.get(brt, info.namespace if brt.namespaced else "", name)
            if bound.get("uid") and bound["uid"] != obj["metadata"]["uid"]:
                raise errors.conflict(plural, name, "the UID in the bound object reference does not match")
            k8s[kind.lower()] = {"name": name, "uid": obj["metadata"]["uid"]}
        claims = {"aud": audiences, "exp": exp, "iat": now, "nbf": now, "iss": ISSUER, "jti": str(uuid.uuid4()),
                  "kubernetes.io": k8s, "sub": f"system:serviceaccount:{info.namespace}:{info.name}"}
        body.update({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"})
        body["metadata"] = {"name": info.name, "namespace": info.namespace,
                            "creationTimestamp": _rfc3339(now)}
        body["spec"] = {**spec, "audiences": audiences, "expirationSeconds": expiration,
                        "boundObjectRef": bound}
        body["status"] = {"token": self.sign(claims), "expirationTimestamp": _rfc3339(exp)}
        return negotiate.json_response(body, 201)
