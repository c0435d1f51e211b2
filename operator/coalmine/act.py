"""Act: make the children and the router match a decision, in a safe order.

Act only writes: everything it needs beyond the decision (the children as they are, the
runtime each one was built from) was read by observe this tick.
"""

from __future__ import annotations

from coalmine import manifests
from coalmine.api import ModelDeploymentSpec
from coalmine.k8s import KubeApi, ObjectRef
from coalmine.manifests import Variant, receiptkeys
from coalmine.rollout.types import ChildObservation, ChildPlan, Decision, Observations
from coalmine.routing import TrafficRouter
from coalmine.settings import OperatorSettings
from coalmine.subject import Subject


def act(
    kube: KubeApi,
    router: TrafficRouter,
    subject: Subject,
    observed: Observations,
    decision: Decision,
    settings: OperatorSettings,
) -> None:
    """Traffic leaves the canary before its pods change, and reaches it only after.

    Weight going down (a rollback, a spec change): router first, then Deployments, so no
    request is sent to a pod being scaled away. Weight going up: Deployments first, then the
    router. The engine additionally scales the canary down only after it has *observed* the
    router at 0, so even a crash between the two writes cannot reorder them.
    """
    if decision.mirror is None:  # mirror off first: before a rollback touches anything
        apply_mirror(kube, subject, observed, decision)
    lowering = observed.canary_weight is None or decision.canary_weight < observed.canary_weight
    if lowering:
        router.apply(subject.target, decision.canary_weight)
        apply_children(kube, subject, observed, decision, settings)
    else:
        apply_children(kube, subject, observed, decision, settings)
        router.apply(subject.target, decision.canary_weight)
    if decision.mirror is not None:  # on last: the canary's Service exists by now
        apply_mirror(kube, subject, observed, decision)


def apply_mirror(
    kube: KubeApi, subject: Subject, observed: Observations, decision: Decision
) -> None:
    """Write where stable mirrors into the receipt-key Secret (``mirror.json``) when it
    changed. The target is the canary Service's ClusterIP, not its DNS name: it needs no
    cluster DNS, and no other resolver can redirect it."""
    seen = observed.mirror
    if seen.file is None:
        return  # receipts creates the Secret before any pod; nothing mounts it yet
    mirror = decision.mirror
    wanted = "{}"
    if mirror is not None:
        wanted = receiptkeys.render_mirror(
            seen.canary_address, mirror.share, mirror.canary.revision
        )
    if seen.file != wanted:
        secret = ObjectRef("Secret", subject.ref.namespace, receiptkeys.secret_name(subject.owner))
        kube.merge_patch(secret, receiptkeys.mirror_patch(wanted))


def template_spec(
    observed: Observations, spec: ModelDeploymentSpec, revision: str
) -> ModelDeploymentSpec:
    """The spec to build ``revision``'s pods from. The spec's own revision uses the spec; an
    older one (stable while a canary runs, or being promoted to) uses the runtime recorded on
    the Deployment that runs it, so runtime changes reach pods only through a canary."""
    if revision == spec.revision():
        return spec
    children: tuple[ChildObservation | None, ...] = (observed.stable, observed.canary)
    for child in children:
        if child is not None and child.template and child.revision == revision:
            return manifests.spec_for_record(spec, child.template)
    return spec  # no Deployment remembers it (created by an older operator): best effort


def apply_children(
    kube: KubeApi,
    subject: Subject,
    observed: Observations,
    decision: Decision,
    settings: OperatorSettings,
) -> None:
    plans: tuple[tuple[Variant, ChildPlan | None], ...] = (
        (Variant.STABLE, decision.stable),
        (Variant.CANARY, decision.canary),
    )
    for variant, plan in plans:
        if plan is not None:
            built_from = template_spec(observed, subject.spec, plan.revision.revision)
            kube.apply(
                manifests.deployment(
                    subject.owner, built_from, variant, plan.revision, plan.replicas, settings
                )
            )
    if decision.canary is None and observed.canary is not None and observed.canary.replicas > 0:
        # Scale subresource: zero pods without rewriting the template the canary last ran,
        # so its revision stays visible for a post-mortem and a retry.
        kube.scale(subject.child(Variant.CANARY), 0)
