"""The inference service: limits, fault injection, predict off the event loop, metrics.

Routes call this; it knows settings and runtimes but no HTTP framework.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from coalmine_serving.contract import FeedbackMissReason, FeedbackResult
from coalmine_serving.errors import (
    BadRequestError,
    ModelNotReadyError,
    NotFoundError,
    OverloadedError,
    ServingError,
)
from coalmine_serving.metrics import ServingMetrics
from coalmine_serving.runtimes.base import ModelRuntime, warm_up
from coalmine_serving.runtimes.loader import LoadedModel, load_runtime
from coalmine_serving.service.memory import FeedbackExpiredError, PredictionMemory
from coalmine_serving.settings import ServingSettings, Task

log = logging.getLogger("coalmine_serving")
INLINE_MAX_ROWS = 32  # larger batches always go to a thread: their cost grows with the rows


class InferenceService:
    inline_window = 32  # predicts per judging window (see _judge_inline)

    def __init__(self, settings: ServingSettings, metrics: ServingMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.runtime: ModelRuntime | None = None
        self.output_dtype: np.dtype = np.dtype(np.float64)
        self.load_error: str | None = None
        self.memory = PredictionMemory(
            settings.feedback_ttl_seconds, settings.feedback_max_entries, settings.feedback_max_rows
        )
        self._executor = ThreadPoolExecutor(settings.predict_threads, "coalmine-predict")
        self._in_flight = 0  # touched only on the event loop thread
        self._inline = False  # decided after warm-up, see inline_predict_max_seconds
        self._window_predicts = 0  # inline predicts in the current judging window
        self._window_slow = 0  # of which slower than inline_predict_max_seconds
        self._random = random.Random()
        metrics.track_in_flight(lambda: self._in_flight)
        self._faults_on = bool(settings.fault_error_rate or settings.fault_latency_seconds)

    @property
    def predicts_inline(self) -> bool:
        """True while predict runs on the event loop thread (see inline_predict_max_seconds)."""
        return self._inline

    @property
    def ready(self) -> bool:
        return self.runtime is not None

    # --- lifecycle ---

    async def load(self, preloaded: LoadedModel | ModelRuntime | None) -> None:
        """Load (or take) the model and warm it up in a worker thread; failures are kept."""
        started = time.perf_counter()
        try:
            loaded = await asyncio.get_running_loop().run_in_executor(
                self._executor, _load_or_warm, self.settings, preloaded
            )
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("model %s failed to load: %s", self.settings.model_name, self.load_error)
            return
        self.metrics.model_loaded(
            loaded.runtime.format, loaded.sha256, time.perf_counter() - started
        )
        self.output_dtype = loaded.output_dtype
        await self._decide_inline(loaded.runtime)
        # Imports and the model leave ~150k long-lived objects; a full collection walks them all
        # (tens of ms, a p99 spike on some unlucky request). Freeze them once, before ready.
        gc.collect()
        gc.freeze()
        self.runtime = loaded.runtime
        log.info("model %s version %s ready", self.settings.model_name, self.settings.model_version)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- requests ---

    def admit(self) -> None:
        """Take a concurrency slot or refuse at once (503) rather than queue unbounded work."""
        if self._in_flight >= self.settings.max_concurrency:
            raise OverloadedError(f"more than {self.settings.max_concurrency} requests in flight")
        self._in_flight += 1

    def release(self) -> None:
        self._in_flight -= 1

    def require_runtime(self) -> ModelRuntime:
        if self.runtime is None:
            raise ModelNotReadyError(f"model {self.settings.model_name} is not ready")
        return self.runtime

    async def _decide_inline(self, runtime: ModelRuntime) -> None:
        limit = self.settings.inline_predict_max_seconds
        if not limit or runtime.signature.n_features is None:
            return
        row = np.zeros((1, runtime.signature.n_features), dtype=runtime.signature.dtype)
        loop = asyncio.get_running_loop()
        # The median CPU time of a few predicts after warm-up decides; _judge_inline keeps
        # watching every inline predict afterwards.
        timings = [
            (await loop.run_in_executor(self._executor, _timed, runtime, row))[1] for _ in range(5)
        ]
        typical = sorted(timings)[len(timings) // 2]
        self._inline = typical < limit
        log.info("predict %.1f us: %s", typical * 1e6, "inline" if self._inline else "threads")

    async def predict(self, rows: np.ndarray, request_id: str | None) -> tuple[str, np.ndarray]:
        """Predict ``rows``; returns the request id (made up if absent) and the outputs."""
        runtime = self.require_runtime()
        if self._faults_on:
            await self._inject_faults()
        if self._inline and len(rows) <= INLINE_MAX_ROWS:
            outputs, seconds = _timed(runtime, rows)
            self._judge_inline(seconds)
        else:
            loop = asyncio.get_running_loop()
            outputs, seconds = await loop.run_in_executor(self._executor, _timed, runtime, rows)
        self.metrics.compute.observe(seconds)
        self._record_outputs(runtime, outputs)
        request_id = request_id or uuid.uuid4().hex
        self.memory.put(request_id, outputs)
        return request_id, outputs

    def _judge_inline(self, seconds: float) -> None:
        """Leave inline mode when most predicts of a window were slow.

        A majority, because single slow predicts are usually the OS pausing this process on a
        busy node (seen: three 3.6 ms pauses in a row around a 1 µs predict), which says nothing
        about the model. Wall time, because reading this thread's CPU clock is a system call
        that costs more than a small model's predict on some sandboxes. Worst case, a model
        that turned slow holds the loop for one window of predicts before moving to threads.
        """
        self._window_predicts += 1
        if seconds > self.settings.inline_predict_max_seconds:
            self._window_slow += 1
        if self._window_predicts < self.inline_window:
            return
        if self._window_slow * 2 > self._window_predicts:
            self._inline = False
            log.warning(
                "%d of %d predicts took over %.0f us; using worker threads from now on",
                self._window_slow, self._window_predicts,
                self.settings.inline_predict_max_seconds * 1e6,
            )  # fmt: skip
        self._window_predicts = self._window_slow = 0

    async def _inject_faults(self) -> None:
        settings = self.settings
        if settings.fault_latency_seconds and self._random.random() < settings.fault_latency_rate:
            self.metrics.faults["latency"].inc()
            await asyncio.sleep(settings.fault_latency_seconds)
        if settings.fault_error_rate and self._random.random() < settings.fault_error_rate:
            self.metrics.faults["error"].inc()
            raise ServingError("injected fault (fault_error_rate is set on this server)", 500)

    def _record_outputs(self, runtime: ModelRuntime, outputs: np.ndarray) -> None:
        if runtime.signature.task is Task.CLASSIFICATION:
            self.metrics.record_classes(outputs)
        else:
            self.metrics.record_values(outputs)

    def feedback(self, request_id: str, truth: list[Any]) -> dict[str, Any]:
        """Join delayed ground truth with the stored prediction and update quality metrics."""
        task = self.require_runtime().signature.task
        try:
            predicted = self.memory.pop(request_id)
        except FeedbackExpiredError:
            self.metrics.unmatched[FeedbackMissReason.EXPIRED].inc()
            raise
        except NotFoundError:
            self.metrics.unmatched[FeedbackMissReason.UNKNOWN].inc()
            raise
        if len(truth) != len(predicted):
            raise BadRequestError(
                f"'truth' has {len(truth)} values but the request had {len(predicted)} rows"
            )
        if task is Task.CLASSIFICATION:
            return self._classification_feedback(request_id, predicted, truth)
        return self._regression_feedback(request_id, predicted, truth)

    def _classification_feedback(
        self, request_id: str, predicted: np.ndarray, truth: list[Any]
    ) -> dict[str, Any]:
        # Compared as strings so a label sent as 1 or "1" matches a predicted int64 1.
        correct = sum(str(p) == str(t) for p, t in zip(predicted.tolist(), truth, strict=True))
        self.metrics.feedback[FeedbackResult.CORRECT].inc(correct)
        self.metrics.feedback[FeedbackResult.INCORRECT].inc(len(truth) - correct)
        return {"id": request_id, "rows": len(truth), "correct": correct}

    def _regression_feedback(
        self, request_id: str, predicted: np.ndarray, truth: list[Any]
    ) -> dict[str, Any]:
        try:
            true_values = np.asarray(truth, dtype=np.float64).reshape(predicted.shape)
        except (TypeError, ValueError) as exc:
            raise BadRequestError(
                f"'truth' must be numbers for a regression model: {exc}"
            ) from None
        if not np.isfinite(true_values).all():
            raise BadRequestError("'truth' contains NaN or infinity")
        errors = np.abs(predicted.astype(np.float64) - true_values).ravel().tolist()
        for error in errors:
            self.metrics.abs_error.observe(error)
        return {"id": request_id, "rows": len(errors), "mean_abs_error": sum(errors) / len(errors)}


def _timed(runtime: ModelRuntime, rows: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    outputs = runtime.predict(rows)
    return outputs, time.perf_counter() - started


def _cpu_timed(runtime: ModelRuntime, rows: np.ndarray) -> float:
    started = time.thread_time()
    runtime.predict(rows)
    return time.thread_time() - started


def _load_or_warm(settings: ServingSettings, preloaded: Any) -> LoadedModel:
    if preloaded is None:
        return load_runtime(settings)
    if isinstance(preloaded, LoadedModel):
        return preloaded
    # A runtime handed in by a caller is warmed up like a loaded one.
    return LoadedModel(preloaded, settings.sha256 or "unverified", warm_up(preloaded).dtype)
