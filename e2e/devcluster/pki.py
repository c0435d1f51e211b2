"""Certificates and keys for a throwaway control plane, made with `cryptography`.

One CA signs everything: the apiserver's serving certificate and the client certificates of
the admin and the controller-manager (Kubernetes maps a client certificate's CN to the user
name and O to groups). A separate RSA key pair signs and verifies service-account tokens.
EC P-256 keys for TLS because they are generated in microseconds; RSA for the token key
because every Kubernetes version accepts RS256.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class ControlPlanePki:
    ca: CertPair
    apiserver: CertPair
    admin: CertPair
    controller_manager: CertPair
    service_account_key: Path  # private: kube-apiserver signs tokens, KCM mints them
    service_account_pub: Path  # public: kube-apiserver verifies tokens


def create_pki(directory: Path, service_ip: str = "10.0.0.1") -> ControlPlanePki:
    """Write a complete PKI under `directory` (idempotent only in the sense of overwriting)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _build_cert(_name("coalmine-devcluster-ca"), ca_key, ca_key, None, is_ca=True)
    ca = _write(directory / "ca", ca_cert, ca_key)

    def leaf(stem: str, cn: str, org: str | None, server: bool) -> CertPair:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _build_cert(
            _name(cn, org), key, ca_key, ca_cert.subject, server=server, service_ip=service_ip
        )
        return _write(directory / stem, cert, key)

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_key_path, sa_pub_path = directory / "sa.key", directory / "sa.pub"
    sa_key_path.write_bytes(_private_pem(sa_key))
    sa_key_path.chmod(0o600)
    sa_pub_path.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return ControlPlanePki(
        ca=ca,
        apiserver=leaf("apiserver", "kube-apiserver", None, server=True),
        # system:masters is bound to cluster-admin by the RBAC bootstrap policy.
        admin=leaf("admin", "coalmine-admin", "system:masters", server=False),
        controller_manager=leaf(
            "controller-manager", "system:kube-controller-manager", None, server=False
        ),
        service_account_key=sa_key_path,
        service_account_pub=sa_pub_path,
    )


def _name(common_name: str, org: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attributes)


def _build_cert(
    subject: x509.Name,
    key: _PrivateKey,
    signing_key: _PrivateKey,
    issuer: x509.Name | None,
    *,
    is_ca: bool = False,
    server: bool = False,
    service_ip: str = "10.0.0.1",
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate small clock skew
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(_key_usage(cert_sign=True), critical=True)
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(_key_usage(cert_sign=False), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(_server_names(service_ip), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _server_names(service_ip: str) -> x509.SubjectAlternativeName:
    # Clients reach the apiserver as 127.0.0.1 from the host and as the `kubernetes` service
    # (first IP of the service range, DNS names below) from inside a cluster.
    dns = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    ips = ["127.0.0.1", service_ip]
    return x509.SubjectAlternativeName(
        [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    )


def _private_pem(key: _PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _write(stem: Path, cert: x509.Certificate, key: _PrivateKey) -> CertPair:
    pair = CertPair(stem.with_suffix(".crt"), stem.with_suffix(".key"))
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(_private_pem(key))
    pair.key.chmod(0o600)
    return pair


def issue_client_cert(ca: CertPair, stem: Path, common_name: str, org: str | None) -> CertPair:
    """A client certificate signed by an existing CA (e.g. a kubelet joining the cluster:
    CN system:node:<name>, O system:nodes). Writes `<stem>.crt` and `<stem>.key`."""
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TypeError(f"unsupported CA key type in {ca.key}")
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_cert(_name(common_name, org), key, ca_key, ca_cert.subject, server=False)
    stem.parent.mkdir(parents=True, exist_ok=True)
    return _write(stem, cert, key)
