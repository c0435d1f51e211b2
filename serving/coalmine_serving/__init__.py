"""coalmine's inference server: Open Inference Protocol v2 with per-version metrics.

This package deliberately imports nothing at package level: the operator imports
``coalmine_serving.contract`` and must not pay for FastAPI, numpy or a model runtime.
"""

__all__: list[str] = []
