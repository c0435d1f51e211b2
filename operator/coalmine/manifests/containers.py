"""The pod's two containers: the init container that fetches the model, and the server.

Both run the serving image's ``coalmine-serve`` under Pod Security "restricted": non-root,
no privilege escalation, no capabilities, RuntimeDefault seccomp, read-only root filesystem.
"""

from __future__ import annotations

from coalmine.api import ModelDeploymentSpec, RevisionRef
from coalmine.api.checks import input_features
from coalmine.api.model import S3Source
from coalmine.api.runtime import Runtime
from coalmine.manifests.artifact import (
    MODELS_DIR,
    ArtifactSource,
    artifact_source,
    model_path,
    mounts,
)
from coalmine.manifests.labels import Manifest, Variant
from coalmine.manifests.receiptkeys import KEYS_PATH, MIRROR_PATH, MOUNT_DIR, VOLUME
from coalmine.settings import OperatorSettings
from coalmine_serving import contract

SERVING_PORT = 8080
DRAIN_SECONDS = 5
"""How long a terminating server keeps answering before it is asked to stop."""


def _container_security() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


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
    revision: RevisionRef,
    source: ArtifactSource,
    runtime: Runtime,
    settings: OperatorSettings,
    s3: S3Source | None = None,
) -> Manifest:
    """Init container: copy or download the artifact into the emptyDir and verify its sha256
    before the server ever deserialises a byte of it.

    A failed fetch's last log line (``coalmine-serve: error: ArtifactAccessDenied: ...``)
    becomes its termination message, so the pod's status says why without reading logs."""
    target = model_path(revision, source)
    fetch_args = ["fetch", "--uri", source.uri, "--sha256", revision.sha256 or ""]
    fetch_args += ["--dest", MODELS_DIR, "--filename", target.rsplit("/", 1)[-1]]
    fetch_args += ["--max-bytes", str(settings.max_artifact_bytes)]
    container: Manifest = {
        "name": "fetch-model",
        "image": runtime.image or settings.default_serving_image,
        **({"imagePullPolicy": runtime.image_pull_policy} if runtime.image_pull_policy else {}),
        "command": list(settings.serve_command),
        "args": fetch_args,
        "securityContext": _container_security(),
        "resources": _resources(runtime, settings),
        "volumeMounts": mounts(source, models_read_only=False),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if source.uri.startswith("s3://"):
        fetch_args += s3_args(s3 or S3Source())
        if s3 is not None and s3.credentials_secret:
            container["env"] = s3_credentials_env(s3.credentials_secret)
    return container


def s3_args(s3: S3Source) -> list[str]:
    """Endpoint, region, and where the credentials come from: the Secret's env, or the pod's
    own identity when no Secret is named."""
    args = ["--s3-credentials", "env" if s3.credentials_secret else "identity"]
    if s3.endpoint:
        args += ["--s3-endpoint", s3.endpoint.rstrip("/")]
    if s3.region:
        args += ["--s3-region", s3.region]
    return args


def s3_credentials_env(secret: str) -> list[Manifest]:
    """References, never values: the kubelet reads the Secret when it starts the init container,
    so neither the operator (which may not read it) nor the pod spec ever holds a key. Only
    the init container gets them; the server, which runs the model, does not."""

    def ref(name: str, optional: bool = False) -> Manifest:
        selector: Manifest = {"name": secret, "key": name}
        if optional:
            selector["optional"] = True
        return {"name": name, "valueFrom": {"secretKeyRef": selector}}

    return [
        ref("AWS_ACCESS_KEY_ID"),
        ref("AWS_SECRET_ACCESS_KEY"),
        ref("AWS_SESSION_TOKEN", optional=True),
    ]


def server_args(
    spec: ModelDeploymentSpec, variant: Variant, revision: RevisionRef, settings: OperatorSettings
) -> list[str]:
    """``coalmine-serve serve`` flags: identity (the metric labels and the revision its
    receipts name), artifact, limits, the receipt keys and horizon of delayed labels, and the
    input features the drift checks compare.

    The input features come from today's spec for every revision, stable's older one too
    (``act.template_spec`` keeps ``spec.canary``): both sides must bucket identically. So a
    change of drift inputs rolls stable's pods in place; thresholds are not in the flag and
    change nothing, and without input drift checks there is no flag at all."""
    source = artifact_source(revision)
    args = [
        "serve",
        "--model-name", spec.model.name,
        "--model-version", revision.version,
        "--variant", str(variant),
        "--model-uri", model_path(revision, source),
        "--model-format", revision.format or spec.model.format.value,
        "--port", str(SERVING_PORT),
        "--max-body-bytes", str(settings.max_body_bytes),
        "--revision", revision.revision,
        "--receipt-keys-file", KEYS_PATH,
        "--feedback-horizon-seconds", _seconds(spec.feedback.horizon.total_seconds()),
    ]  # fmt: skip
    args += ["--sha256", revision.sha256] if revision.sha256 else ["--no-require-sha256"]
    args += safety_args(spec, revision, settings)
    if variant is Variant.STABLE:  # only stable mirrors (a shadow step's file is in the mount)
        args += ["--mirror-config-file", MIRROR_PATH]
    features = input_features(spec.canary.analysis.checks)
    if features:
        args += ["--input-features", contract.format_input_features(features)]
    return args


def safety_args(
    spec: ModelDeploymentSpec, revision: RevisionRef, settings: OperatorSettings
) -> list[str]:
    """Every safety setting as an explicit flag, allowed or not: a flag left out would let the
    server fall back to its ``COALMINE_SERVING_*`` environment, which a ModelDeployment must
    never set (the CRD refuses those names, and this keeps a pod from an older CRD safe too).

    Pickle is allowed only when the operator allows it and this revision is joblib; skops
    trusts the operator's list, narrowed by the ModelDeployment's ``trustedTypes`` (a type
    the operator does not trust never reaches the server, even if the spec names it)."""
    pickle = settings.allow_pickle and (revision.format or "") == "joblib"
    return [
        "--allow-pickle" if pickle else "--no-allow-pickle",
        "--skops-trusted-types", ",".join(effective_trusted_types(spec, settings)),
    ]  # fmt: skip


def effective_trusted_types(spec: ModelDeploymentSpec, settings: OperatorSettings) -> list[str]:
    """The operator's skops allowlist, or the part of it the ModelDeployment names."""
    allowed = list(settings.skops_trusted_types)
    if not spec.model.trusted_types:
        return allowed
    return [name for name in allowed if name in spec.model.trusted_types]


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
        "volumeMounts": [*mounts(source, models_read_only=True), _receipt_keys_mount()],
    }
    if runtime.image_pull_policy:
        container["imagePullPolicy"] = runtime.image_pull_policy
    return container


def _receipt_keys_mount() -> Manifest:
    # The directory, not the file (no subPath): only a directory mount sees the kubelet swap
    # in a rotated Secret; a subPath mount would keep the keys the pod started with.
    return {"name": VOLUME, "mountPath": MOUNT_DIR, "readOnly": True}


def _seconds(value: float) -> str:
    """``172800.0`` -> ``172800``; fractions stay (``0.5``)."""
    return str(int(value)) if value == int(value) else str(value)


def _probe(path: str, period: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": 2,
    }
