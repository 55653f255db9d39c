"""Cluster PKI: a CA, the API server's serving certificate and the admin client certificate.

Generated once on first start under DATA_DIR/server/tls and reused afterwards, as k3s
does. Clients authenticate with certificates signed by the CA: the subject CN is the user
name and the O entries are the groups (admin is `system:admin` in `system:masters`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TEN_YEARS = datetime.timedelta(days=3650)
ONE_YEAR = datetime.timedelta(days=365)


@dataclass
class Bundle:
    cert: Path
    key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(cn: str, orgs: tuple = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)


def _make_ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = _name(cn)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + TEN_YEARS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue(
    ca_cert: x509.Certificate,
    ca_key,
    cn: str,
    orgs: tuple = (),
    server_names: tuple = (),
    server_ips: tuple = (),
    client: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + ONE_YEAR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
    )
    if server_names or server_ips:
        alt = [x509.DNSName(n) for n in server_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in server_ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _load(bundle: Bundle):
    cert = x509.load_pem_x509_certificate(bundle.cert.read_bytes())
    key = serialization.load_pem_private_key(bundle.key.read_bytes(), None)
    return cert, key


@dataclass
class ClusterPKI:
    """Paths of the cluster's certificates; `ensure()` creates whatever is missing."""

    directory: Path

    @property
    def ca(self) -> Bundle:
        return Bundle(self.directory / "server-ca.crt", self.directory / "server-ca.key")

    @property
    def serving(self) -> Bundle:
        return Bundle(self.directory / "serving-kube-apiserver.crt", self.directory / "serving-kube-apiserver.key")

    @property
    def admin(self) -> Bundle:
        return Bundle(self.directory / "client-admin.crt", self.directory / "client-admin.key")

    @property
    def kubelet_client(self) -> Bundle:
        """What the API server presents to kubelets (logs, exec, attach, port-forward)."""
        return Bundle(self.directory / "client-kube-apiserver-kubelet-client.crt",
                      self.directory / "client-kube-apiserver-kubelet-client.key")

    def ensure(self, extra_names: tuple = (), extra_ips: tuple = ()) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.ca.cert.exists():
            cert, key = _make_ca(f"kybernetes-server-ca@{int(_now().timestamp())}")
            _write_key(self.ca.key, key)
            _write_cert(self.ca.cert, cert)
        ca_cert, ca_key = _load(self.ca)
        names = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local", socket.gethostname()) + tuple(extra_names)
        ips = ("127.0.0.1", "::1") + tuple(extra_ips)
        if not self._serving_covers(names, ips):
            cert, key = _issue(ca_cert, ca_key, "kube-apiserver", server_names=names, server_ips=ips)
            _write_key(self.serving.key, key)
            _write_cert(self.serving.cert, cert)
        if not self.admin.cert.exists():
            cert, key = _issue(ca_cert, ca_key, "system:admin", ("system:masters",), client=True)
            _write_key(self.admin.key, key)
            _write_cert(self.admin.cert, cert)
        if not self.kubelet_client.cert.exists():
            cert, key = _issue(ca_cert, ca_key, "kube-apiserver-kubelet-client", ("system:masters",), client=True)
            _write_key(self.kubelet_client.key, key)
            _write_cert(self.kubelet_client.cert, cert)

    def issue_client(self, cn: str, orgs: tuple = ()) -> tuple[bytes, bytes]:
        """A client certificate and key (PEM) for a component or user."""
        ca_cert, ca_key = _load(self.ca)
        cert, key = _issue(ca_cert, ca_key, cn, orgs, client=True)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    def _serving_covers(self, names: tuple, ips: tuple) -> bool:
        if not self.serving.cert.exists():
            return False
        cert = x509.load_pem_x509_certificate(self.serving.cert.read_bytes())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        have_names = set(san.get_values_for_type(x509.DNSName))
        have_ips = {str(i) for i in san.get_values_for_type(x509.IPAddress)}
        expires = cert.not_valid_after_utc
        fresh = expires - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=30)
        return fresh and set(names) <= have_names and {str(ipaddress.ip_address(i)) for i in ips} <= have_ips


def identity_from_peercert(peercert: dict | None) -> tuple[str, list[str]] | None:
    """(user, groups) from the dict `ssl` gives for a verified peer certificate."""
    if not peercert:
        return None
    user, groups = "", []
    for rdn in peercert.get("subject", ()):
        for attr, value in rdn:
            if attr == "commonName":
                user = value
            elif attr == "organizationName":
                groups.append(value)
    return (user, groups) if user else None
