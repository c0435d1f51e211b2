"""One level-triggered reconcile: observe -> decide (the pure engine) -> act -> write status.

Every tick re-reads the ModelDeployment from the API server (a timer's cached body can lag
behind the status written by the previous tick) and keeps nothing in memory: all rollout
state is in ``.status``, with timestamps, so a restarted operator continues where it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from coalmine import manifests
from coalmine.act import act
from coalmine.analysis.endpoints import endpoint_refusals
from coalmine.api import API_VERSION, KIND, ModelDeployment
from coalmine.api.status import Condition, ModelDeploymentStatus, Phase
from coalmine.controls import annotations_for
from coalmine.k8s import KubeApi, Manifest, ObjectRef
from coalmine.manifests import Variant
from coalmine.notify import Notifier
from coalmine.observe import ProviderFactory, observe, with_measurements
from coalmine.opmetrics import DEFAULT, OperatorMetrics
from coalmine.ownership import ChildGuard, check_children
from coalmine.policy import refusals
from coalmine.receipts import KeysOutcome, ensure_receipt_keys
from coalmine.rollout import decide
from coalmine.rollout.conditions import set_condition
from coalmine.rollout.types import Decision, Observations
from coalmine.routing import TrafficRouter, make_router
from coalmine.settings import OperatorSettings
from coalmine.subject import Subject

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    """Everything a reconcile talks to, injected so unit tests pass fakes of our interfaces."""

    kube: KubeApi
    providers: ProviderFactory
    settings: OperatorSettings
    clock: Callable[[], datetime] = utcnow
    notifier: Notifier | None = None
    """Webhooks told of each transition once its status and Events are written."""
    metrics: OperatorMetrics = DEFAULT


def reconcile(deps: Deps, namespace: str, name: str) -> float | None:
    """Run one tick for one ModelDeployment; returns seconds until the next tick is needed
    (None when the object is gone or cannot be acted on)."""
    ref = ObjectRef(KIND, namespace, name)
    body = deps.kube.get(ref)
    if body is None:
        return None
    if body["metadata"].get("deletionTimestamp"):
        # Being deleted: ownerReferences and the garbage collector clean up.
        release_legacy_finalizer(deps.kube, ref, body)
        return None
    try:
        md = ModelDeployment.from_manifest(body)
    except ValidationError as exc:
        _report_invalid(deps, ref, body, _validation_message(exc))
        return None
    refused = refusals(md.spec, deps.settings) + endpoint_refusals(
        md.spec.canary.analysis.prometheus, deps.settings
    )
    if refused:
        # Before the keys and the engine: a spec beyond the operator's policy changes no pod.
        _report_invalid(deps, ref, body, "; ".join(refused)[:1000])
        return None
    meta = body["metadata"]
    subject = Subject.build(ref, meta["uid"], md.spec, meta.get("resourceVersion", ""))
    now = deps.clock()
    stored = md.status or ModelDeploymentStatus()
    # The keys first: the Secret must exist before any Deployment that mounts it.
    keys = ensure_receipt_keys(deps.kube, subject, md, deps.settings, now)
    if keys.blocked:
        return hold(deps, subject, stored, stored, keys.condition)
    status = with_condition(stored, keys.condition)
    # Then every other child: a tick writes only children this ModelDeployment owns.
    guard = ChildGuard(deps.kube, subject.uid)
    router = make_router(md.spec.traffic.router, guard)
    children = check_children(
        guard, subject, router, stored.conditions, now, md.metadata.generation
    )
    if children.blocked and children.condition is not None:
        return hold(deps, subject, stored, status, children.condition)
    if children.condition is not None:  # a conflict that is gone: say so, once
        status = with_condition(status, children.condition)
    decision = run_tick(replace(deps, kube=guard), subject, md, router, now, status, keys.secret)
    return _sooner(decision.requeue_after, keys, now)


LEGACY_FINALIZER = "coalmine.dev/finalizer"
"""Put on by operators that ran kopf's timers; this one uses none, so nothing would take it
off, and a delete would wait for it forever."""


def release_legacy_finalizer(kube: KubeApi, ref: ObjectRef, body: Manifest) -> None:
    meta = body["metadata"]
    finalizers = meta.get("finalizers") or []
    if LEGACY_FINALIZER not in finalizers:
        return
    kept = [f for f in finalizers if f != LEGACY_FINALIZER]
    # resourceVersion: a precondition, so another writer's finalizer added since is not lost.
    patch = {"metadata": {"finalizers": kept, "resourceVersion": meta["resourceVersion"]}}
    kube.merge_patch(ref, patch)


def run_tick(
    deps: Deps,
    subject: Subject,
    md: ModelDeployment,
    router: TrafficRouter,
    now: datetime,
    status: ModelDeploymentStatus,
    receipt_secret: Manifest | None = None,
) -> Decision:
    """observe -> decide (-> measure -> decide, when the engine asks) -> act -> write.

    ``status`` is the stored one with this tick's receipt-keys and child-ownership conditions
    folded in (the engine passes conditions it does not own through)."""
    observed = observe(deps.kube, router, subject, md, receipt_secret)
    decision = decide(md.spec, status, observed, now)
    if decision.wants_measurement:  # never for a rollback, an abort or a new revision
        started = time.monotonic()
        observed = with_measurements(observed, subject, md, deps.providers, deps.settings, now)
        deps.metrics.analysis_duration.observe(time.monotonic() - started)
        decision = decide(md.spec, status, observed, now)
    decision = with_scale_status(decision, observed, subject)
    old = md.status or ModelDeploymentStatus()
    if decision.status != old or decision.events:  # a tick that changed nothing says nothing
        log.info(
            "%s/%s: %s %s weight %s->%s",
            subject.ref.namespace, subject.ref.name, decision.action, decision.reason,
            observed.canary_weight, decision.canary_weight,
        )  # fmt: skip
    act(deps.kube, router, subject, observed, decision, deps.settings)
    write(deps.kube, subject, old, decision)
    key = (subject.ref.namespace, subject.ref.name)
    deps.metrics.written(key, old, decision.status, md.spec, now)
    if deps.notifier is not None:  # queued only: never blocks or fails the tick
        deps.notifier.decided(subject, md, decision, now)
    return decision


def with_scale_status(decision: Decision, observed: Observations, subject: Subject) -> Decision:
    """``status.replicas`` and ``status.selector``, what the scale subresource reports: the
    stable pods this tick leaves running, and their selector. An autoscaler resizes
    ``spec.runtime.replicas`` from them; the operator then sizes stable (and the canary,
    in proportion) from the spec, so it never takes replicas back from the autoscaler."""
    plan, seen = decision.stable, observed.stable
    replicas = plan.replicas if plan is not None else (seen.replicas if seen else None)
    chosen = manifests.selector(subject.owner, Variant.STABLE)
    selector = ",".join(f"{key}={value}" for key, value in chosen.items())
    status = decision.status.model_copy(update={"replicas": replicas, "selector": selector})
    return replace(decision, status=status)


def with_condition(status: ModelDeploymentStatus, condition: Condition) -> ModelDeploymentStatus:
    return status.model_copy(update={"conditions": set_condition(status.conditions, condition)})


def hold(
    deps: Deps,
    subject: Subject,
    stored: ModelDeploymentStatus,
    status: ModelDeploymentStatus,
    blocking: Condition,
) -> float:
    """Something the tick needs is not ours (the receipt-key Secret, a child): no engine, no
    pod or traffic changes; say why in status and (once) in an Event, and look again next
    tick. Pods already running keep serving."""
    held = with_condition(status, blocking).model_copy(update={"message": blocking.message})
    if held != stored:
        write_status(deps.kube, subject, held)
    warn_once(deps.kube, subject, stored.conditions, blocking)
    deps.metrics.error("blocked")
    log.warning("%s/%s: %s", subject.ref.namespace, subject.ref.name, blocking.message)
    return deps.settings.tick_seconds


def warn_once(
    kube: KubeApi, subject: Subject, previous: Sequence[Condition], blocking: Condition
) -> None:
    """A Warning Event when a condition starts to block, or blocks for another reason or
    another object; not on every tick while it stays the same."""
    before = next((c for c in previous if c.type == blocking.type), None)
    if before is not None and (before.status, before.reason, before.message) == (
        blocking.status,
        blocking.reason,
        blocking.message,
    ):
        return
    kube.post_event(subject.involved_object(), "Warning", blocking.reason, blocking.message)


def _sooner(requeue: float, keys: KeysOutcome, now: datetime) -> float:
    """The engine's requeue, or sooner when a key rotation or retirement is due first."""
    if keys.next_change is None:
        return requeue
    return max(1.0, min(requeue, (keys.next_change - now).total_seconds()))


