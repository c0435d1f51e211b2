"""The only place that talks to the Kubernetes API server, for the operator and the plugin.

``KubeApi`` (what the operator does) and ``UserApi`` (what ``kubectl coalmine`` does) are the
protocols the rest of the code uses; unit tests fake them. ``coalmine.k8s.client`` implements
both with the official ``kubernetes`` client, over the one credentials loader in
``coalmine.k8s.credentials``; no module outside this package imports ``kubernetes`` (an
import-linter contract says so). Every failure is one of the errors in ``coalmine.k8s.errors``,
re-exported here.
"""

from coalmine.k8s.errors import (
    ApiError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    KindNotServedError,
    KubeError,
    NotFoundError,
    UnauthorizedError,
    UnreachableError,
)
from coalmine.k8s.protocol import KubeApi, Manifest, ObjectRef, UserApi

__all__ = [
    "ApiError",
    "ConfigError",
    "ConflictError",
    "ForbiddenError",
    "KindNotServedError",
    "KubeApi",
    "KubeError",
    "Manifest",
    "NotFoundError",
    "ObjectRef",
    "UnauthorizedError",
    "UnreachableError",
    "UserApi",
]
