"""Realistic ModelDeployment objects and Events, as the API server returns them.

Shared by the view tests and by docs/cli.md (whose example output is rendered from these).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

NOW = datetime(2026, 11, 27, 5, 30, 0, tzinfo=UTC)

_STABLE = {"revision": "3f2a9c1b7e", "version": "v1", "uri": "https://models.example/iris/v1.onnx"}
_CANARY = {"revision": "9b8c7d6e5f", "version": "v2", "uri": "https://models.example/iris/v2.onnx"}


def progressing() -> dict[str, Any]:
    """A canary at step 2 of 3 whose quality check has too few labels so far."""
    return {
        "apiVersion": "coalmine.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": "iris",
            "namespace": "ml",
            "generation": 4,
            "resourceVersion": "5121",
            "uid": "0d5c1f8e-4b1a-4a57-9a0e-2b8c2f6f1a11",
        },
        "spec": {
            "model": {"name": "iris", "version": "v2", "uri": _CANARY["uri"]},
            "canary": {
                "steps": [
                    {"weight": 10, "pause": "2m"},
                    {"weight": 30, "pause": "2m"},
                    {"weight": 60, "pause": "5m"},
                ]
            },
        },
        "status": {
            "phase": "Progressing",
            "observedGeneration": 4,
            "stable": _STABLE,
            "canary": _CANARY,
            "currentStep": 1,
            "weight": 30,
            "appliedWeight": 33,
            "stepStartedAt": "2026-11-27T05:28:55Z",
            "canaryStartedAt": "2026-11-27T05:24:10Z",
            "message": "step 2/3: waiting for the pause and passing analysis",
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "reason": "StableReady",
                    "message": "3/3 stable replicas ready",
                    "lastTransitionTime": "2026-11-27T04:10:00Z",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "CanaryAnalysing",
                    "message": "v2 at 30%",
                    "lastTransitionTime": "2026-11-27T05:24:10Z",
                },
            ],
            "analysis": {
                "measuredAt": "2026-11-27T05:29:48Z",
                "step": 1,
                "weight": 30,
                "verdict": "inconclusive",
                "inconclusiveSince": "2026-11-27T05:29:18Z",
                "checks": [
                    {
                        "name": "error-rate",
                        "kind": "errorRate",
                        "verdict": "pass",
                        "value": 0.0021,
                        "stableValue": 0.0019,
                        "threshold": "<= 0.05",
                        "samples": 1432,
                        "recent": ["pass", "pass"],
                    },
                    {
                        "name": "latency-p99",
                        "kind": "latency",
                        "verdict": "pass",
                        "value": 0.0843,
                        "stableValue": 0.0791,
                        "threshold": "ratio <= 1.5",
                        "samples": 1432,
                    },
                    {
                        "name": "accuracy",
                        "kind": "quality",
                        "verdict": "inconclusive",
                        "value": 0.95,
                        "stableValue": 0.96,
                        "threshold": ">= stable - 0.02",
                        "samples": 20,
                        "reason": "too few samples (20 < 50)",
                    },
                ],
            },
            "history": [
                {
                    "revision": "3f2a9c1b7e",
                    "version": "v1",
                    "outcome": "Promoted",
                    "reason": "all 3 steps passed",
                    "at": "2026-11-27T04:10:00Z",
                }
            ],
        },
    }


def rolled_back() -> dict[str, Any]:
    """v3 rolled back on its error rate; stable v1 still serves."""
    obj = copy.deepcopy(progressing())
    status = obj["status"]
    status.update(
        phase="Degraded",
        canary={
            "revision": "c4d5e6f7a8",
            "version": "v3",
            "uri": "https://models.example/iris/v3.onnx",
        },
        canaryStartedAt="2026-11-27T05:21:30Z",
        currentStep=None,
        weight=0,
        message="v3 rolled back: error-rate 0.21 > 0.05",
        analysis=None,
        rollback={
            "revision": "c4d5e6f7a8",
            "version": "v3",
            "reason": "error-rate failed 2 consecutive measurements",
            "stage": "Done",
            "startedAt": "2026-11-27T05:26:00Z",
            "check": "error-rate",
            "value": 0.2113,
            "threshold": "<= 0.05",
            "trafficOnStableAt": "2026-11-27T05:26:02Z",
            "completedAt": "2026-11-27T05:26:14Z",
        },
    )
    status["conditions"][1] = {
        "type": "Progressing",
        "status": "False",
        "reason": "RolledBack",
        "message": "error-rate 0.2113 > 0.05",
        "lastTransitionTime": "2026-11-27T05:26:14Z",
    }
    status["history"] = [
        *status["history"],
        {
            "revision": "9b8c7d6e5f",
            "version": "v2",
            "outcome": "Superseded",
            "reason": "spec changed to v3 at step 1",
            "at": "2026-11-27T05:20:00Z",
        },
        {
            "revision": "c4d5e6f7a8",
            "version": "v3",
            "outcome": "RolledBack",
            "reason": "error-rate 0.2113 > 0.05 (2 consecutive failures)",
            "at": "2026-11-27T05:26:14Z",
        },
    ]
    return obj


def events() -> list[dict[str, Any]]:
    """Core v1 Events about ``iris``, out of order on purpose (the API does not sort)."""

    def event(at: str, kind: str, reason: str, message: str, count: int = 1) -> dict[str, Any]:
        return {
            "type": kind,
            "reason": reason,
            "message": message,
            "count": count,
            "lastTimestamp": at,
            "involvedObject": {"kind": "ModelDeployment", "name": "iris", "namespace": "ml"},
        }

    return [
        event("2026-11-27T05:28:55Z", "Normal", "StepAdvanced", "step 2/3: weight 30%"),
        event("2026-11-27T05:24:10Z", "Normal", "CanaryStarted", "v2 (9b8c7d6e5f) at 10%"),
        event(
            "2026-11-27T05:29:48Z",
            "Warning",
            "AnalysisInconclusive",
            "accuracy: too few samples (20 < 50)",
            count=2,
        ),
    ]
