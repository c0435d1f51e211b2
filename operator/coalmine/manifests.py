"""Pure builders of the children of a ModelDeployment: Deployments, Services, an HTTPRoute.

No I/O: each function maps the spec (and the revision a child must run) to the dict that is
server-side applied. Every child carries an ownerReference to its ModelDeployment, so deleting
the ModelDeployment lets the garbage collector remove them all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from coalmine.api import API_VERSION, KIND, ModelDeploymentSpec, RevisionRef
from coalmine.api.runtime import Runtime
from coalmine.settings import OperatorSettings

Variant = Literal["stable", "canary"]
Manifest = dict[str, Any]

LABEL_MD = "coalmine.dev/model-deployment"
LABEL_VARIANT = "coalmine.dev/variant"
LABEL_REVISION = "coalmine.dev/revision"
LABEL_VERSION = "coalmine.dev/version"
LABEL_MODEL = "coalmine.dev/model"
TEMPLATE_ANNOTATION = "coalmine.dev/template"
"""The runtime a revision was built with, so a later spec (with another runtime) can rebuild
that revision's pods unchanged: a canary's new env or image must never leak into stable."""
MANAGED_BY = {"app.kubernetes.io/managed-by": "coalmine-operator"}

SERVING_PORT = 8080
MODELS_DIR = "/models"
PVC_ROOT = "/mnt/pvc"
NONROOT_UID = 10001  # the serving image's numeric non-root user (serving/Dockerfile)
FORMAT_SUFFIX = {"onnx": "onnx", "skops": "skops", "joblib": "joblib"}


@dataclass(frozen=True)
class Owner:
    """The ModelDeployment that owns the children."""

    name: str
    namespace: str
    uid: str


def owner_reference(owner: Owner) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_name(owner: Owner, variant: Variant) -> str:
    return f"{owner.name}-{variant}"


def _metadata(owner: Owner, name: str, labels: dict[str, str]) -> Manifest:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": {**MANAGED_BY, LABEL_MD: owner.name, **labels},
        "ownerReferences": [owner_reference(owner)],
    }


def selector(owner: Owner, variant: Variant | None) -> dict[str, str]:
    """Pods of one variant, or of both when ``variant`` is None (the replicas router's split)."""
    labels = {LABEL_MD: owner.name}
    if variant is not None:
        labels[LABEL_VARIANT] = variant
    return labels


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
    pod_labels = {
        **spec.runtime.pod_labels,
        **selector(owner, variant),
        LABEL_REVISION: revision.revision,
        LABEL_VERSION: revision.version,
        LABEL_MODEL: spec.model.name,
    }
    metadata = _metadata(owner, child_name(owner, variant), pod_labels)
    metadata["annotations"] = {TEMPLATE_ANNOTATION: template_record(spec)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": min(replicas, settings.max_replicas),
            "selector": {"matchLabels": selector(owner, variant)},
            # Never below the desired ready count during a promotion's rolling update:
            # stable keeps serving everything while it changes revision.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
            "template": {
                "metadata": {"labels": pod_labels, "annotations": _pod_annotations(spec.runtime)},
                "spec": pod_spec(spec, variant, revision, settings),
            },
        },
    }


def template_record(spec: ModelDeploymentSpec) -> str:
    record = {"runtime": spec.runtime.to_manifest(), "trustedTypes": spec.model.trusted_types}
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def spec_for_record(spec: ModelDeploymentSpec, record: str) -> ModelDeploymentSpec:
    """``spec`` with the runtime and trusted types a Deployment's template record holds."""
    data = json.loads(record)
    model = spec.model.model_copy(update={"trusted_types": list(data.get("trustedTypes", []))})
    return spec.model_copy(
        update={"runtime": Runtime.model_validate(data["runtime"]), "model": model}
    )


def _pod_annotations(runtime: Runtime) -> dict[str, str]:
    return {
        **runtime.pod_annotations,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(SERVING_PORT),
        "prometheus.io/path": "/metrics",
    }


