"""One level-triggered reconcile: observe -> decide (the pure engine) -> act -> write status.

Every tick re-reads the ModelDeployment from the API server (a timer's cached body can lag
behind the status written by the previous tick) and keeps nothing in memory: all rollout
state is in ``.status``, with timestamps, so a restarted operator continues where it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from coalmine import rollout
from coalmine.act import act
from coalmine.api import API_VERSION, KIND, ModelDeployment, ModelDeploymentSpec
from coalmine.api.status import Condition, ModelDeploymentStatus, Phase
from coalmine.controls import annotations_for
from coalmine.k8s import KubeApi, ObjectRef
from coalmine.manifests import Owner
from coalmine.observe import ProviderFactory, observe
from coalmine.rollout.types import Decision, Observations
from coalmine.routing import RouteTarget, make_router
from coalmine.settings import OperatorSettings

log = logging.getLogger(__name__)

DecideFn = Callable[[ModelDeploymentSpec, ModelDeploymentStatus, Observations, datetime], Decision]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    """Everything a reconcile talks to, injected so unit tests pass fakes of our interfaces."""

    kube: KubeApi
    providers: ProviderFactory
    settings: OperatorSettings
    clock: Callable[[], datetime] = utcnow
    decide: DecideFn | None = None

    def decide_fn(self) -> DecideFn:
        return self.decide or rollout.decide


def reconcile(deps: Deps, namespace: str, name: str) -> float | None:
    """Run one tick for one ModelDeployment; returns seconds until the next tick is needed
    (None when the object is gone or cannot be acted on)."""
    ref = ObjectRef(KIND, namespace, name)
    body = deps.kube.get(ref)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None  # being deleted: ownerReferences and the garbage collector clean up
    try:
        md = ModelDeployment.from_manifest(body)
    except ValidationError as exc:
        _report_invalid(deps, ref, body, exc)
        return None
    decision = run_tick(deps, md, body["metadata"]["uid"])
    return decision.requeue_after


def run_tick(deps: Deps, md: ModelDeployment, uid: str) -> Decision:
    namespace = md.metadata.namespace or "default"
    owner = Owner(name=md.metadata.name, namespace=namespace, uid=uid)
    target = RouteTarget(owner=owner, spec=md.spec)
    router = make_router(md.spec.traffic.router, deps.kube)
    now = deps.clock()
    observed = observe(deps.kube, router, target, md, deps.providers, deps.settings, now)
    status = md.status or ModelDeploymentStatus()
    decision = deps.decide_fn()(md.spec, status, observed, now)
    log.info(
        "%s/%s: %s %s weight %s->%s",
        namespace, md.metadata.name, decision.action, decision.reason,
        observed.canary_weight, decision.canary_weight,
    )  # fmt: skip
    act(deps.kube, router, target, observed, decision, deps.settings)
    write(deps.kube, md, uid, status, decision)
    return decision


def write(
    kube: KubeApi, md: ModelDeployment, uid: str, old: ModelDeploymentStatus, decision: Decision
) -> None:
    """One status write (skipped when nothing changed), then the Events, then the consumed
    controls: if the operator dies before the status lands, the control is still there and
    the next tick decides again from the same facts."""
    ref = ObjectRef(KIND, md.metadata.namespace or "default", md.metadata.name)
    if decision.status != old:
        kube.apply_status(ref, API_VERSION, status_manifest(decision.status))
    involved = involved_object(md, uid)
    for event in decision.events:
        kube.post_event(involved, event.type, event.reason, event.message)
    kube.remove_annotations(ref, annotations_for(decision.consumed_controls))


def status_manifest(status: ModelDeploymentStatus) -> dict[str, Any]:
    """Status as applied: fields left out are removed (server-side apply), so a cleared
    ``canary`` or ``rollback`` really disappears instead of lingering from a merge."""
    return status.to_manifest()


def involved_object(md: ModelDeployment, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": md.metadata.name,
        "namespace": md.metadata.namespace or "default",
        "uid": uid,
    }


def _report_invalid(deps: Deps, ref: ObjectRef, body: dict[str, Any], exc: ValidationError) -> None:
    """A spec the API server admitted but our models reject (an older CRD, a bug): say so in
    the status instead of failing silently in a log."""
    try:
        status = ModelDeploymentStatus.model_validate(body.get("status") or {})
    except ValidationError:
        status = ModelDeploymentStatus()
    message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())[:1000]
    ready = Condition(
        type="Ready", status="False", reason="InvalidSpec", message=message,
        last_transition_time=deps.clock(), observed_generation=body["metadata"].get("generation"),
    )  # fmt: skip
    others = [c for c in status.conditions if c.type != "Ready"]
    updated = status.model_copy(
        update={
            "conditions": [*others, ready],
            "message": message,
            "phase": status.phase or Phase.FAILED,
        }
    )
    if updated != status:
        deps.kube.apply_status(ref, API_VERSION, status_manifest(updated))
    log.warning("%s/%s: invalid spec: %s", ref.namespace, ref.name, message)
