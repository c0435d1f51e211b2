"""The Deployment ``<name>-<variant>`` that runs one revision of the model."""

from __future__ import annotations

from coalmine.api import ModelDeploymentSpec, RevisionRef
from coalmine.api.runtime import Runtime
from coalmine.manifests.artifact import artifact_source, volumes
from coalmine.manifests.containers import SERVING_PORT, fetch_container, server_container
from coalmine.manifests.labels import (
    LABEL_MODEL,
    LABEL_REVISION,
    LABEL_VERSION,
    Manifest,
    Owner,
    Variant,
    child_name,
    metadata,
    selector,
)
from coalmine.manifests.receiptkeys import VOLUME, secret_name
from coalmine.manifests.template import (
    REVISION_ANNOTATION,
    TEMPLATE_ANNOTATION,
    revision_record,
    template_record,
)
from coalmine.settings import OperatorSettings

NONROOT_UID = 10001  # the serving image's numeric non-root user (serving/Dockerfile)


def deployment(
    owner: Owner,
    spec: ModelDeploymentSpec,
    variant: Variant,
    revision: RevisionRef,
    replicas: int,
    settings: OperatorSettings,
) -> Manifest:
    """The Deployment ``<name>-<variant>`` running ``revision`` with ``replicas`` pods.

    The selector names only the ModelDeployment and the variant: it is immutable, while the
    revision changes on promotion (stable takes the canary's revision by a rolling update).
    """
    pod_labels = _pod_labels(owner, spec, variant, revision)
    meta = metadata(owner, child_name(owner, variant), pod_labels)
    meta["annotations"] = {
        TEMPLATE_ANNOTATION: template_record(spec),
        REVISION_ANNOTATION: revision_record(revision),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": min(replicas, settings.max_replicas),
            "selector": {"matchLabels": selector(owner, variant)},
            "strategy": _rolling_update(),
            "template": {
                "metadata": {"labels": pod_labels, "annotations": _pod_annotations(spec.runtime)},
                "spec": pod_spec(owner, spec, variant, revision, settings),
            },
        },
    }


def _pod_labels(
    owner: Owner, spec: ModelDeploymentSpec, variant: Variant, revision: RevisionRef
) -> dict[str, str]:
    """The user's pod labels, then ours (which win): the selector's, revision, version, model."""
    return {
        **spec.runtime.pod_labels,
        **selector(owner, variant),
        LABEL_REVISION: revision.revision,
        LABEL_VERSION: revision.version,
        LABEL_MODEL: spec.model.name,
    }


def _rolling_update() -> Manifest:
    # Never below the desired ready count during a promotion's rolling update: stable keeps
    # serving everything while it changes revision.
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}


def _pod_annotations(runtime: Runtime) -> dict[str, str]:
    return {
        **runtime.pod_annotations,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(SERVING_PORT),
        "prometheus.io/path": "/metrics",
    }


def _receipt_keys_volume(owner: Owner) -> Manifest:
    # 0440: the server's group (fsGroup) reads the keys; no one else in the pod may.
    return {"name": VOLUME, "secret": {"secretName": secret_name(owner), "defaultMode": 0o440}}


def pod_spec(
    owner: Owner,
    spec: ModelDeploymentSpec,
    variant: Variant,
    revision: RevisionRef,
    settings: OperatorSettings,
) -> Manifest:
    """Pod Security "restricted": non-root, no escalation, no capabilities, RuntimeDefault
    seccomp, read-only root filesystem with writable emptyDirs for the model and /tmp, and
    the receipt keys as a read-only Secret volume (allowed by "restricted")."""
    runtime = spec.runtime
    source = artifact_source(revision)
    fetch = fetch_container(revision, source, runtime, settings, spec.model.s3)
    init = [fetch] if revision.sha256 else []
    pod: Manifest = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NONROOT_UID,
            "runAsGroup": NONROOT_UID,
            "fsGroup": NONROOT_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": init,
        "containers": [server_container(spec, variant, revision, source, settings)],
        "volumes": [*volumes(source, settings.max_artifact_bytes), _receipt_keys_volume(owner)],
    }
    optional = {
        "nodeSelector": runtime.node_selector or None,
        "tolerations": runtime.tolerations or None,
        "affinity": runtime.affinity,
        "topologySpreadConstraints": runtime.topology_spread_constraints or None,
        "priorityClassName": runtime.priority_class_name,
        "serviceAccountName": runtime.service_account_name,
    }
    pod.update({key: value for key, value in optional.items() if value is not None})
    return pod