DRAIN_SECONDS = 5
"""How long a terminating server keeps answering before it is asked to stop."""


def pod_spec(
    spec: ModelDeploymentSpec, variant: Variant, revision: RevisionRef, settings: OperatorSettings
) -> Manifest:
    """Pod Security "restricted": non-root, no escalation, no capabilities, RuntimeDefault
    seccomp, read-only root filesystem with writable emptyDirs for the model and /tmp."""
    runtime = spec.runtime
    source = artifact_source(revision)
    init = [fetch_container(revision, source, runtime, settings)] if revision.sha256 else []
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
        "volumes": _volumes(source),
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


@dataclass(frozen=True)
class ArtifactSource:
    """Where the init container reads the artifact, and the PVC to mount for ``pvc://``."""

    uri: str
    claim: str | None = None


def artifact_source(revision: RevisionRef) -> ArtifactSource:
    """``pvc://claim/path`` becomes a read-only mount and a ``file://`` path inside it."""
    if revision.uri.startswith("pvc://"):
        claim, _, path = revision.uri[len("pvc://") :].partition("/")
        return ArtifactSource(uri=f"file://{PVC_ROOT}/{claim}/{path}", claim=claim)
    return ArtifactSource(uri=revision.uri)


def model_path(revision: RevisionRef, source: ArtifactSource) -> str:
    """Where the server loads the model: the verified copy, or the source when no digest is
    pinned (allowed only for local URIs by the API; the server then skips the check)."""
    if revision.sha256:
        return f"{MODELS_DIR}/model.{FORMAT_SUFFIX.get(revision.format or '', 'bin')}"
    return source.uri


