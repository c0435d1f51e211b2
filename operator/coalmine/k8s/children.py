"""Reading child objects into the engine's observation types (pure dict parsing)."""

from __future__ import annotations

from coalmine.k8s.protocol import Manifest
from coalmine.manifests import LABEL_REVISION, REVISION_ANNOTATION, revision_from_record
from coalmine.rollout.types import ChildObservation


def deployment_observation(deployment: Manifest | None) -> ChildObservation | None:
    """A Deployment as the engine sees it; None when it does not exist.

    ``updated`` is ``kubectl rollout status``'s test of a finished rollout:

    - the Deployment controller has seen the current generation, else ``updatedReplicas``
      describes an older template and would pass a rollout that has not started yet;
    - every desired pod is of the current template;
    - and no pod of an older template is left (``status.replicas`` counts them all). While
      one is, ``readyReplicas`` counts it: a canary just switched to a new revision surges
      one new pod beside its old ready one, and would look ready on the new revision before
      that pod has loaded its model (and take the step's traffic to the old pod).
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
    current = int(status.get("updatedReplicas", 0))
    rolled_out = current == replicas and int(status.get("replicas", 0)) == current
    return ChildObservation(
        revision=label,
        replicas=replicas,
        ready_replicas=int(status.get("readyReplicas", 0)),
        updated=seen and rolled_out,
        revision_ref=revision_from_record(record, label),
    )
