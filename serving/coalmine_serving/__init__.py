"""coalmine's inference server: Open Inference Protocol v2 with per-version metrics.

This package deliberately imports nothing at package level: the operator imports
``coalmine_serving.contract`` and must not pay for Starlette, numpy or a model runtime.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
