"""Pick the runtime for a format; verify the checksum before any deserialisation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coalmine_serving.artifacts.integrity import verify_sha256
from coalmine_serving.contract import ModelFormat
from coalmine_serving.runtimes.base import ModelRuntime, warm_up
from coalmine_serving.settings import ServingSettings


@dataclass(frozen=True)
class LoadedModel:
    runtime: ModelRuntime
    sha256: str
    output_dtype: np.dtype  # from the warm-up prediction; reported in model metadata


def load_runtime(settings: ServingSettings) -> LoadedModel:
    """Verify, load and warm up the configured artifact. Raises on any problem."""
    path = settings.model_path()
    # The digest is checked first: the loaders below parse untrusted bytes.
    digest = verify_sha256(path, settings.sha256, required=settings.require_sha256)
    runtime: ModelRuntime
    if settings.model_format is ModelFormat.ONNX:
        from coalmine_serving.runtimes.onnx_rt import OnnxRuntime

        runtime = OnnxRuntime(path, settings.task)
    elif settings.model_format is ModelFormat.SKOPS:
        from coalmine_serving.runtimes.sklearn_rt import load_skops

        runtime = load_skops(path, settings.skops_trusted_types, settings.task)
    else:
        from coalmine_serving.runtimes.sklearn_rt import load_joblib

        runtime = load_joblib(path, settings.allow_pickle, settings.task)
    return LoadedModel(runtime, digest, warm_up(runtime).dtype)
