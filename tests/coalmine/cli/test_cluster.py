"""How ``coalmine.k8s`` errors and kubeconfigs become what a person sees (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coalmine.cli.cluster import (
    FAILED,
    FORBIDDEN,
    NO_CLUSTER,
    NOT_FOUND,
    RESOURCE,
    CliError,
    connect,
    phrase,
)
from coalmine.k8s import UnreachableError
from coalmine.k8s.errors import error_for
from tests.coalmine.k8s.test_client import write_kubeconfig


def test_404_on_the_object_suggests_another_namespace() -> None:
    error = phrase(error_for(404, "not found"), "get", RESOURCE, "iris", "ml")

    assert error.exit_code == NOT_FOUND == 3
    assert error.message == (
        "ModelDeployment 'iris' not found in namespace 'ml' "
        "(try -n NAMESPACE, or `kubectl get mdeploy -A`)"
    )


def test_404_without_the_crd_says_to_install_it() -> None:
    message = "the server could not find the requested resource"
    error = phrase(error_for(404, message), "get", RESOURCE, "iris", "ml")

    assert error.exit_code == NOT_FOUND
    assert error.message.startswith(
        "this cluster does not serve modeldeployments.coalmine.dev: install the coalmine CRD"
    )


def test_404_on_another_resource_names_it() -> None:
    error = phrase(error_for(404, "gone"), "list", "events", "iris", "ml")

    assert error.exit_code == NOT_FOUND
    assert error.message == "events: not found: gone (is the coalmine CRD installed?)"


def test_403_names_verb_resource_and_namespace_and_keeps_the_server_message() -> None:
    detail = 'modeldeployments.coalmine.dev "iris" is forbidden: User "ann" cannot patch'
    error = phrase(error_for(403, detail), "patch", RESOURCE, "iris", "ml")

    assert error.exit_code == FORBIDDEN == 4
    assert "missing RBAC verb 'patch' on 'modeldeployments.coalmine.dev'" in error.message
    assert error.message.endswith(f"Server said: {detail}")


def test_401_and_no_answer_mean_no_cluster() -> None:
    rejected = phrase(error_for(401, "Unauthorized"), "get", RESOURCE, "iris", "ml")
    silent = phrase(UnreachableError("connection refused"), "get", RESOURCE, "iris", "ml")

    assert (rejected.exit_code, silent.exit_code) == (NO_CLUSTER, NO_CLUSTER) == (5, 5)
    assert rejected.message == "unauthorized: your credentials were rejected (Unauthorized)"
    assert silent.message == "cannot reach the Kubernetes API server: connection refused"


def test_other_statuses_keep_the_http_code() -> None:
    error = phrase(error_for(422, "spec.paused: Invalid"), "patch", RESOURCE, "iris", "ml")

    assert type(error) is CliError
    assert error.exit_code == FAILED == 1
    assert (
        error.message
        == "patch modeldeployments.coalmine.dev 'iris' failed: HTTP 422: spec.paused: Invalid"
    )


def test_namespace_comes_from_the_chosen_context_unless_given(tmp_path: Path) -> None:
    kubeconfig = str(write_kubeconfig(tmp_path / "config"))

    assert connect(kubeconfig, None, None).namespace == "ml"
    assert connect(kubeconfig, "plain", None).namespace == "default"
    assert connect(kubeconfig, "plain", "other").namespace == "other"


def test_missing_kubeconfig_is_reported_as_no_cluster(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="no usable kubeconfig") as raised:
        connect(str(tmp_path / "absent"), None, None)

    assert raised.value.exit_code == NO_CLUSTER
