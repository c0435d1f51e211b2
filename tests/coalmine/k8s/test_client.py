"""The one credentials loader and the one error mapping of ``coalmine.k8s``.

No API server: a kubeconfig pointing at a closed port, and a pod's service-account files
written to a temporary directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client import configuration as client_configuration
from kubernetes.config import incluster_config, kube_config

from coalmine.k8s import (
    ApiError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    KindNotServedError,
    NotFoundError,
    ObjectRef,
    UnauthorizedError,
    UnreachableError,
    credentials,
)
from coalmine.k8s.client import _translate, connect
from coalmine.k8s.errors import NOT_SERVED_MESSAGE, error_for


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (404, 'modeldeployments.coalmine.dev "iris" not found', NotFoundError),
        (404, NOT_SERVED_MESSAGE, KindNotServedError),
        (401, "Unauthorized", UnauthorizedError),
        (403, "forbidden", ForbiddenError),
        (409, "the object has been modified", ConflictError),
        (422, "spec.paused: Invalid", ApiError),
        (500, "etcdserver: request timed out", ApiError),
    ],
)
def test_each_status_has_its_error_type(
    status: int, message: str, expected: type[ApiError]
) -> None:
    error = error_for(status, message)

    assert type(error) is expected
    assert (error.status, error.message, str(error)) == (status, message, f"{status}: {message}")


def test_a_kind_that_is_not_served_is_still_a_not_found() -> None:
    # The operator's get() returns None for both; only the plugin words them apart.
    assert isinstance(error_for(404, NOT_SERVED_MESSAGE), NotFoundError)


def test_a_plain_text_404_means_the_kind_is_not_served() -> None:
    # What the API server sends for a group nobody serves, e.g. the CRD is not installed.
    error = _translate(404, b"404 page not found\n", "Not Found")

    assert type(error) is KindNotServedError
    assert error.message == "Not Found"
    assert type(_translate(404, b'{"kind": "Status", "message": "x not found"}', "")) is (
        NotFoundError
    )


def test_the_message_comes_from_the_status_body_else_the_reason() -> None:
    body = b'{"kind": "Status", "message": "denied by policy"}'

    assert _translate(403, body, "Forbidden").message == "denied by policy"
    assert _translate(502, b"<html>bad gateway</html>", "Bad Gateway").message == "Bad Gateway"
    assert _translate(500, None, "Internal Server Error").message == "Internal Server Error"


def write_kubeconfig(path: Path, server: str = "https://127.0.0.1:1") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "plain", "context": {"cluster": "c", "user": "u"}},
                    {"name": "ml", "context": {"cluster": "c", "user": "u", "namespace": "ml"}},
                ],
                "current-context": "ml",
            }
        )
    )
    return path


@pytest.fixture
def in_a_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment and files Kubernetes gives a pod; no kubeconfig anywhere."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("pod-token")
    (account / "ca.crt").write_text("not checked until a request is made")
    (account / "namespace").write_text("coalmine-system\n")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(account / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(account / "ca.crt"))
    monkeypatch.setattr(credentials, "POD_NAMESPACE", account / "namespace")
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "absent"))
    return account


def test_a_named_kubeconfig_and_context_choose_the_namespace(tmp_path: Path) -> None:
    kubeconfig = str(write_kubeconfig(tmp_path / "config"))

    assert connect(kubeconfig).namespace == "ml"
    assert connect(kubeconfig, "plain").namespace == "default"


def test_a_named_kubeconfig_wins_over_the_pod_even_for_the_operator(
    in_a_pod: Path, tmp_path: Path
) -> None:
    kubeconfig = str(write_kubeconfig(tmp_path / "config"))

    assert connect(kubeconfig).namespace == "ml"
    assert connect(kubeconfig, prefer_in_cluster=True).namespace == "ml"


def test_in_a_pod_with_a_default_kubeconfig_only_the_operator_prefers_the_pod(
    in_a_pod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = str(write_kubeconfig(tmp_path / "config"))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", found)

    assert connect().namespace == "ml"  # a person's tool: the kubeconfig, as kubectl
    assert connect(prefer_in_cluster=True).namespace == "coalmine-system"  # as kopf logs in


def test_without_a_kubeconfig_a_pod_uses_its_service_account(in_a_pod: Path) -> None:
    default_host = client.Configuration.get_default_copy().host

    api = connect()

    assert connect(prefer_in_cluster=True).namespace == "coalmine-system"
    assert api.namespace == "coalmine-system"
    assert api._api.configuration.host == "https://10.96.0.1:443"
    assert api._api.configuration.api_key["BearerToken"].endswith(" pod-token")
    # Loaded into its own Configuration: the process-wide default is left alone.
    assert client.Configuration.get_default_copy().host == default_host


def test_a_named_kubeconfig_that_is_missing_never_falls_back_to_the_pod(
    in_a_pod: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError):
        connect(str(tmp_path / "absent"))
    with pytest.raises(ConfigError):
        connect(None, "ml")


def test_neither_kubeconfig_nor_pod_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "absent"))

    with pytest.raises(ConfigError, match="kube-config"):
        connect()


def test_a_server_that_does_not_answer_is_unreachable(tmp_path: Path) -> None:
    api = connect(str(write_kubeconfig(tmp_path / "config")), timeout=(2.0, 2.0))

    with pytest.raises(UnreachableError):
        api.get(ObjectRef("ModelDeployment", "ml", "iris"))


def test_the_environments_proxy_is_chosen_once_for_the_api_servers_address(
    in_a_pod: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain-proxy.example:3128")
    configuration = connect(prefer_in_cluster=True)._api.configuration

    assert configuration.proxy == "http://proxy.example:3128", "https:// address: its proxy"
    # The token refresh sets the host again before each request; the environment is not
    # read again for it (it was, on every request: a third of a status write's CPU).
    monkeypatch.setattr(client_configuration, "getproxies", _no_second_look)
    configuration.refresh_api_key_hook(configuration)
    assert configuration.host == "https://10.96.0.1:443"
    assert configuration.proxy == "http://proxy.example:3128"


def _no_second_look() -> dict[str, str]:
    raise AssertionError("the environment's proxies were read again")
