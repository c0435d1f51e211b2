"""The generated PKI says what Kubernetes needs: who each certificate is, and for what."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from e2e.devcluster.kubeconfig import write_kubeconfig
from e2e.devcluster.pki import create_pki


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_every_certificate_is_signed_by_the_ca(tmp_path: Path) -> None:
    pki = create_pki(tmp_path)
    ca = _load(pki.ca.cert)

    for pair in (pki.apiserver, pki.admin, pki.controller_manager):
        _load(pair.cert).verify_directly_issued_by(ca)


def test_the_admin_is_in_system_masters_and_a_client_only(tmp_path: Path) -> None:
    admin = _load(create_pki(tmp_path).admin.cert)

    [org] = admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    usages = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert org.value == "system:masters"
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_the_apiserver_certificate_covers_loopback_and_the_service_names(tmp_path: Path) -> None:
    server = _load(create_pki(tmp_path, service_ip="10.0.0.1").apiserver.cert)

    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("10.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "kubernetes.default.svc" in names.get_values_for_type(x509.DNSName)


def test_private_keys_and_kubeconfigs_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    pki = create_pki(tmp_path / "pki")
    kubeconfig = write_kubeconfig(
        tmp_path / "kc", server="https://127.0.0.1:1", ca_cert=pki.ca.cert, user="u", token="t"
    )

    for secret in (pki.ca.key, pki.admin.key, pki.service_account_key, kubeconfig):
        assert secret.stat().st_mode & 0o077 == 0
    assert yaml.safe_load(kubeconfig.read_text())["users"][0]["user"] == {"token": "t"}