def write(kube: KubeApi, subject: Subject, old: ModelDeploymentStatus, decision: Decision) -> None:
    """One status write (skipped when nothing changed), then the Events, then the consumed
    controls: if the operator dies before the status lands, the control is still there and
    the next tick decides again from the same facts."""
    if decision.status != old:
        write_status(kube, subject, decision.status)
    involved = subject.involved_object()
    for event in decision.events:
        kube.post_event(involved, event.type, event.reason, event.message)
    kube.remove_annotations(subject.ref, annotations_for(decision.consumed_controls))


def write_status(kube: KubeApi, subject: Subject, status: ModelDeploymentStatus) -> None:
    """The tick's one status write, onto the version of the object it read. A 409 (the
    object changed since: another writer, a person) propagates as an
    ``ApiError``: the tick's Events and control removals are dropped with it, and the next
    tick decides again from a fresh read."""
    kube.apply_status(
        subject.ref, API_VERSION, status_manifest(status), resource_version=subject.version
    )


def status_manifest(status: ModelDeploymentStatus) -> dict[str, Any]:
    """Status as applied: fields left out are removed (server-side apply), so a cleared
    ``canary`` or ``rollback`` really disappears instead of lingering from a merge."""
    return status.to_manifest()


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())[:1000]


def _report_invalid(deps: Deps, ref: ObjectRef, body: dict[str, Any], message: str) -> None:
    """A spec the API server admitted but our models or the operator's policy reject (an
    older CRD, a bug, an image not allowed): say so in the status instead of failing
    silently in a log."""
    try:
        status = ModelDeploymentStatus.model_validate(body.get("status") or {})
    except ValidationError:
        status = ModelDeploymentStatus()
    ready = Condition(
        type="Ready", status="False", reason="InvalidSpec", message=message,
        last_transition_time=deps.clock(), observed_generation=body["metadata"].get("generation"),
    )  # fmt: skip
    updated = status.model_copy(
        update={
            # The first refusal's time stays: a held spec is not rewritten on every tick.
            "conditions": set_condition(status.conditions, ready),
            "message": message,
            "phase": status.phase or Phase.FAILED,
        }
    )
    if updated != status:
        version = body["metadata"].get("resourceVersion", "")
        deps.kube.apply_status(ref, API_VERSION, status_manifest(updated), resource_version=version)
    deps.metrics.error("invalid_spec")
    log.warning("%s/%s: invalid spec: %s", ref.namespace, ref.name, message)
