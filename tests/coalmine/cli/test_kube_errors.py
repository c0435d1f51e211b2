"""How API errors and kubeconfig contexts become what a person sees (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from coalmine.cli.cluster import CliError, ForbiddenError, NotFoundError, UnreachableError
from coalmine.cli.kube import RESOURCE, _context_namespace, _translate, connect


def api_error(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="Reason")
    error.body = json.dumps({"kind": "Status", "message": message})
    return error


def test_404_on_the_object_suggests_another_namespace() -> None:
    error = _translate(api_error(404, "not found"), "get", RESOURCE, "iris", "ml")

    assert isinstance(error, NotFoundError)
    assert error.message == (
        "ModelDeployment 'iris' not found in namespace 'ml' "
        "(try -n NAMESPACE, or `kubectl get mdeploy -A`)"
    )


def test_404_without_the_crd_says_to_install_it() -> None:
    message = "the server could not find the requested resource"
    error = _translate(api_error(404, message), "get", RESOURCE, "iris", "ml")

    assert isinstance(error, NotFoundError)
    assert error.message.startswith(
        "this cluster does not serve modeldeployments.coalmine.dev: install the coalmine CRD"
    )


def test_403_names_verb_resource_and_namespace_and_keeps_the_server_message() -> None:
    detail = 'modeldeployments.coalmine.dev "iris" is forbidden: User "ann" cannot patch'
    error = _translate(api_error(403, detail), "patch", RESOURCE, "iris", "ml")

    assert isinstance(error, ForbiddenError)
    assert error.exit_code == 4
    assert "missing RBAC verb 'patch' on 'modeldeployments.coalmine.dev'" in error.message
    assert error.message.endswith(f"Server said: {detail}")


def test_other_statuses_keep_the_http_code() -> None:
    error = _translate(api_error(422, "spec.paused: Invalid"), "patch", RESOURCE, "iris", "ml")

    assert type(error) is CliError
    assert (
        error.message
        == "patch modeldeployments.coalmine.dev 'iris' failed: HTTP 422: spec.paused: Invalid"
    )


def write_kubeconfig(path: Path) -> Path:
    cluster = {"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
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


def test_namespace_comes_from_the_chosen_context(tmp_path: Path) -> None:
    kubeconfig = str(write_kubeconfig(tmp_path / "config"))

    assert _context_namespace(kubeconfig, None) == "ml"
    assert _context_namespace(kubeconfig, "plain") == "default"
    assert connect(kubeconfig, "plain", "other").namespace == "other"


def test_missing_kubeconfig_is_reported_as_no_cluster(tmp_path: Path) -> None:
    with pytest.raises(UnreachableError, match="no usable kubeconfig"):
        connect(str(tmp_path / "absent"), None, None)
