"""Model runtimes: they load an artifact and predict on numpy arrays, and know nothing of HTTP.

Heavy libraries (onnxruntime, skops, scikit-learn, joblib) are imported inside the loaders,
so the server only needs the extra for the format it actually serves.
"""

from coalmine_serving.runtimes.base import ModelRuntime, Signature
from coalmine_serving.runtimes.loader import load_runtime

__all__ = ["ModelRuntime", "Signature", "load_runtime"]