def _container_security() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _mounts(source: ArtifactSource, models_read_only: bool) -> list[Manifest]:
    mounts: list[Manifest] = [
        {"name": "models", "mountPath": MODELS_DIR, "readOnly": models_read_only},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if source.claim:
        mounts.append(
            {"name": "artifact", "mountPath": f"{PVC_ROOT}/{source.claim}", "readOnly": True}
        )
    return mounts


def _volumes(source: ArtifactSource) -> list[Manifest]:
    volumes: list[Manifest] = [
        {"name": "models", "emptyDir": {}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
    ]
    if source.claim:
        volumes.append(
            {
                "name": "artifact",
                "persistentVolumeClaim": {"claimName": source.claim, "readOnly": True},
            }
        )
    return volumes


def _resources(runtime: Runtime, settings: OperatorSettings) -> Manifest:
    if runtime.resources is not None:
        return runtime.resources.to_manifest()
    return {
        "requests": {
            "cpu": settings.default_cpu_request,
            "memory": settings.default_memory_request,
        },
        "limits": {"memory": settings.default_memory_limit},
    }


def fetch_container(
    revision: RevisionRef, source: ArtifactSource, runtime: Runtime, settings: OperatorSettings
) -> Manifest:
    """Init container: copy or download the artifact into the emptyDir and verify its sha256
    before the server ever deserialises a byte of it."""
    target = model_path(revision, source)
    fetch_args = ["fetch", "--uri", source.uri, "--sha256", revision.sha256 or ""]
    fetch_args += ["--dest", MODELS_DIR, "--filename", target.rsplit("/", 1)[-1]]
    return {
        "name": "fetch-model",
        "image": runtime.image or settings.default_serving_image,
        **({"imagePullPolicy": runtime.image_pull_policy} if runtime.image_pull_policy else {}),
        "command": list(settings.serve_command),
        "args": fetch_args,
        "securityContext": _container_security(),
        "resources": _resources(runtime, settings),
        "volumeMounts": _mounts(source, models_read_only=False),
    }


def server_args(
    spec: ModelDeploymentSpec, variant: Variant, revision: RevisionRef, settings: OperatorSettings
) -> list[str]:
    """``coalmine-serve serve`` flags: identity (the metric labels), artifact, limits."""
    source = artifact_source(revision)
    args = [
        "serve",
        "--model-name", spec.model.name,
        "--model-version", revision.version,
        "--variant", variant,
        "--model-uri", model_path(revision, source),
        "--model-format", revision.format or spec.model.format.value,
        "--port", str(SERVING_PORT),
        "--max-body-bytes", str(settings.max_body_bytes),
    ]  # fmt: skip
    args += ["--sha256", revision.sha256] if revision.sha256 else ["--no-require-sha256"]
    if settings.allow_pickle and (revision.format or "") == "joblib":
        args.append("--allow-pickle")
    trusted = [*settings.skops_trusted_types, *spec.model.trusted_types]
    if trusted:
        args += ["--skops-trusted-types", ",".join(trusted)]
    return args


def server_container(
    spec: ModelDeploymentSpec,
    variant: Variant,
    revision: RevisionRef,
    source: ArtifactSource,
    settings: OperatorSettings,
) -> Manifest:
    runtime = spec.runtime
    container: Manifest = {
        "name": "server",
        "image": runtime.image or settings.default_serving_image,
        "command": list(settings.serve_command),
        "args": server_args(spec, variant, revision, settings),
        "env": [env.to_manifest() for env in runtime.env],
        "ports": [{"name": "http", "containerPort": SERVING_PORT, "protocol": "TCP"}],
        # Ready means loaded and warmed up; live means the process answers. Kept apart so a
        # slow model load never gets the container killed.
        "readinessProbe": _probe("/v2/health/ready", period=5, failures=3),
        "livenessProbe": _probe("/v2/health/live", period=10, failures=6),
        "startupProbe": _probe("/v2/health/live", period=2, failures=60),
        # A terminating pod leaves the Service's endpoints at once, but every kube-proxy (or
        # gateway) needs a moment to notice; keep serving meanwhile so no client request is
        # refused during a rolling promotion or a scale-down. The sleep action needs no shell.
        "lifecycle": {"preStop": {"sleep": {"seconds": DRAIN_SECONDS}}},
        "securityContext": _container_security(),
        "resources": _resources(runtime, settings),
        "volumeMounts": _mounts(source, models_read_only=True),
    }
    if runtime.image_pull_policy:
        container["imagePullPolicy"] = runtime.image_pull_policy
    return container


def _probe(path: str, period: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }


def service(owner: Owner, name: str, port: int, pod_selector: dict[str, str]) -> Manifest:
    """A ClusterIP Service on the servers' ``http`` port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, name, {}),
        "spec": {
            "type": "ClusterIP",
            "selector": pod_selector,
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def client_service(owner: Owner, spec: ModelDeploymentSpec, both_variants: bool) -> Manifest:
    """``replicas`` router: the one Service clients call. Spanning both variants splits
    traffic by ready pods; stable-only takes the canary out of traffic without killing it."""
    chosen: Variant | None = None if both_variants else "stable"
    return service(owner, owner.name, spec.traffic.port, selector(owner, chosen))


def variant_service(owner: Owner, spec: ModelDeploymentSpec, variant: Variant) -> Manifest:
    """``gatewayAPI`` router: one Service per variant, the HTTPRoute's backends."""
    return service(owner, child_name(owner, variant), spec.traffic.port, selector(owner, variant))


def http_route(owner: Owner, spec: ModelDeploymentSpec, canary_weight: int) -> Manifest:
    """The weighted HTTPRoute: stable gets ``100 - w``, canary ``w``."""
    route = spec.traffic.gateway_api
    if route is None:
        raise ValueError("spec.traffic.gatewayAPI is required for the gatewayAPI router")
    backends = [
        {
            "name": child_name(owner, "stable"),
            "port": spec.traffic.port,
            "weight": 100 - canary_weight,
        },
        {"name": child_name(owner, "canary"), "port": spec.traffic.port, "weight": canary_weight},
    ]
    body: Manifest = {
        "parentRefs": [ref.to_manifest() for ref in route.parent_refs],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": route.path_prefix}}],
                "backendRefs": backends,
            }
        ],
    }
    if route.hostnames:
        body["hostnames"] = list(route.hostnames)
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _metadata(owner, owner.name, {}),
        "spec": body,
    }
