"""Reading child objects into the engine's observation types (pure dict parsing)."""

from __future__ import annotations

from coalmine.k8s.protocol import Manifest
from coalmine.manifests import LABEL_REVISION, REVISION_ANNOTATION, revision_from_record
from coalmine.rollout.types import ChildObservation


def deployment_observation(deployment: Manifest | None) -> ChildObservation | None:
    """A Deployment as the engine sees it; None when it does not exist.

    ``updated`` needs the Deployment controller to have seen the current generation, else
    ``updatedReplicas`` describes an older template and would pass a rollout that has not
    started yet.
    """
    if deployment is None:
        return None
    meta = deployment.get("metadata", {})
    spec = deployment.get("spec", {})
    status = deployment.get("status", {})
    replicas = int(spec.get("replicas", 1))
    label = meta.get("labels", {}).get(LABEL_REVISION)
    record = meta.get("annotations", {}).get(REVISION_ANNOTATION)
    seen = int(status.get("observedGeneration", 0)) >= int(meta.get("generation", 1))
    return ChildObservation(
        revision=label,
        replicas=replicas,
        ready_replicas=int(status.get("readyReplicas", 0)),
        updated=seen and int(status.get("updatedReplicas", 0)) == replicas,
        revision_ref=revision_from_record(record, label),
    )
