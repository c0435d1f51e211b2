"""ONNX models under onnxruntime (CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from coalmine_serving.errors import ArtifactError
from coalmine_serving.runtimes.base import Signature, resolve_task
from coalmine_serving.settings import Task

_ONNX_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}
_CLASS_OUTPUTS = {"tensor(int64)", "tensor(int32)", "tensor(string)"}


class OnnxRuntime:
    """Runs only the first output, so a classifier's probability map is never computed."""

    format = "onnx"

    def __init__(self, path: Path, task: Task, intra_op_threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One thread per predict: small tabular models lose more to thread wake-ups than they
        # gain, and concurrency comes from our predict thread pool instead.
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(f"onnxruntime cannot load {path}: {exc}") from exc
        self.signature = self._signature(task)
        self._outputs = [self.signature.output_name]

    def _signature(self, task: Task) -> Signature:
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ArtifactError(f"expected an ONNX model with 1 input, found {len(inputs)}")
        first_in: Any = inputs[0]
        first_out: Any = self._session.get_outputs()[0]
        if first_in.type not in _ONNX_DTYPES:
            raise ArtifactError(f"unsupported ONNX input type {first_in.type}")
        shape = first_in.shape
        width = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
        return Signature(
            input_name=first_in.name,
            n_features=width,
            dtype=np.dtype(_ONNX_DTYPES[first_in.type]),
            output_name=first_out.name,
            task=resolve_task(task, first_out.type in _CLASS_OUTPUTS),
        )

    def predict(self, rows: np.ndarray) -> np.ndarray:
        out = np.asarray(self._session.run(self._outputs, {self.signature.input_name: rows})[0])
        return out.reshape(len(rows)) if out.ndim == 2 and out.shape[1] == 1 else out
