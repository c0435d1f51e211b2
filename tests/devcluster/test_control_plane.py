"""The control-plane fixture is a real Kubernetes: controllers reconcile, RBAC and admission act."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from e2e.devcluster.controlplane import ControlPlane
from e2e.devcluster.process import wait_until

pytestmark = pytest.mark.integration

RECONCILE_TIMEOUT = 60.0


def api_client_for(kubeconfig: Path) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call,unused-ignore]
        config_file=str(kubeconfig)
    )
    return api


@pytest.fixture(scope="module")
def admin(control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    with api_client_for(control_plane.kubeconfig) as api:
        yield api


@pytest.fixture
def namespace(admin: client.ApiClient) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def _gone(read: Callable[[], Any]) -> bool | None:
    """For wait_until: True once `read` raises 404, None while the object still exists."""
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return None


def _deployment(name: str) -> client.V1Deployment:
    labels = {"app": name}
    container = client.V1Container(name="web", image="registry.invalid/web:1")
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container]),
            ),
        ),
    )


def test_version_is_the_pinned_release(admin: client.ApiClient) -> None:
    info = client.VersionApi(admin).get_code()
    assert info.git_version == "v1.35.4"


def test_a_deployment_gets_a_replicaset_from_the_controller_manager(
    admin: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(admin)
    created = apps.create_namespaced_deployment(namespace, _deployment("web"))
    assert created.metadata is not None
    owner_uid = created.metadata.uid

    def owned_replicasets() -> list[client.V1ReplicaSet] | None:
        items = apps.list_namespaced_replica_set(namespace).items
        owned = [
            rs
            for rs in items
            if rs.metadata is not None
            and any(ref.uid == owner_uid for ref in rs.metadata.owner_references or [])
        ]
        return owned or None

    [replicaset] = wait_until(
        owned_replicasets, timeout=RECONCILE_TIMEOUT, what="the Deployment's ReplicaSet"
    )
    assert replicaset.spec.replicas == 1


def test_deleting_an_owner_garbage_collects_its_children(
    admin: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    assert owner.metadata is not None
    reference = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    child_meta = client.V1ObjectMeta(name="child", owner_references=[reference])
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=child_meta))

    core.delete_namespaced_config_map("owner", namespace)

    wait_until(
        lambda: _gone(lambda: core.read_namespaced_config_map("child", namespace)),
        timeout=RECONCILE_TIMEOUT,
        what="garbage collection of the child",
    )


def test_a_namespace_with_content_can_be_deleted(admin: client.ApiClient) -> None:
    core = client.CoreV1Api(admin)
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    core.create_namespaced_config_map(
        name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="content"))
    )

    core.delete_namespace(name)

    wait_until(
        lambda: _gone(lambda: core.read_namespace(name)),
        timeout=RECONCILE_TIMEOUT,
        what=f"namespace {name} to finish terminating",
    )


def test_pod_security_admission_rejects_a_privileged_pod(
    admin: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(admin)
    restricted = {"pod-security.kubernetes.io/enforce": "restricted"}
    core.patch_namespace(namespace, {"metadata": {"labels": restricted}})
    privileged = client.V1Container(
        name="c",
        image="registry.invalid/x:1",
        security_context=client.V1SecurityContext(privileged=True),
    )
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"), spec=client.V1PodSpec(containers=[privileged])
    )

    with pytest.raises(ApiException) as rejected:
        core.create_namespaced_pod(namespace, pod)

    assert rejected.value.status == 403
    assert "violates PodSecurity" in str(rejected.value.body)


def test_a_service_account_kubeconfig_has_only_the_rbac_granted_to_it(
    control_plane: ControlPlane, admin: client.ApiClient, namespace: str
) -> None:
    kubeconfig = control_plane.kubeconfig_for_service_account(namespace, "operator")
    with api_client_for(kubeconfig) as as_operator:
        operator_core = client.CoreV1Api(as_operator)
        with pytest.raises(ApiException) as forbidden:
            operator_core.list_namespaced_config_map(namespace)
        assert forbidden.value.status == 403

        _grant_configmap_read(admin, namespace, "operator")

        # RBAC changes reach the authorizer through an informer: poll, do not sleep.
        wait_until(
            lambda: operator_core.list_namespaced_config_map(namespace),
            timeout=RECONCILE_TIMEOUT,
            what="the RoleBinding to take effect",
        )
        with pytest.raises(ApiException) as still_forbidden:
            operator_core.list_namespaced_secret(namespace)
        assert still_forbidden.value.status == 403


def _grant_configmap_read(admin: client.ApiClient, namespace: str, account: str) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    rule = client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])
    rbac.create_namespaced_role(
        namespace, client.V1Role(metadata=client.V1ObjectMeta(name="read-cm"), rules=[rule])
    )
    subject = client.RbacV1Subject(kind="ServiceAccount", name=account, namespace=namespace)
    binding = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="read-cm"),
        role_ref=client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="Role", name="read-cm"
        ),
        subjects=[subject],
    )
    rbac.create_namespaced_role_binding(namespace, binding)
