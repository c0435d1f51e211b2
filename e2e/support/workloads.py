"""Manifests the e2e tests deploy by hand (without the operator): the serving runtime with a
tiny model mounted from a ConfigMap, and a Service in front of it."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

SERVING_PORT = 8080
N_FEATURES = 4


@dataclass(frozen=True)
class Model:
    onnx: bytes
    sha256: str


def tiny_classifier() -> Model:
    """A logistic regression on synthetic rows (label = x0 > 0.5), made in milliseconds."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rows = np.random.default_rng(0).random((80, N_FEATURES))
    estimator = LogisticRegression(C=100.0).fit(rows, (rows[:, 0] > 0.5).astype(np.int64))
    options = {id(estimator): {"zipmap": False}}
    onnx = to_onnx(estimator, rows[:1].astype(np.float32), options=options, target_opset=17)
    data = onnx.SerializeToString()
    return Model(data, hashlib.sha256(data).hexdigest())


def infer_body(rows: list[list[float]]) -> dict[str, Any]:
    shape = [len(rows), N_FEATURES]
    return {"inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "data": rows}]}


def serving_workload(
    namespace: str, name: str, image: str, model: Model, replicas: int
) -> list[dict[str, Any]]:
    labels = {"app": name}
    meta = {"name": name, "namespace": namespace, "labels": labels}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-model", "namespace": namespace},
        "binaryData": {"model.onnx": base64.b64encode(model.onnx).decode()},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": _pod_spec(name, image, model)},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "selector": labels,
            "ports": [{"name": "http", "port": SERVING_PORT, "targetPort": "http"}],
        },
    }
    return [config_map, deployment, service]


def _pod_spec(name: str, image: str, model: Model) -> dict[str, Any]:
    env = {
        "COALMINE_SERVING_MODEL_NAME": name,
        "COALMINE_SERVING_MODEL_URI": "/model/model.onnx",
        "COALMINE_SERVING_SHA256": model.sha256,
    }
    probe = {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 1}
    container = {
        "name": "server",
        "image": image,
        "imagePullPolicy": "IfNotPresent",  # images are imported, never pulled
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "ports": [{"name": "http", "containerPort": SERVING_PORT}],
        "readinessProbe": probe,
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "model", "mountPath": "/model", "readOnly": True}],
    }
    volume = {"name": "model", "configMap": {"name": f"{name}-model"}}
    return {"containers": [container], "volumes": [volume], "enableServiceLinks": False}
