"""``spec.runtime``: how the model server pods run."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from coalmine.api.base import ApiModel
from coalmine.api.rules import Rule, RuleChecked

# Kubernetes quantities are written as strings ("500m", "1Gi") or plain numbers.
Quantity = Annotated[
    str | int,
    WithJsonSchema(
        {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    ),
]
# Embedded core/v1 types we pass through to the pod unchanged; the API server validates them
# when the Deployment is created, so the CRD does not duplicate their schemas.
PassThrough = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]


class Resources(ApiModel):
    """CPU and memory for the model server container."""

    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}


# The server reads COALMINE_SERVING_*: its safety settings come from the operator (as flags),
# never from a ModelDeployment. Fault injection is the one exception: it only degrades this
# model's own answers, and chaos drills (and our rollback tests) need it per revision.
RESERVED_ENV_PREFIX = "COALMINE_"
FAULT_ENV_NAMES = (
    "COALMINE_SERVING_FAULT_ERROR_RATE",
    "COALMINE_SERVING_FAULT_LATENCY_SECONDS",
    "COALMINE_SERVING_FAULT_LATENCY_RATE",
)
# Names that make the Python process, the dynamic loader, OpenSSL or glibc load code or
# modules from a path of the author's choice (a pvc:// claim is mounted in the pod, so a
# path can point at their own files): PYTHONPATH, PYTHONSTARTUP, PYTHONHOME, PYTHONWARNINGS
# (imports a warning category's module), LD_PRELOAD, LD_AUDIT, OPENSSL_CONF (loads engines),
# GCONV_PATH, and PATH (how `coalmine-serve` itself is found).
CODE_LOADING_ENV_PREFIXES = ("PYTHON", "LD_", "DYLD_", "OPENSSL_", "GCONV_")
CODE_LOADING_ENV_NAMES = ("PATH", "LOCPATH", "NLSPATH")
# PYTHON* switches that change only buffering, hashing, bytecode files or crash dumps.
HARMLESS_PYTHON_ENV_NAMES = (
    "PYTHONUNBUFFERED",
    "PYTHONHASHSEED",
    "PYTHONFAULTHANDLER",
    "PYTHONDONTWRITEBYTECODE",
)


def _cel_list(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{name}'" for name in names) + "]"


def _reserved(name: str) -> bool:
    return name.startswith(RESERVED_ENV_PREFIX) and name not in FAULT_ENV_NAMES


def _loads_code(name: str) -> bool:
    if name in HARMLESS_PYTHON_ENV_NAMES:
        return False
    return name in CODE_LOADING_ENV_NAMES or name.startswith(CODE_LOADING_ENV_PREFIXES)


class EnvVar(ApiModel, RuleChecked):
    """An environment variable of the model server container (``value`` or ``valueFrom``).

    Names the server takes settings from (``COALMINE_*``) and names that make the process
    load code (``PYTHONPATH``, ``LD_PRELOAD``, ...) are refused: see docs/operator.md."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    value: str | None = None
    value_from: PassThrough | None = None

    __rules__ = (
        Rule(
            cel=f"!self.name.startsWith('{RESERVED_ENV_PREFIX}') "
            f"|| self.name in {_cel_list(FAULT_ENV_NAMES)}",
            message="spec.runtime.env.name: COALMINE_* names are reserved, the model server "
            "takes its settings from the operator (only COALMINE_SERVING_FAULT_ERROR_RATE, "
            "COALMINE_SERVING_FAULT_LATENCY_SECONDS and COALMINE_SERVING_FAULT_LATENCY_RATE "
            "may be set)",
            holds=lambda env: not _reserved(env.name),
            field_path=".name",
        ),
        Rule(
            cel=f"self.name in {_cel_list(HARMLESS_PYTHON_ENV_NAMES)} "
            f"|| !(self.name in {_cel_list(CODE_LOADING_ENV_NAMES)} "
            f"|| {_cel_list(CODE_LOADING_ENV_PREFIXES)}.exists(p, self.name.startsWith(p)))",
            message="spec.runtime.env.name: names that make the server load code are refused "
            "(PATH, LOCPATH, NLSPATH, PYTHON*, LD_*, DYLD_*, OPENSSL_*, GCONV_*; allowed: "
            "PYTHONUNBUFFERED, PYTHONHASHSEED, PYTHONFAULTHANDLER, PYTHONDONTWRITEBYTECODE)",
            holds=lambda env: not _loads_code(env.name),
            field_path=".name",
        ),
    )


class Runtime(ApiModel):
    """The pods that serve each revision."""

    image: Annotated[str | None, Field(max_length=512)] = None
    """Serving image; defaults to the operator's ``defaultServingImage``. Any other image must
    match the operator's ``allowedImages``."""

    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    replicas: Annotated[int, Field(ge=1, le=1000)] = 1
    """Pods of the stable revision (the canary's count follows from the traffic weight)."""

    resources: Resources | None = None
    env: Annotated[list[EnvVar], Field(max_length=128)] = []
    node_selector: dict[str, str] = {}
    tolerations: list[PassThrough] = []
    affinity: PassThrough | None = None
    topology_spread_constraints: list[PassThrough] = []
    priority_class_name: str | None = None
    service_account_name: str | None = None
    """Account for the model pods; only names in the operator's ``allowedServiceAccounts``.
    Its token is never mounted into the pod."""

    pod_labels: dict[str, str] = {}
    pod_annotations: dict[str, str] = {}
