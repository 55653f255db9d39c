"""Service account tokens: `kubectl create token`, authenticating with them, TokenReview."""

from __future__ import annotations

import json


def _as(cluster, token: str, *args: str):
    tls = cluster.data_dir / "server" / "tls"
    return cluster.kubectl("--kubeconfig=/dev/null", f"--server={cluster.url}", f"--token={token}",
                           f"--certificate-authority={tls / 'server-ca.crt'}", *args, check=False)


def test_token_request_authenticates_until_the_account_goes(cluster):
    cluster.kubectl("create", "serviceaccount", "robot")
    token = cluster.kubectl("create", "token", "robot", "--duration=20m").stdout.strip()
    assert token.count(".") == 2
    who = _as(cluster, token, "auth", "whoami", "-o", "json")
    assert who.returncode == 0, who.stderr
    info = json.loads(who.stdout)["status"]["userInfo"]
    assert info["username"] == "system:serviceaccount:default:robot"
    assert "system:serviceaccounts:default" in info["groups"]
    status, review = cluster.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                                     {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                      "spec": {"token": token}})
    assert status == 201 and review["status"]["authenticated"] is True
    cluster.kubectl("delete", "serviceaccount", "robot")
    denied = _as(cluster, token, "get", "namespaces")
    assert denied.returncode != 0 and "Unauthorized" in denied.stderr
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert "Unauthorized" in _as(cluster, forged, "get", "namespaces").stderr


def test_token_request_errors(cluster):
    missing = cluster.kubectl("create", "token", "nobody", check=False)
    assert 'serviceaccounts "nobody" not found' in missing.stderr
    cluster.kubectl("create", "serviceaccount", "short")
    status, body = cluster.request("POST", "/api/v1/namespaces/default/serviceaccounts/short/token",
                                   {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                    "spec": {"expirationSeconds": 5}})
    assert status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "spec.expirationSeconds"
