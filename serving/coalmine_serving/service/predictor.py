"""The predictor: load and warm up the model, then predict inline or on worker threads.

Handing 20 µs of work to a thread costs more than the work, so after warm-up the predictor times
a few predicts and keeps fast models on the event loop thread (``inline_predict_max_seconds``);
it keeps judging them and moves to the thread pool for good once most predicts turn slow.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from coalmine_serving.errors import ModelNotReadyError
from coalmine_serving.metrics import ServingMetrics
from coalmine_serving.runtimes.base import ModelRuntime, warm_up
from coalmine_serving.runtimes.loader import LoadedModel, load_runtime
from coalmine_serving.settings import ServingSettings

log = logging.getLogger("coalmine_serving")
INLINE_MAX_ROWS = 32  # larger batches always go to a thread: their cost grows with the rows


class Predictor:
    """Owns the runtime and the predict threads; ``predict`` observes the compute histogram."""

    inline_window = 32  # predicts per judging window (see _judge_inline)

    def __init__(self, settings: ServingSettings, metrics: ServingMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.runtime: ModelRuntime | None = None
        self.output_dtype: np.dtype = np.dtype(np.float64)
        self.load_error: str | None = None
        self._executor = ThreadPoolExecutor(settings.predict_threads, "coalmine-predict")
        self._inline = False  # decided after warm-up, see inline_predict_max_seconds
        self._window_predicts = 0  # inline predicts in the current judging window
        self._window_slow = 0  # of which slower than inline_predict_max_seconds
        # Worker thread id -> monotonic time its predict started. A predict past its request's
        # deadline keeps its thread (threads cannot be cancelled), so readiness looks here.
        self._busy_since: dict[int, float] = {}

    @property
    def predicts_inline(self) -> bool:
        """True while predict runs on the event loop thread (see inline_predict_max_seconds)."""
        return self._inline

    @property
    def ready(self) -> bool:
        return self.runtime is not None

    def stuck_reason(self) -> str | None:
        """Why this pod should get no traffic although loaded: every predict thread has been
        busy for longer than a request may take. None when at least one thread is free."""
        limit = self.settings.request_timeout_seconds
        now = time.monotonic()
        stuck = sum(1 for since in list(self._busy_since.values()) if now - since > limit)
        threads = self.settings.predict_threads
        if stuck < threads:
            return None
        return f"all {threads} predict threads have been busy for over {limit:g}s"

    def require_runtime(self) -> ModelRuntime:
        if self.runtime is None:
            raise ModelNotReadyError(f"model {self.settings.model_name} is not ready")
        return self.runtime

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

    async def predict(self, rows: np.ndarray) -> np.ndarray:
        """One output per row, computed inline or on a worker thread."""
        runtime = self.require_runtime()
        if self._inline and len(rows) <= INLINE_MAX_ROWS:
            outputs, seconds = _timed(runtime, rows)
            self._judge_inline(seconds)
        else:
            loop = asyncio.get_running_loop()
            outputs, seconds = await loop.run_in_executor(
                self._executor, self._timed_on_thread, runtime, rows
            )
        self.metrics.compute.observe(seconds)
        return outputs

    def _timed_on_thread(self, runtime: ModelRuntime, rows: np.ndarray) -> tuple[np.ndarray, float]:
        thread = threading.get_ident()
        self._busy_since[thread] = time.monotonic()
        try:
            return _timed(runtime, rows)
        finally:
            del self._busy_since[thread]

    async def _decide_inline(self, runtime: ModelRuntime) -> None:
        limit = self.settings.inline_predict_max_seconds
        if not limit or runtime.signature.n_features is None:
            return
        row = np.zeros((1, runtime.signature.n_features), dtype=runtime.signature.dtype)
        loop = asyncio.get_running_loop()
        # The median wall time of a few predicts after warm-up decides (wall, not CPU: see
        # _judge_inline); _judge_inline keeps watching every inline predict afterwards.
        timings = [
            (await loop.run_in_executor(self._executor, _timed, runtime, row))[1] for _ in range(5)
        ]
        typical = sorted(timings)[len(timings) // 2]
        self._inline = typical < limit
        log.info("predict %.1f us: %s", typical * 1e6, "inline" if self._inline else "threads")

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


def _timed(runtime: ModelRuntime, rows: np.ndarray) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    outputs = runtime.predict(rows)
    return outputs, time.perf_counter() - started


def _load_or_warm(settings: ServingSettings, preloaded: Any) -> LoadedModel:
    if preloaded is None:
        return load_runtime(settings)
    if isinstance(preloaded, LoadedModel):
        return preloaded
    # A runtime handed in by a caller is warmed up like a loaded one.
    return LoadedModel(preloaded, settings.sha256 or "unverified", warm_up(preloaded).dtype)
