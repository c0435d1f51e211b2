"""The only place that talks to the Kubernetes API server.

``KubeApi`` is the small protocol the rest of the operator uses (routers, reconcile); unit tests
fake it. ``coalmine.k8s.client`` implements it with the official ``kubernetes`` client, which no
other module imports.
"""

from coalmine.k8s.protocol import ApiError, ConflictError, KubeApi, NotFoundError, ObjectRef

__all__ = ["ApiError", "ConflictError", "KubeApi", "NotFoundError", "ObjectRef"]
